#!/usr/bin/env bash
# Continue registered experiments, each at the commit its experiment file names (`code:`).
#
#   scripts/continue_experiment.sh experiments/imbalanced.yaml experiments/coverage-gap.yaml
#
# For each file: a worktree of that commit, $EXPERIMENT_TREES/<commit> (default
# .cache/experiments/<commit>; made once, kept: its runs/ folder holds unfinished runs), this
# checkout's results file copied into it when it holds more runs, `dataloop bench` run there
# with this checkout's venv (the worktree's own code first on the path), and the results file
# copied back when it holds more. Recorded runs are never run again, so it can be stopped
# (Ctrl-C, or kill) and started again at any point, here or on another machine after the results
# files are committed. A file without `code:` runs here, at this checkout's commit. Extra bench
# options go in BENCH_ARGS (e.g. BENCH_ARGS="--jobs 2"); OMP_NUM_THREADS defaults to 1.
set -euo pipefail
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
python=${PYTHON:-$repo/.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

lines() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }

for file in "$@"; do
    relative=$(realpath --relative-to="$repo" "$file")
    # The commit it names, and its results file relative to the checkout.
    read -r code results < <(cd "$repo" && PYTHONPATH=$repo "$python" -c '
import sys
from pathlib import Path
from dataloop.bench import load_experiment
spec, _ = load_experiment(Path(sys.argv[1]))
print(spec.code or "-", spec.results.resolve().relative_to(Path.cwd().resolve()))
' "$relative")
    if [ "$code" = "-" ]; then
        echo "== $relative at this checkout ($(git -C "$repo" rev-parse --short HEAD))"
        (cd "$repo" && "$python" -m dataloop.cli bench "$relative" --quiet ${BENCH_ARGS:-})
        continue
    fi
    tree=${EXPERIMENT_TREES:-$repo/.cache/experiments}/$code
    if [ ! -d "$tree" ]; then
        git -C "$repo" worktree add --detach "$tree" "$code"
    fi
    mkdir -p "$(dirname "$tree/$results")"
    if [ "$(lines "$repo/$results")" -gt "$(lines "$tree/$results")" ]; then
        cp "$repo/$results" "$tree/$results"
    fi
    echo "== $relative at $code ($tree)"
    status=0
    (cd "$tree" && PYTHONPATH=$tree "$python" -m dataloop.cli bench "$relative" --quiet \
        ${BENCH_ARGS:-}) || status=$?
    if [ "$(lines "$tree/$results")" -gt "$(lines "$repo/$results")" ]; then
        cp "$tree/$results" "$repo/$results"
        echo "$results: $(lines "$repo/$results") runs recorded (copied back; commit it)"
    fi
    [ "$status" -eq 0 ] || exit "$status"
done
