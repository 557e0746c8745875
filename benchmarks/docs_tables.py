"""Regenerate the experiment tables in docs/benchmarks.md from the committed per-run results.

    python benchmarks/docs_tables.py            # rewrite every table block in place
    python benchmarks/docs_tables.py --check    # exit 1 if a block differs (tests run this)

A table block in the docs is the lines between ``<!-- bench: NAME -->`` and
``<!-- /bench -->``; it holds ``results.md`` of ``experiments/NAME.yaml`` computed from
``experiments/results/NAME.jsonl`` alone (``dataloop bench experiments/NAME.yaml
--results-only`` prints the same), so every published number is recomputed from data in the
repository.

A block between ``<!-- perf: NAME -->`` and ``<!-- /perf -->`` holds a performance benchmark's
table: ``docs_table()`` of ``benchmarks/NAME.py``, computed from the data that benchmark
recorded under ``benchmarks/results/`` (committed).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

from dataloop.bench import load_experiment, markdown, recorded_results

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
BLOCK = re.compile(r"(<!-- bench: ([\w.-]+) -->\n)(.*?)(<!-- /bench -->)", re.DOTALL)
PERF = re.compile(r"(<!-- perf: ([\w-]+) -->\n)(.*?)(<!-- /perf -->)", re.DOTALL)


def table(name: str) -> str:
    """The results of ``experiments/<name>.yaml`` from its committed results file, without the
    title line."""
    experiment, base = load_experiment(ROOT / "experiments" / f"{name}.yaml")
    text = markdown(recorded_results(experiment, base))
    return text.split("\n", 2)[2]  # drop "# name" and the blank line after it


def perf_table(name: str) -> str:
    """``docs_table()`` of ``benchmarks/<name>.py``: its table of its committed data."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.docs_table())


def regenerate(docs: str) -> str:
    """``docs`` with every table block recomputed."""
    docs = BLOCK.sub(lambda m: m[1] + table(m[2]) + m[4], docs)
    return PERF.sub(lambda m: m[1] + perf_table(m[2]) + m[4], docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report blocks that differ")
    args = parser.parse_args()
    before = DOCS.read_text()
    after = regenerate(before)
    names = [m[2] for m in BLOCK.finditer(before)] + [m[2] for m in PERF.finditer(before)]
    if args.check:
        if after != before:
            print(f"{DOCS} is out of date: run python benchmarks/docs_tables.py", file=sys.stderr)
            sys.exit(1)
        print(f"{len(names)} table blocks match their results files: {', '.join(names)}")
        return
    DOCS.write_text(after)
    print(f"regenerated {len(names)} table blocks: {', '.join(names)}")


if __name__ == "__main__":
    main()
