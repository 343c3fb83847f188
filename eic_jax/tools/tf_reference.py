"""Times a plain TensorFlow training step of the same model, for comparison on one machine.

    python -m eic_jax.tools.tf_reference [--num_filters=128] [--repeats=10]

`python -m eic_jax.tools.bench` runs it in a child process: training speed means little across CPUs
(they differ by 2x and more), so the benchmark reports it beside this reference as well. This
is the textbook TensorFlow form of the model: `tf.nn.conv2d` / `tf.nn.conv2d_transpose`, GDN as
a 1x1 convolution of squares, the deep factorized density with batched matrix products, Adam,
in a `tf.function` (graph mode, as Keras `fit` runs it). Prints one JSON object.
"""

import json
import statistics
import time

from absl import app
from absl import flags
import numpy as np

from eic_jax.runtime import tensorflow_setup

tf = tensorflow_setup.tensorflow("the TensorFlow reference step")
FLAGS = flags.FLAGS
DENSITY_HIDDEN = (3, 3, 3)
LMBDA = 0.01


def define_flags() -> None:
  """Only when run as a program: imported as a library, its flags would clash with the caller's."""
  flags.DEFINE_integer("num_filters", 128, "Filters per layer.")
  flags.DEFINE_integer("batch_size", 8, "Images per step.")
  flags.DEFINE_integer("patch_size", 256, "Crop size.")
  flags.DEFINE_integer("repeats", 10, "Timed steps.")


def _variable(shape, scale):
  return tf.Variable(tf.random.normal(shape, stddev=scale))


class ReferenceModel(tf.Module):
  """Analysis 9x9/4, 5x5/2, 5x5/2 with GDN; mirrored synthesis with IGDN; factorized prior."""

  def __init__(self, n: int):
    super().__init__()
    self.down = [(9, 4, 3, n), (5, 2, n, n), (5, 2, n, n)]
    self.up = [(5, 2, n, n), (5, 2, n, n), (9, 4, n, 3)]
    self.analysis = [_variable((k, k, cin, cout), (k * k * cin) ** -0.5)
                     for k, _, cin, cout in self.down]
    self.synthesis = [_variable((k, k, cout, cin), (k * k * cin) ** -0.5)
                      for k, _, cin, cout in self.up]
    # The last analysis layer has no bias, as in eic_jax.models.bls2017.
    self.analysis_biases = [tf.Variable(tf.zeros(n)) for _ in range(2)]
    self.synthesis_biases = [tf.Variable(tf.zeros(c)) for c in (n, n, 3)]
    self.betas = [tf.Variable(tf.ones(n)) for _ in range(4)]
    self.gammas = [tf.Variable(0.1 * tf.eye(n)) for _ in range(4)]
    units = (1,) + DENSITY_HIDDEN + (1,)
    self.matrices = [_variable((n, units[i + 1], units[i]), 0.1) for i in range(len(units) - 1)]
    self.density_biases = [_variable((n, units[i + 1], 1), 0.1) for i in range(len(units) - 1)]
    self.factors = [tf.Variable(tf.zeros((n, units[i + 1], 1))) for i in range(len(units) - 2)]

  def gdn(self, x, index, inverse):
    beta = tf.maximum(self.betas[index], 1e-6)
    gamma = tf.maximum(self.gammas[index], 0.0)
    norm = tf.nn.conv2d(tf.square(x), gamma[None, None], 1, "SAME") + beta
    return x * tf.sqrt(norm) if inverse else x * tf.math.rsqrt(norm)

  def logits_cumulative(self, y):
    logits = y
    for k, matrix in enumerate(self.matrices):
      logits = tf.matmul(tf.nn.softplus(matrix), logits) + self.density_biases[k]
      if k < len(self.factors):
        logits += tf.tanh(self.factors[k]) * tf.tanh(logits)
    return logits

  def loss(self, images):
    x = images / 255.0
    for i, (kernel, (_, stride, _, _)) in enumerate(zip(self.analysis, self.down)):
      x = tf.nn.conv2d(x, kernel, stride, "SAME")
      if i < 2:
        x = self.gdn(x + self.analysis_biases[i], i, inverse=False)
    y = x + tf.random.uniform(tf.shape(x), -0.5, 0.5)
    channels_first = tf.reshape(tf.transpose(y, (3, 0, 1, 2)), (tf.shape(y)[3], 1, -1))
    lower = self.logits_cumulative(channels_first - 0.5)
    upper = self.logits_cumulative(channels_first + 0.5)
    sign = tf.stop_gradient(-tf.sign(lower + upper))
    likelihood = tf.maximum(tf.abs(tf.sigmoid(sign * upper) - tf.sigmoid(sign * lower)), 1e-9)
    x = y
    for i, (kernel, (_, stride, _, cout)) in enumerate(zip(self.synthesis, self.up)):
      if i > 0:
        x = self.gdn(x, 2 + i - 1, inverse=True)
      shape = tf.shape(x)
      output_shape = (shape[0], shape[1] * stride, shape[2] * stride, cout)
      x = tf.nn.conv2d_transpose(x, kernel, output_shape, stride, "SAME")
      x += self.synthesis_biases[i]
    num_pixels = tf.cast(tf.reduce_prod(tf.shape(images)[:3]), tf.float32)
    bpp = tf.reduce_sum(-tf.math.log(likelihood)) / (np.log(2.0) * num_pixels)
    mse = tf.reduce_mean(tf.square(x * 255.0 - images))
    return bpp + LMBDA * mse


def main(_):
  model = ReferenceModel(FLAGS.num_filters)
  optimizer = tf.keras.optimizers.Adam(1e-4)

  @tf.function
  def train_step(images):
    with tf.GradientTape() as tape:
      loss = model.loss(images)
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    return loss

  images = tf.constant(np.random.default_rng(0).integers(
      0, 256, (FLAGS.batch_size, FLAGS.patch_size, FLAGS.patch_size, 3)).astype(np.float32))
  start = time.perf_counter()
  train_step(images).numpy()
  compile_s = time.perf_counter() - start
  times = []
  for _ in range(FLAGS.repeats):
    start = time.perf_counter()
    loss = train_step(images).numpy()
    times.append(time.perf_counter() - start)
  seconds = statistics.median(times)
  print(json.dumps({"tf_reference_step_s": seconds,
                    "tf_reference_images_per_s": FLAGS.batch_size / seconds,
                    "tf_reference_first_step_s": compile_s, "num_filters": FLAGS.num_filters,
                    "final_loss": float(loss)}))


if __name__ == "__main__":
  define_flags()
  app.run(main)
