"""The channel-conditional mean–scale hyperprior (Minnen & Singh 2020, ms2020), grown from a
shipped bmshj2018 model of the same λ: its transforms and scale hyper-synthesis are copied, the
entropy model is trained first on the fixed latents, then everything at a low learning rate.

  stage 1: --config=configs/ms2020.py --config.lmbda=0.0067 \\
           --config.init_from=bmshj2018-mse-0.0067 --config.trainable=entropy_models
  stage 2: the same workdir, --config.trainable=all --config.learning_rate=1e-5
"""

from configs import bmshj2018


def get_config():
  config = bmshj2018.get_config()
  config.model = "ms2020"
  config.num_slices = 6
  config.max_support = 6
  config.context_hidden = (128, 64)
  return config
