"""The GPU experiments E2b (LLM2LLM as its code does it) and E3 (the Balancing flip), each one
command that fits one 10-minute call on the lent GPU; ``--toy`` runs them at toy size on a CPU.

    python benchmarks/gpu_experiments.py llm2llm [--toy] [--out DIR]
    python benchmarks/gpu_experiments.py e3 [--toy] [--out DIR]

(``scripts/gpu_llm2llm.sh`` and ``scripts/gpu_e3.sh`` install what the GPU image lacks from
``.whl/`` and call this.) Each command:

1. builds the student there is no hub to download: a small Llama with the character tokenizer,
   *pretrained* for a fixed time on text of the task's kind that does not hold the scored
   answers (this replaces the papers' pretrained LLMs; see the plans in experiments/plans/);
2. serves the task teacher (:mod:`task_teacher`: the task's generator answering the engine's
   prompts; the machine has no LLM) at the port the experiment file names;
3. runs the registered experiment file(s) with ``dataloop bench`` (one process a run, several
   at once), stopping at a deadline so the call ends in time: finished runs are recorded, the
   rest are listed as pending and a later call continues them;
4. prints a table (E3: with its manipulation check, from the run folders) and copies the
   per-run records into ``--out`` (``$OUT`` on the GPU machine: what comes back; bench's
   results are remade from the committed records with ``dataloop bench --results-only``).

``--toy`` shrinks everything (2 seeds, a few examples, a tiny model, seconds of pretraining)
into a copy of the experiment file under ``--out``: a test of the machinery, not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import task_teacher  # noqa: E402
import word_problems as wp  # noqa: E402

LLM2LLM_FILE = ROOT / "experiments" / "llm2llm-faithful.yaml"
E3_RATIOS = (1, 64, 8)
"""E3's budget ratios (teacher queries per seed), in the order they run: the two ends, which
decide the registered flip, before the middle one."""
E3_FILES = {r: ROOT / "experiments" / f"e3-balancing-br{r}.yaml" for r in E3_RATIOS}
E3_POOL_SEED = 3
E3_POOL = {"train": 3000, "validation": 100, "test": 300}
PRETRAIN_SEED = 0
FULL = {"width": 384, "layers": 6}
"""The student on the GPU: 10,660,224 parameters (6 layers x 384, the character tokenizer)."""
TOY = {"width": 64, "layers": 2}
LLM2LLM_PRETRAIN_STEPS = 3690
"""E2b's pretraining: the steps its registered 90 s reached on the H200 in the call that made
its runs (2026-12-04, batch 128), so that a rerun anywhere pretrains that base."""
E3_PRETRAIN_STEPS = 1577
"""E3's pretraining: the steps its registered 60 s reached on the H200 in its first call
(2026-12-04), fixed so that every call of E3 pretrains the same base (see the E3 plan)."""


def _say(text: str) -> None:
    print(text, flush=True)


# 1. The pretrained student.


def llm2llm_corpus(rng: random.Random) -> str:
    """Pretraining text for E2b's student: solved problems of the arithmetic skills the
    experiment does not score (add, sub, mul), and the scored skills' questions *without*
    answers, so the base knows the format and the inputs but none of the scored answers."""
    from dataloop.envs.arithmetic import SKILLS, solve

    if rng.random() < 0.5:
        skill = rng.choice(["add", "sub", "mul"])
        question = SKILLS[skill].sample(rng)
        return f"{question}={solve(skill, question)}"
    return SKILLS[rng.choice(["first", "last", "len", "max", "sort", "reverse"])].sample(rng)


def e3_corpus(rng: random.Random) -> str:
    """Pretraining text for E3's student: chains of the solutions' arithmetic without words, so
    the base can calculate but has seen no word problem."""
    return " ".join(wp.equations(rng) for _ in range(rng.randint(1, 3)))


def pretrain(
    corpus: Callable[[random.Random], str],
    out: Path,
    *,
    width: int,
    layers: int,
    steps: int | None = None,
    seconds: float | None = None,
    max_length: int,
    batch_size: int = 128,
) -> dict[str, Any]:
    """Build a Llama (character tokenizer) and train it on ``corpus`` lines for ``steps``
    optimiser steps (or, without them, for ``seconds``: the toy size); save it (weights and
    tokenizer) to ``out`` and what was done to ``out/pretraining.json``, and return that record.

    The full-size experiments give steps, so that every call pretrains the same base: by time,
    a call on a busier or other GPU made a different student, and an experiment split over
    calls paired runs of different students."""
    if (steps is None) == (seconds is None):
        raise ValueError("pretrain takes steps or seconds, one of them")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from dataloop.students.tiny import build_tokenizer

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=width,
        intermediate_size=width * 8 // 3,
        num_hidden_layers=layers,
        num_attention_heads=max(1, width // 64),
        num_key_value_heads=max(1, width // 64),
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(PRETRAIN_SEED)
    model = LlamaForCausalLM(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    rng = random.Random(PRETRAIN_SEED)
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    start, done_steps, loss = time.monotonic(), 0, float("nan")
    model.train()
    while done_steps < steps if steps is not None else time.monotonic() - start < (seconds or 0):
        texts = [corpus(rng) for _ in range(batch_size)]
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        rows = [[bos, *ids, eos][:max_length] for ids in encoded]
        longest = max(map(len, rows))
        ids = torch.tensor([r + [pad] * (longest - len(r)) for r in rows], device=device)
        labels = ids.masked_fill(ids == pad, -100)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=cuda):
            loss_t = model(input_ids=ids, attention_mask=(ids != pad).long(), labels=labels).loss
        loss_t.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done_steps += 1
        if done_steps % 50 == 0:
            loss = loss_t.item()
    loss = loss_t.item() if done_steps else loss
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())
    done = {
        "parameters": params,
        "layers": layers,
        "width": width,
        "steps": done_steps,
        "batch_size": batch_size,
        "seconds": round(time.monotonic() - start, 1),
        "final_loss": round(loss, 4),
        "device": device,
    }
    (out / "pretraining.json").write_text(json.dumps(done, indent=1) + "\n")
    _say(f"pretrained base: {json.dumps(done)}")
    return done


# 2-3. Experiment files, the teacher, bench.


def toy_copy(path: Path, out: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the experiment file under ``out``, shrunk by ``change``; its records stay
    beside it (``out/results/``), never in the repository's."""
    data = yaml.safe_load(path.read_text())
    data["name"] = f"{data['name']}-toy"
    data.pop("results", None)
    if "config" in data:  # the copy lives elsewhere: its base config by absolute path
        data["config"] = str((path.parent / data["config"]).resolve())
    change(data)
    copy = out / path.name.replace(".yaml", "-toy.yaml")
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return copy


