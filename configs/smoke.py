"""Seconds on a CPU: a tiny model for tests. Point train_glob/valid_glob at some images."""

from configs import default


def get_config():
  config = default.get_config()
  config.train_glob = ""
  config.valid_glob = ""
  config.num_filters = 16
  config.num_latent_filters = 24
  config.num_slices = 3
  config.context_hidden = (16, 8)
  config.patch_size = 32
  config.valid_patch_size = 32
  config.batch_size = 2
  config.num_valid_images = 2
  config.learning_rate = 1e-3
  config.num_train_steps = 10
  config.log_every_steps = 5
  config.eval_every_steps = 10
  config.checkpoint_every_steps = 5
  return config
