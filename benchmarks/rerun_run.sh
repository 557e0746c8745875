#!/usr/bin/env bash
# Make one recorded run of a registered experiment again, to see whether it reproduces: in the
# experiment's worktree (scripts/continue_experiment.sh makes it), from a copy of the experiment
# file cut to one arm and one seed, with this checkout's venv. Prints the rerun's transformers
# version, seconds and test accuracy beside the recorded run's.
#
#   benchmarks/rerun_run.sh experiments/imbalanced.yaml seed-only 100
#   EXTRA_PATH=/tmp/tf524 benchmarks/rerun_run.sh ...   # another package first on the path, e.g.
#       pip install --no-deps --target /tmp/tf524 transformers==5.24.0
#
# Used for "Reproducing E4 and E5" in docs/benchmarks.md; its records of 2026-12-04 are in
# benchmarks/results/reruns.jsonl (arm, seed, experiment, and the rerun's record).
set -euo pipefail
experiment=$1 arm=$2 seed=$3
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
py=${PYTHON:-$repo/.venv/bin/python}
code=$(sed -n 's/^code: *\([0-9a-f]*\).*/\1/p' "$repo/$experiment")
tree=${EXPERIMENT_TREES:-$repo/.cache/experiments}/$code
[ -d "$tree" ] || git -C "$repo" worktree add --quiet --detach "$tree" "$code"
stem=$(basename "$experiment" .yaml)
name=rerun-$stem-$arm-$seed-$(date +%s)
mkdir -p "$tree/reruns"
"$py" - "$tree/$experiment" "$arm" "$seed" "$name" "$tree/reruns/$name.yaml" <<'PY'
import sys, yaml
src, arm, seed, name, dst = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
d = yaml.safe_load(open(src))
d["name"], d["seeds"] = name, [seed]
d["arms"] = [a for a in d["arms"] if a["name"] == arm]
for key in ("primary", "manipulation", "baselines"):
    d.pop(key, None)
yaml.safe_dump(d, open(dst, "w"), sort_keys=False)
PY
(cd "$tree" && PYTHONPATH=$tree${EXTRA_PATH:+:$EXTRA_PATH} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
    "$py" -m dataloop.cli bench "reruns/$name.yaml" --quiet > "reruns/$name.log" 2>&1)
"$py" - "$tree/reruns/results/$name.jsonl" "$repo/experiments/results/$stem.jsonl" "$arm" "$seed" <<'PY'
import json, sys
rerun = json.loads(open(sys.argv[1]).readline())
arm, seed = sys.argv[3], int(sys.argv[4])
recorded = [r for r in map(json.loads, open(sys.argv[2])) if (r["arm"], r["seed"]) == (arm, seed)]
def row(label, r):
    print(f"{label}: transformers {r['code']['versions']['transformers']}, "
          f"{r['seconds']:.0f} s, test {100 * r['test']:.2f} %")
row("rerun   ", rerun)
for r in recorded:
    row("recorded", r)
PY