def teacher_port(path: Path) -> int:
    """The port of the task teacher the experiment file names (``teacher.base_urls``)."""
    from dataloop.bench import load_experiment

    url = load_experiment(path)[1].teacher.base_urls[0]
    return int(url.rsplit(":", 1)[1].split("/")[0])


@contextmanager
def serving(generator: task_teacher.Generator, port: int) -> Iterator[task_teacher.TaskTeacher]:
    """The task teacher on 127.0.0.1:``port`` while the block runs."""
    with task_teacher.TaskTeacher(generator, port=port) as teacher:
        _say(f"task teacher at {teacher.base_url}")
        yield teacher


def bench(experiment: Path, runs: Path, jobs: int, deadline: float | None, log: Path) -> str:
    """``dataloop bench`` on ``experiment`` until it ends or ``deadline`` (monotonic) passes.
    Returns ``""`` when it finished, else why not (stopped at the deadline, or bench failed);
    then the tables are made again from what is recorded, so the runs that did finish are
    tabulated and come back whatever happened to the others."""
    command = [sys.executable, "-m", "dataloop.cli", "bench", str(experiment), "--out", str(runs)]
    command += ["--quiet"] + (["--jobs", str(jobs), "--threads", "1"] if jobs > 1 else [])
    with log.open("a") as f:
        process = subprocess.Popen(
            command, stdout=f, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
        )
        try:
            left = None if deadline is None else max(1.0, deadline - time.monotonic())
            code = process.wait(timeout=left)
            problem = "" if code == 0 else f"bench failed (exit {code}; see {log.name})"
        except subprocess.TimeoutExpired:
            problem = "stopped at the deadline; unfinished runs are pending"
            os.killpg(process.pid, signal.SIGTERM)  # bench and the runs it started
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if not problem:
            return ""
        _say(f"{experiment.name}: {problem}")
        subprocess.run(
            [*command[:7], "--results-only"], stdout=f, stderr=subprocess.STDOUT, cwd=ROOT
        )
    return problem


def collect(experiment: Path, runs: Path, out: Path) -> dict[str, Any]:
    """Copy the per-run records into ``out``; return bench's results.json.

    Only the records travel back: the device tool returns at most 8 files a call (E3 writes
    three experiments' records, the table, the log and the pretraining record), and the
    results and curves are remade here from the records (``dataloop bench --results-only``)."""
    from dataloop.bench import load_experiment

    spec, _ = load_experiment(experiment)
    assert spec.results is not None and spec.name is not None
    target = out / spec.name
    target.mkdir(parents=True, exist_ok=True)
    if spec.results.exists() and spec.results.resolve() != (target / spec.results.name).resolve():
        shutil.copy(spec.results, target / spec.results.name)
    return dict(json.loads((runs / "results.json").read_text()))


