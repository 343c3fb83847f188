PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A second environment for the tests: the newest Python the machine has, with the newest jax,
# flax, optax, orbax and NumPy 2, without TensorFlow, as a JAX user's own machine may have them.
# Its Python: the newest python3.13 or later on the PATH that runs (a pyenv shim of a version
# not selected does not), else pyenv's newest 3.13 or later, else $(PYTHON).
NEWEST_VENV ?= .venv-newest
ifndef PYTHON_NEWEST
PYENV_VERSIONS := $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions
PYTHON_NEWEST := $(or $(firstword $(foreach v,3.16 3.15 3.14 3.13,$(shell python$(v) -c 'import sys; print(sys.executable)' 2>/dev/null))),$(lastword $(sort $(wildcard $(PYENV_VERSIONS)/3.1[3-9]*/bin/python))),$(PYTHON))
endif
NEWEST_PY := $(NEWEST_VENV)/bin/python
# A pytest worker per core, each taking the next test as it finishes.
PYTEST_ARGS ?= -q -rs -n auto --dist worksteal
DEMO_DIR ?= runs/demo

.PHONY: install install-newest demo test bench clean

define VERSIONS
import sys, jax, flax, optax, orbax.checkpoint as o, numpy
from eic_jax.coder import coders
print("Python", sys.version.split()[0], "jax", jax.__version__, "flax", flax.__version__, "optax", optax.__version__, "orbax-checkpoint", o.__version__, "numpy", numpy.__version__, "coders:", ", ".join(coders.installed()))
endef
export VERSIONS

# --clear: an environment left by a failed install (another Python, say) is made anew.
$(VENV)/installed: pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[coding,tfds,test]'
	touch $@

$(NEWEST_VENV)/installed: pyproject.toml
	$(PYTHON_NEWEST) -m venv --clear $(NEWEST_VENV)
	$(NEWEST_PY) -m pip install --quiet --upgrade pip
	$(NEWEST_PY) -m pip install --quiet --upgrade -e '.[test]'
	@$(NEWEST_PY) -c 'import importlib.util as u, sys; sys.exit(u.find_spec("tensorflow") is not None)' \
	    || (echo "$(NEWEST_VENV) must not have TensorFlow"; exit 1)
	touch $@

install: $(VENV)/installed

install-newest: $(NEWEST_VENV)/installed

DEMO_MODEL ?= bls2017-mse-0.0067
# Expanded when the demo runs, after the install: the photo's path, not the command that finds it.
DEMO_IMAGE = $(shell $(PY) -c 'from configs import demo; print(demo.DEMO_IMAGE)')

demo: install
	mkdir -p $(DEMO_DIR)
	@echo "== A shipped model, no training needed: $(DEMO_MODEL)"
	$(PY) -m eic_jax.main --mode=compress --model=$(DEMO_MODEL) --input=$(DEMO_IMAGE) \
	    --output=$(DEMO_DIR)/coffee-shipped.eic --verbose
	$(PY) -m eic_jax.main --mode=decompress --model=$(DEMO_MODEL) \
	    --input=$(DEMO_DIR)/coffee-shipped.eic --output=$(DEMO_DIR)/coffee-shipped.png
	@echo "== Training a small model: about 2 minutes on 2 CPU cores"
	$(PY) -m eic_jax.main --config=configs/demo.py --workdir=$(DEMO_DIR)
	$(PY) -m eic_jax.main --mode=compress --workdir=$(DEMO_DIR) --input=$(DEMO_IMAGE) \
	    --output=$(DEMO_DIR)/coffee.eic --verbose
	$(PY) -m eic_jax.main --mode=decompress --workdir=$(DEMO_DIR) \
	    --input=$(DEMO_DIR)/coffee.eic --output=$(DEMO_DIR)/coffee.png
	@echo "Reconstructions written to $(DEMO_DIR)/coffee-shipped.png and $(DEMO_DIR)/coffee.png."
	@echo "Expect the small model's to be blurrier and its colours a little off (about 24-25 dB"
	@echo "against the shipped model's 29 dB): minutes of training on a few photographs, where"
	@echo "the shipped models had many hours of it on 1,934 (README: Training)."

# The two environments install side by side (a minute sooner on 2 cores), then test one by one:
# each run already keeps every core busy.
test:
	@$(MAKE) --no-print-directory -j2 install install-newest
	@echo "== Layers: imports only go down (the contract in pyproject.toml)"
	$(VENV)/bin/lint-imports --no-cache
	@echo "== Tests in the [coding] environment: TensorFlow Compression's coder where it installs (Python <= 3.12)"
	@$(PY) -c "$$VERSIONS"
	$(PY) -m pytest $(PYTEST_ARGS)
	@echo "== Tests with the newest Python, jax, flax, optax, orbax and NumPy 2, without TensorFlow"
	@$(NEWEST_PY) -c "$$VERSIONS"
	$(NEWEST_PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m eic_jax.tools.bench

clean:
	rm -rf $(VENV) $(NEWEST_VENV) runs
