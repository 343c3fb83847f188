"""The shipped models: the paper's model trained on the shared photographs (BSD68 colour and
Sun-Hays80, 1,386 ImageNet sample photographs, the 400 BSDS500 train and test photographs) and
validated on Set14. One run per λ, e.g. --config.lmbda=0.0067."""

from configs import default


def get_config():
  config = default.get_config()
  config.train_glob = ("../shared/data/train/*.png,../shared/data/train/*.jpg,"
                       "../shared/data/imagenet_sample/*.jpg,../shared/data/bsds500/*.jpg")
  config.valid_glob = "../shared/data/valid/*.png"
  config.num_valid_images = 16
  # Faster early progress than the paper's 1e-4; ×0.1 for the last quarter.
  config.learning_rate = 3e-4
  config.learning_rate_schedule = "piecewise"
  config.learning_rate_boundaries = (0.75,)
  config.num_train_steps = 40_000
  config.eval_every_steps = 2_000
  config.checkpoint_every_steps = 500
  return config
