#!/usr/bin/env bash
# Continue registered experiments, each at the commit its experiment file names (`code:`).
#
#   scripts/continue_experiment.sh experiments/imbalanced.yaml experiments/coverage-gap.yaml
#
# For each file: a worktree of that commit (one git already has at that commit, else
# $EXPERIMENT_TREES/<commit>, default .cache/experiments/<commit>, made once and kept: its runs/
# folder holds unfinished runs), this checkout's results file copied into it when it holds more
# runs, `dataloop bench` run there with this checkout's venv (the worktree's own code first on
# the path), and the results file copied back when it holds more: also when bench fails or is
# stopped (Ctrl-C). The worktree's copy of the experiment file is the one that runs (the
# registered one); a note says so when this checkout's copy differs in more than `code:`.
# Recorded runs are never run again, so it can be stopped and started again at any point,
# here or on another machine after the results files are committed. A file without `code:`
# runs here, at this checkout's commit. Runs left to make are made only with the package versions
# (torch, transformers, trl, peft, accelerate, datasets) the recorded runs were made with, unless
# ALLOW_OTHER_VERSIONS=1. Extra bench options go in BENCH_ARGS (e.g. BENCH_ARGS="--jobs 2");
# OMP_NUM_THREADS defaults to 1.
set -euo pipefail
trap 'exit 130' INT TERM  # a normal exit, so that the EXIT trap copies the records back
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
python=${PYTHON:-$repo/.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

lines() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }

# "<code or -> <results file relative to the checkout>", or one line on stderr and status 1.
describe() {
    (cd "$repo" && PYTHONPATH=$repo "$python" - "$1" <<'EOF'
import os
import sys
from pathlib import Path

from dataloop.bench import BenchError, load_experiment, read_results
from dataloop.identity import code_identity, version_differences

try:
    spec, _ = load_experiment(Path(sys.argv[1]))
    results = spec.results.resolve().relative_to(Path.cwd().resolve())
    recorded = read_results(spec.results)
except (BenchError, ValueError) as exc:
    sys.exit(f"continue_experiment: {exc}")
# Runs left to make: only with the package versions the recorded runs were made with (E5 was
# continued after a fresh install had moved transformers from 5.24.0 to 5.25.0, unnoticed).
differing = version_differences((r.code for r in recorded), code_identity())
if differing and len(recorded) < len(spec.arms) * len(spec.seeds) and not os.environ.get(
    "ALLOW_OTHER_VERSIONS"
):
    sys.exit(
        f"continue_experiment: {sys.argv[1]}'s {len(recorded)} recorded runs were made with "
        f"other packages than {sys.executable}'s: {'; '.join(differing)}; install the recorded "
        "versions in it (pip install 'NAME==VERSION'), or set ALLOW_OTHER_VERSIONS=1"
    )
print(spec.code or "-", results)
EOF
    )
}

# The worktree at commit $1: one git has, or a new one.
worktree_at() {
    local full
    full=$(git -C "$repo" rev-parse --verify "$1^{commit}")
    local found
    found=$(git -C "$repo" worktree list --porcelain | awk -v c="$full" \
        '/^worktree /{w=substr($0, 10)} /^HEAD /{if ($2 == c) {print w; exit}}')
    if [ -n "$found" ] && [ "$found" != "$repo" ]; then
        echo "$found"
        return
    fi
    local tree=${EXPERIMENT_TREES:-$repo/.cache/experiments}/$1
    if [ ! -d "$tree" ]; then
        git -C "$repo" worktree add --quiet --detach "$tree" "$1" >&2
    fi
    echo "$tree"
}

copy_back() {
    if [ "$(lines "$tree/$results")" -gt "$(lines "$repo/$results")" ]; then
        cp "$tree/$results" "$repo/$results"
        echo "$results: $(lines "$repo/$results") runs recorded (copied back; commit it)"
    fi
}

for file in "$@"; do
    relative=$(realpath --relative-to="$repo" "$file")
    described=$(describe "$relative") || exit 1
    read -r code results <<< "$described"
    if [ "$code" = "-" ]; then
        echo "== $relative at this checkout ($(git -C "$repo" rev-parse --short HEAD))"
        # shellcheck disable=SC2086  # BENCH_ARGS: options, split on purpose
        (cd "$repo" && "$python" -m dataloop.cli bench "$relative" --quiet ${BENCH_ARGS:-})
        continue
    fi
    tree=$(worktree_at "$code")
    if ! (cd "$repo" && PYTHONPATH=$repo "$python" - "$relative" "$code" <<'EOF'
import subprocess
import sys

import yaml

here = yaml.safe_load(open(sys.argv[1]))
there = yaml.safe_load(subprocess.run(
    ["git", "show", f"{sys.argv[2]}:{sys.argv[1]}"], capture_output=True, text=True, check=True
).stdout)
here.pop("code", None)
there.pop("code", None)
sys.exit(0 if here == there else 1)
EOF
    ); then
        echo "note: $relative here differs from its copy at $code in more than 'code:';" \
            "the runs follow the copy at $code"
    fi
    mkdir -p "$(dirname "$tree/$results")"
    if [ "$(lines "$repo/$results")" -gt "$(lines "$tree/$results")" ]; then
        cp "$repo/$results" "$tree/$results"
    fi
    echo "== $relative at $code ($tree)"
    trap copy_back EXIT
    # shellcheck disable=SC2086  # BENCH_ARGS: options, split on purpose
    (cd "$tree" && PYTHONPATH=$tree "$python" -m dataloop.cli bench "$relative" --quiet \
        ${BENCH_ARGS:-})
    trap - EXIT
    copy_back
done
