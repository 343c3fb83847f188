import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from eic_jax.training import train
from tests.conftest import ROOT

pytestmark = pytest.mark.tfc


def test_reference_has_the_same_parameters_as_the_model(smoke_config):
  from eic_jax.tools import tf_reference  # pylint: disable=import-outside-toplevel
  state = train.create_train_state(smoke_config, jax.random.PRNGKey(0))
  ours = sorted(np.size(leaf) for leaf in jax.tree_util.tree_leaves(state.params))
  reference = tf_reference.ReferenceModel(smoke_config.num_filters)
  theirs = sorted(int(np.prod(v.shape)) for v in reference.trainable_variables)
  assert ours == theirs


def test_reference_step_is_timed_and_its_loss_is_finite():
  result = subprocess.run(
      [sys.executable, "-m", "eic_jax.tools.tf_reference", "--num_filters=8", "--patch_size=32",
       "--batch_size=2", "--repeats=2"],
      capture_output=True, text=True, check=True, cwd=ROOT, timeout=300)
  measured = json.loads(result.stdout.strip().splitlines()[-1])
  assert measured["tf_reference_step_s"] > 0
  assert np.isfinite(measured["final_loss"])
