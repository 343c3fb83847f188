PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= runs/demo

.PHONY: install demo test bench clean

$(VENV)/installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/installed

DEMO_MODEL ?= bls2017-mse-0.0067
DEMO_IMAGE = $$($(PY) -c 'from configs import demo; print(demo.DEMO_IMAGE)')

demo: install
	mkdir -p $(DEMO_DIR)
	@echo "== A shipped model, no training needed: $(DEMO_MODEL)"
	$(PY) -m eic_jax.main --mode=compress --model=$(DEMO_MODEL) --input=$(DEMO_IMAGE) \
	    --output=$(DEMO_DIR)/coffee-shipped.eic --verbose
	$(PY) -m eic_jax.main --mode=decompress --model=$(DEMO_MODEL) \
	    --input=$(DEMO_DIR)/coffee-shipped.eic --output=$(DEMO_DIR)/coffee-shipped.png
	@echo "== Training a small model for a few minutes"
	$(PY) -m eic_jax.main --config=configs/demo.py --workdir=$(DEMO_DIR)
	$(PY) -m eic_jax.main --mode=compress --workdir=$(DEMO_DIR) --input=$(DEMO_IMAGE) \
	    --output=$(DEMO_DIR)/coffee.eic --verbose
	$(PY) -m eic_jax.main --mode=decompress --workdir=$(DEMO_DIR) \
	    --input=$(DEMO_DIR)/coffee.eic --output=$(DEMO_DIR)/coffee.png
	@echo "Reconstructions written to $(DEMO_DIR)/coffee-shipped.png and $(DEMO_DIR)/coffee.png"

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) -m eic_jax.bench

clean:
	rm -rf $(VENV) runs