RETURNED_FILES = 8  # the device tool's limit on files back from $OUT, two folders down


def returned(root: Path) -> list[Path]:
    """The files under ``root`` ($OUT) the device tool would bring back: two folders down."""
    return sorted(
        p for p in root.glob("**/*") if p.is_file() and len(p.relative_to(root).parts) <= 3
    )


def _cell(estimate: dict[str, Any]) -> str:
    if estimate["n"] == 0:
        return "—"
    if estimate["n"] == 1:
        return f"{100 * estimate['mean']:.1f}"
    mean, low, high = (100 * estimate[k] for k in ("mean", "low", "high"))
    return f"{mean:.1f} [{low:.1f}, {high:.1f}]"


def _decision(result: dict[str, Any]) -> str:
    primary = result.get("primary")
    if not primary:
        return "—"
    diff = primary["result"]["difference"] if primary["result"] else None
    shown = f" ({_cell(diff)})" if diff else ""
    return f"{primary['arm']} − {primary['baseline']}: {primary['verdict']}{shown}"


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """One line per (experiment, arm): runs, examples, final validation and test accuracy
    (95 % CI over seeds), and each experiment's registered decision."""
    lines = [
        "| experiment | arm | runs | queries | examples | final val. acc. | test acc. |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    decisions = []
    for label, result in rows:
        for arm in result["arms"]:
            lines.append(
                f"| {label} | {arm['arm']} | {arm['runs']} | {arm['queries']:.0f} | "
                f"{arm['examples']:.0f} | {_cell(arm['final'])} | {_cell(arm['test'])} |"
            )
        pending = len(result.get("pending", []))
        decisions.append(
            f"{label}: {_decision(result)}" + (f"; {pending} runs pending" if pending else "")
        )
    return "\n".join([*lines, "", *decisions])


def e3_manipulation(experiment: Path, runs: Path) -> str:
    """E3's registered manipulation check from the run folders (which stay on the GPU machine):
    per arm, the examples accepted and the share that is what the arm asks for: answer
    augmentation, a seed's question (should be all); question rephrase, a seed's answer
    (should be all); new questions, a question that is no seed's (should be all)."""
    from dataloop.bench import load_experiment
    from dataloop.envs.math import MathTask

    spec, base = load_experiment(experiment)
    options = dict(base.env.options)
    options["data_files"] = str(ROOT / options["data_files"])
    lines = []
    for arm in spec.arms:
        made = kind = folders = 0
        for run in sorted(p for p in (runs / arm.name).glob("seed-*") if p.is_dir()):
            folders += 1
            rows = [
                json.loads(line)
                for path in sorted(run.glob("iterations/*/accepted.jsonl"))
                for line in path.read_text().splitlines()
            ]
            if not rows:
                continue
            seeds = MathTask(seed=int(run.name.removeprefix("seed-")), **options).split("train")
            questions, answers = {e.question for e in seeds}, {e.answer for e in seeds}
            made += len(rows)
            if arm.name == "answer-augmentation":
                kind += sum(r["question"] in questions for r in rows)
            elif arm.name == "question-rephrase":
                kind += sum(r["answer"] in answers for r in rows)
            else:
                kind += sum(r["question"] not in questions for r in rows)
        if not folders:  # made in an earlier call: its folders stayed on that machine
            lines.append(f"{arm.name}: not counted, no run folders here")
            continue
        share = f"{100 * kind / made:.0f} %" if made else "—"
        lines.append(f"{arm.name}: {made} accepted in {folders} runs, {share} of its kind")
    return f"{experiment.stem} manipulation check: " + "; ".join(lines)


# The two experiments.


def run_llm2llm(out: Path, toy: bool, deadline: float | None, jobs: int) -> tuple[str, list[str]]:
    """E2b: pretrained student, LLM2LLM from the base each iteration, the task teacher."""
    experiment = LLM2LLM_FILE
    base = ROOT / "runs" / "gpu" / "llm2llm-base"
    if toy:
        base = out / "toy-base"

        def shrink(data: dict[str, Any]) -> None:
            data["seeds"] = data["seeds"][:2]
            data["base"]["iterations"] = 1
            data["base"]["env"]["options"] = {
                "skills": ["first", "max"],
                "train_per_skill": 8,
                "validation_per_skill": 8,
                "test_per_skill": 8,
            }
            data["base"]["student"].update(model=str(base), epochs=1, batch_size=8)

        experiment = toy_copy(experiment, out, shrink)
    length = {"seconds": 3} if toy else {"steps": LLM2LLM_PRETRAIN_STEPS}
    pretrain(llm2llm_corpus, base, **(TOY if toy else FULL), **length, max_length=32)
    shutil.copy(base / "pretraining.json", out / "pretraining.json")
    runs = out / "runs" if toy else ROOT / "runs" / "llm2llm-faithful"
    with serving(task_teacher.ArithmeticGenerator(), teacher_port(experiment)):
        problem = bench(experiment, runs, jobs, deadline, out / "bench.log")
    result = collect(experiment, runs, out)
    return table([(result["name"], result)]), [f"{experiment.stem}: {problem}"] if problem else []


def run_e3(out: Path, toy: bool, deadline: float | None, jobs: int) -> tuple[str, list[str]]:
    """E3: strategies x budget ratios x seeds, the word-problem gym, one experiment a ratio."""
    data = ROOT / "runs" / "gpu" / "e3-data"
    base = ROOT / "runs" / "gpu" / "e3-base"
    pool = dict(E3_POOL)
    ratios: tuple[int, ...] = E3_RATIOS
    if toy:
        data, base, ratios = out / "toy-data", out / "toy-base", (1, 8)
        pool = {"train": 200, "validation": 10, "test": 10}
    known = wp.write_pool(data, E3_POOL_SEED, pool)
    length = {"seconds": 3} if toy else {"steps": E3_PRETRAIN_STEPS}
    pretrain(e3_corpus, base, **(TOY if toy else FULL), **length, max_length=192)
    shutil.copy(base / "pretraining.json", out / "pretraining.json")
    rows, problems, checks = [], [], []
    with serving(task_teacher.WordProblemGenerator(known), teacher_port(E3_FILES[1])):
        for ratio in ratios:
            experiment = E3_FILES[ratio]
            runs = ROOT / "runs" / experiment.stem
            if toy:

                def shrink(d: dict[str, Any], ratio: int = ratio) -> None:
                    d["seeds"] = d["seeds"][:1]
                    seeds = 6
                    d["budget"]["queries"] = ratio * seeds
                    d["base"]["policy"]["examples_per_iteration"] = ratio * seeds
                    d["base"]["env"] = {
                        "options": dict(
                            data_files=str(data), train_size=seeds, validation_size=10, test_size=10
                        )
                    }
                    d["base"]["student"] = dict(
                        model=str(base), batch_size=8, max_new_tokens=48, epochs=1
                    )

                experiment = toy_copy(experiment, out, shrink)
                runs = out / "runs" / experiment.stem
            if deadline is not None and time.monotonic() > deadline - 30:
                problems.append(f"{experiment.stem}: not started, the call's time is spent")
                continue
            if problem := bench(experiment, runs, jobs, deadline, out / "bench.log"):
                problems.append(f"{experiment.stem}: {problem}")
            rows.append((f"BR {ratio}", collect(experiment, runs, out)))
            checks.append(e3_manipulation(experiment, runs))
    return "\n\n".join([table(rows), *checks]), problems


def main(argv: list[str] | None = None) -> int:
    """Run one experiment; print its table; write everything that should come back to --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=["llm2llm", "e3"])
    parser.add_argument("--toy", action="store_true", help="toy size, for a CPU (a smoke test)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "runs/gpu/out"))
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds for everything, setup included (default 540; none with --toy)",
    )
    parser.add_argument("--jobs", type=int, default=None, help="runs at once (default 16; toy 1)")
    args = parser.parse_args(argv)
    began = time.monotonic() - float(os.environ.get("GPU_SETUP_SECONDS", "0"))
    budget = args.budget if args.budget is not None else None if args.toy else 540.0
    deadline = None if budget is None else began + budget
    jobs = args.jobs or (1 if args.toy else 16)
    out = args.out.resolve() / args.experiment
    out.mkdir(parents=True, exist_ok=True)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    run = run_llm2llm if args.experiment == "llm2llm" else run_e3
    text, problems = run(out, args.toy, deadline, jobs)
    text = "\n".join([text, *problems])
    if args.toy:
        text = f"toy size: a test of the machinery, not a result\n\n{text}"
    _say(text)
    (out / "table.md").write_text(text + "\n")
    if not args.toy and len(back := returned(out.parent)) > RETURNED_FILES:
        _say(f"warning: {len(back)} files under $OUT; only {RETURNED_FILES} come back")
    _say(f"{args.experiment}: done in {time.monotonic() - began:.0f}s; results in {out}")
    return 1 if any("failed" in p for p in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
