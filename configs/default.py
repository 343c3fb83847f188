"""The paper's setup (Ballé et al. 2017; TensorFlow Compression's bls2017): 256x256 crops,
batch 8, Adam at 1e-4, λ = 0.01, N = 128 filters."""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()

  # Model: an architecture of eic_jax.models: "bls2017", "bmshj2018" (the scale hyperprior) or
  # "ms2020" (the channel-conditional mean–scale hyperprior).
  config.model = "bls2017"
  # N: channels of the transforms (bls2017's latents too; the side latents z of the others).
  config.num_filters = 128
  # M: the latent channels of bmshj2018 and ms2020.
  config.num_latent_filters = 192
  # ms2020's channel-conditional entropy model: the latents in num_slices slices (dividing M),
  # each conditioned on the first max_support slices before it through networks of
  # context_hidden channels.
  config.num_slices = 6
  config.max_support = 6
  config.context_hidden = (128, 64)
  config.density_hidden = (3, 3, 3)
  config.density_init_scale = 10.0
  # Tail mass left outside the coding tables' range; values there are escape-coded.
  config.tail_mass = 2.0**-8

  # Objective: bits per pixel + lmbda · distortion, on the 0–255 scale. distortion: "mse" or
  # "ms-ssim" (1 − MS-SSIM; crops of at least 176×176; lmbda ≈ 3–60, see models/objective.py).
  config.distortion = "mse"
  config.lmbda = 0.01
  # Stand-in for rounding in training: "noise" (the paper) or "mixed" (noise for the rate,
  # rounding with straight-through gradients for the synthesis).
  config.quantization = "noise"
  # What training changes: "all" parameters; "encoder" alone (the analysis transforms), with
  # the decoder and the entropy models fixed, so files written before still decode, and a step
  # skips the synthesis's weight gradients; or "entropy_models" alone (the hyperprior and
  # densities), with the transforms fixed, on random patch_size crops of the latents that the
  # fixed analysis gives the whole training images: many times faster a step, and it sees
  # larger crops of latents than full training affords. The last two are for a trained model
  # (init_from).
  config.trainable = "all"

  # Data: comma-separated glob patterns of PNG or JPEG files, or 'tfds:NAME:SPLIT'.
  config.train_glob = "images/train/*.png"
  config.valid_glob = ""
  config.patch_size = 256
  config.batch_size = 8
  # Mirror each training crop left–right with probability 1/2.
  config.random_flips = False
  # Keep decoded training images in memory (fast; needs RAM for the whole set).
  config.cache_images = True
  config.valid_patch_size = 256
  config.num_valid_images = 16

  # Optimisation.
  config.learning_rate = 1e-4
  # constant, cosine (to zero over num_train_steps) or piecewise (×0.1 at each boundary).
  config.learning_rate_schedule = "constant"
  config.learning_rate_boundaries = (0.8,)  # fractions of num_train_steps, for piecewise
  config.num_train_steps = 1_000_000
  # Wall-clock seconds after which training stops early with a checkpoint and an export, to be
  # resumed by the same command (0: no limit).
  config.time_limit_s = 0
  config.seed = 0
  # A workdir or shipped model whose export starts training when the workdir has no checkpoint.
  config.init_from = ""

  # Bookkeeping.
  config.log_every_steps = 100
  config.eval_every_steps = 5_000
  config.checkpoint_every_steps = 1_000
  config.max_checkpoints_to_keep = 3
  return config
