"""CLIC professional images through tensorflow-datasets (needs `pip install tensorflow-datasets`
and the data downloaded or reachable). With the images on disk instead, point the globs at them:
  --config.train_glob='/data/clic/train/*.png' --config.valid_glob='/data/clic/valid/*.png'
"""

from configs import default


def get_config():
  config = default.get_config()
  config.train_glob = "tfds:clic:train"
  config.valid_glob = "tfds:clic:validation"
  # CLIC's decoded images do not fit in memory.
  config.cache_images = False
  return config
