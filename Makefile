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

demo: install
	$(PY) -m eic_jax.main --config=configs/demo.py --workdir=$(DEMO_DIR)
	$(PY) -m eic_jax.main --mode=compress --workdir=$(DEMO_DIR) \
	    --input=$$($(PY) -c 'from configs import demo; print(demo.DEMO_IMAGE)') \
	    --output=$(DEMO_DIR)/coffee.eic --verbose
	$(PY) -m eic_jax.main --mode=decompress --workdir=$(DEMO_DIR) \
	    --input=$(DEMO_DIR)/coffee.eic --output=$(DEMO_DIR)/coffee.png
	@echo "Reconstruction written to $(DEMO_DIR)/coffee.png"

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) -m eic_jax.bench

clean:
	rm -rf $(VENV) runs
