"""A small model trained in a few minutes on 2 CPU cores from photographs that ship inside
scikit-image, so it runs offline; coffee.png is held out for validation and the demo."""

import os

import skimage.data

from configs import default

_PHOTOS = ("astronaut.png", "chelsea.png", "hubble_deep_field.jpg", "ihc.png",
           "motorcycle_left.png", "motorcycle_right.png", "retina.jpg", "rocket.jpg")
DATA_DIR = os.path.dirname(skimage.data.__file__)
DEMO_IMAGE = os.path.join(DATA_DIR, "coffee.png")


def get_config():
  config = default.get_config()
  config.train_glob = ",".join(os.path.join(DATA_DIR, name) for name in _PHOTOS)
  config.valid_glob = DEMO_IMAGE
  config.num_filters = 64
  config.patch_size = 128
  config.valid_patch_size = 384
  config.batch_size = 8
  config.lmbda = 0.01
  config.learning_rate = 1e-3
  config.learning_rate_schedule = "cosine"
  config.num_train_steps = 1500
  config.log_every_steps = 100
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500
  return config
