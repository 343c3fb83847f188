"""MS-SSIM models fine-tuned from the shipped MSE models (Ballé et al. 2017 trained for both; the
peers make theirs this way, at a learning rate of 1e-5): bits per pixel + λ·(1 − MS-SSIM) on
256×256 crops of the shipped models' photographs. One run per λ and architecture, e.g.

  --config.model=bmshj2018 --config.lmbda=16 --config.init_from=bmshj2018-mse-0.0067

λ of about 3–60 spans roughly 0.15–0.8 bpp (see eic_jax/models/objective.py)."""

from configs import shipped


def get_config():
  config = shipped.get_config()
  config.distortion = "ms-ssim"
  config.lmbda = 16.0
  config.patch_size = 256
  config.valid_patch_size = 256
  config.quantization = "mixed"
  config.random_flips = True
  config.learning_rate = 1e-5
  config.learning_rate_schedule = "constant"
  config.num_train_steps = 200_000
  config.init_from = "bls2017-mse-0.0067"
  return config
