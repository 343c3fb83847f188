"""The shipped scale-hyperprior models (Ballé et al. 2018, bmshj2018): N=128, M=192 (the
paper's low-rate size) on the shipped models' photographs, validated on Set14. One run per λ,
e.g. --config.lmbda=0.0067."""

from configs import shipped


def get_config():
  config = shipped.get_config()
  config.model = "bmshj2018"
  config.num_filters = 128
  config.num_latent_filters = 192
  config.learning_rate = 1e-4
  config.learning_rate_schedule = "constant"
  # Rounded latents for the synthesis from the start: what a decoder sees.
  config.quantization = "mixed"
  config.random_flips = True
  config.num_train_steps = 400_000
  return config
