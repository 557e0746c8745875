# Sourced by the GPU scripts (gpu_check.sh, gpu_llm2llm.sh, gpu_e3.sh), from the repository root:
# what a bare GPU image needs before dataloop runs there, with no network.
#
#   source scripts/gpu_setup.sh "$@"   # "--download" fills .whl/ here and exits
#
# A bare GPU image has torch, transformers, peft, accelerate, pyarrow and pytest but not the rest
# (trl, datasets, pydantic, openai, ...), and no network: pip installs what is missing or too old
# from the wheels in .whl/ (git-ignored; `--download` fills it, ~52 MB; a run call carries it:
# `carry: [".whl"]`). Nothing is downloaded on the GPU machine, and no weights at all.
# Env: DEVICE=cpu|auto (cpu hides any GPU), PYTHON (default: .venv/bin/python, else python3).
# Sets PYTHON, PYTHONPATH (the checkout first) and GPU_SETUP_SECONDS (the time setup took).

# What the scripts import that a torch image may lack, newest versions (transformers for
# SFTConfig's activation_checkpointing, which transformers 5.17 lacks). No torch, numpy,
# pyarrow, peft or accelerate: the image's own are used. transformers, trl and datasets are
# pinned to the versions E2b's and E3's recorded runs were made with: bench adds no run made
# with other versions to a results file, so a later call with newer wheels could not continue.
WHEELS=(
  trl==1.16.0 datasets==5.2.0 dill multiprocess xxhash pandas python-dateutil tzdata
  requests urllib3 charset-normalizer certifi idna
  pydantic pydantic-core annotated-types typing-inspection typing-extensions
  openai jiter sniffio anyio httpx2 httpcore2 truststore h11 tenacity gguf fsspec
  transformers==5.25.0 tokenizers huggingface-hub hf-xet safetensors regex tqdm
  jinja2 markupsafe pyyaml typer annotated-doc click shellingham rich markdown-it-py mdurl
  pygments sentencepiece pytest-timeout packaging filelock psutil datasketch kernels tomlkit
)
if [[ "${1:-}" == "--download" ]]; then
  rm -rf .whl && mkdir .whl
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}" || exit 1
  du -sh .whl
  exit 0
fi

if [[ "${DEVICE:-auto}" == "cpu" ]]; then
  export CUDA_VISIBLE_DEVICES=""
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PYTHON="${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
_setup_start=$SECONDS
# The project's dependencies but torch (the image's build stays) and matplotlib (reports only).
mapfile -t _needs < <("$PYTHON" - <<'PY'
import tomllib
for r in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    if not r.startswith(("torch", "matplotlib")):
        print(r)
PY
)
# Against the interpreter's own packages: only what is missing or below a floor is installed.
if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-index \
    --find-links .whl "${_needs[@]}" pytest-timeout >/tmp/gpu-setup-pip.log 2>&1; then
  tail -5 /tmp/gpu-setup-pip.log
  echo "${GPU_SCRIPT:-$(basename "$0" .sh)}: FAIL setup: pip could not install the dependencies from .whl/ (run" \
    "scripts/gpu_check.sh --download where there is network); see /tmp/gpu-setup-pip.log"
  exit 1
fi
echo "setup (pip from .whl/)       $((SECONDS - _setup_start))s"
export GPU_SETUP_SECONDS=$((SECONDS - _setup_start))
