#!/usr/bin/env bash
# E2b, LLM2LLM as its code runs it (experiments/plans/E2b-llm2llm-faithful.md):
# a student pretrained here, 3 epochs from the base each iteration, failures found by sampling,
# the ROUGE-L novelty filter on; seed-only trained the same way. experiments/llm2llm-faithful.yaml.
# One command that fits one 10-minute call on the lent GPU (its own deadline: 9 minutes in all,
# setup included; runs not finished by then are recorded as pending and a later call continues).
# Prints a table at the end; per-run records, bench's results and the table go to $OUT/llm2llm/ (or
# runs/gpu/out/llm2llm/ where $OUT is unset). See benchmarks/gpu_experiments.py.
#
#   scripts/gpu_llm2llm.sh              # on the GPU machine (run: carry [".whl"])
#   scripts/gpu_llm2llm.sh --download   # here, with network: fill .whl/ (as gpu_check.sh)
#   DEVICE=cpu scripts/gpu_llm2llm.sh   # toy size on a CPU: a test of the machinery, not a result
set -uo pipefail
cd "$(dirname "$0")/.."
GPU_SCRIPT=gpu-llm2llm source scripts/gpu_setup.sh "$@"
toy=()
[[ "${DEVICE:-auto}" == "cpu" ]] && toy=(--toy)
exec "$PYTHON" benchmarks/gpu_experiments.py llm2llm "${toy[@]}"
