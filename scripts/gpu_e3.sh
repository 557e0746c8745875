#!/usr/bin/env bash
# E3, the Balancing flip (experiments/plans/E3-balancing-flip.md): answer augmentation,
# question rephrase and new questions x budget ratios 1, 8, 64 x 17 seeds on math word problems
# with worked solutions. experiments/e3-balancing-br{1,8,64}.yaml.
# One command that fits one 10-minute call on the lent GPU (its own deadline: 9 minutes in all,
# setup included; runs not finished by then are recorded as pending and a later call continues).
# Prints a table at the end; per-run records, bench's results and the table go to $OUT/e3/ (or
# runs/gpu/out/e3/ where $OUT is unset). See benchmarks/gpu_experiments.py.
#
#   scripts/gpu_e3.sh              # on the GPU machine (run: carry [".whl"])
#   scripts/gpu_e3.sh --download   # here, with network: fill .whl/ (as gpu_check.sh)
#   DEVICE=cpu scripts/gpu_e3.sh   # toy size on a CPU: a test of the machinery, not a result
set -uo pipefail
cd "$(dirname "$0")/.."
GPU_SCRIPT=gpu-e3 source scripts/gpu_setup.sh "$@"
toy=()
[[ "${DEVICE:-auto}" == "cpu" ]] && toy=(--toy)
exec "$PYTHON" benchmarks/gpu_experiments.py e3 "${toy[@]}"
