# Quick start: `make demo` (the demo suite on data generated here, CPU) and `make test` (the test suite).
# Both create ./.venv with the pinned dependencies on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench-cpu

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -e '.[dev]' --config-settings editable_mode=compat
	# build the native CPU scan now (seconds; without a C compiler this prints why and the PyTorch scan runs)
	$(PY) -m kernels.cpu_native
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) run_all.py --suite demo

test: $(STAMP)
	$(PY) -m pytest -q

bench-cpu: $(STAMP)
	$(PY) benchmarks/scan_cpu.py
	$(PY) benchmarks/model.py
