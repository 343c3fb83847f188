"""The configuration a workdir stored at its latest start: `--config=configs/workdir.py:DIR`.

`python -m eic_jax.main --workdir=DIR` alone resumes with it (the command line adds this
--config), and `--config.FIELD=VALUE` overrides it as with any other config file.
"""

import json
import os

import ml_collections


def get_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir} has no stored configuration ({path}); give --config")
  with open(path) as stream:
    return ml_collections.ConfigDict(json.load(stream))
