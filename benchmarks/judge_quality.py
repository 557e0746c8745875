"""Does the LLM judge (``engine.judge``) tell right examples from wrong ones?

A labelled set from the arithmetic task (a task seed no experiment uses): per skill, ``--per-skill``
of its training examples as they are (right) and as many with the answer of another example of
the skill put in their place (wrong, checked by the task). Each prompt variant's judge scores
every example through dataloop's own :class:`~dataloop.engine.judge.Judge`, against the packaged
Gemma 3 270M on llama-server (or ``--url``), and the table shows, per variant: the mean score of
right and of wrong examples, the share of each kept at the threshold (4, the default), the
difference of those shares (what the filter is for: keep right, drop wrong; 0 is a coin), the
share of replies it could not read, and the share of reasons that repeat one text (a judge
copying its prompt).

    .venv/bin/python benchmarks/judge_quality.py --variant shipped --variant \\
        no-example-score=benchmarks/judge_prompts/no-example-score
    .venv/bin/python benchmarks/judge_quality.py --table   # the table of the recorded data

``shipped`` is ``prompts/judge/``; ``NAME=DIR`` a prompts folder holding ``judge/<kind>.j2``.
Each judgement is appended to ``benchmarks/results/judge_quality.jsonl`` (committed);
docs/benchmarks.md's table is :func:`docs_table` of it. The labelled set is the judge's own,
not any student's validation or test split. Serve nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from dataloop.engine.judge import Judge
from dataloop.envs.arithmetic import ArithmeticTask
from dataloop.llm import OpenAIClient
from dataloop.llm.server import default_gguf, llama_server
from dataloop.llm.teacher import Teacher, TeacherKind
from dataloop.llm.templates import Templates
from dataloop.schema import Example

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "judge_quality.jsonl"
TASK_SEED = 950
"""The labelled set's task seed: no experiment uses it."""
THRESHOLD = 4


class Judgement(BaseModel):
    """One labelled example, scored by one variant."""

    session: str
    commit: str
    variant: str
    kind: str
    repeat: int
    skill: str
    label: str
    """``right`` or ``wrong``."""
    score: int | None
    reason: str


def labelled(per_skill: int, seed: int = TASK_SEED) -> list[tuple[Example, str]]:
    """Per skill, ``per_skill`` right training examples and as many wrong: the same questions
    with the answer of another example of the skill (one the task scores wrong)."""
    task = ArithmeticTask(seed=seed)
    out: list[tuple[Example, str]] = []
    for skill in task.skills():
        pool = [e for e in task.split("train") if e.skill == skill.name]
        right = pool[:per_skill]
        for i, example in enumerate(right):
            out.append((example, "right"))
            for other in pool[i + 1 :] + pool[:i]:
                wrong = example.model_copy(update={"id": f"{example.id}-w", "answer": other.answer})
                if task.check_answer(wrong) is False:
                    out.append((wrong, "wrong"))
                    break
    return out


async def judge_all(
    client: OpenAIClient,
    kind: TeacherKind,
    folder: Path | None,
    examples: list[tuple[Example, str]],
    task: ArithmeticTask,
) -> list[tuple[int | None, str]]:
    """Each example's score (None: not read) and reason, from the judge the engine would build
    on ``client`` with the prompts in ``folder`` (None: the shipped ones); closes ``client``."""
    judge = Judge(Teacher(client, kind, Templates(folder)), threshold=THRESHOLD)
    skills = {s.name: s for s in task.skills()}
    try:
        judged = await asyncio.gather(*(judge.judge(e, skills[e.skill]) for e, _ in examples))
    finally:
        await client.aclose()
    return [
        (j.example.provenance.judge_score, j.example.provenance.judge_reason or "") for j in judged
    ]


def read(path: Path = RESULTS) -> list[Judgement]:
    if not path.exists():
        return []
    return [Judgement.model_validate_json(x) for x in path.read_text().splitlines() if x]


def table(rows: list[Judgement]) -> str:
    """Per (session, variant): right and wrong examples' mean score and share kept, the
    difference of the shares kept, unreadable replies and the most repeated reason's share."""
    if not rows:
        return "No measurement recorded yet.\n"
    groups: dict[tuple[str, str, str], list[Judgement]] = {}
    for row in rows:
        groups.setdefault((row.session, row.variant, row.kind), []).append(row)
    lines = [
        "| session | variant | kind | judgements | mean score right / wrong | kept right "
        "| kept wrong | kept right − kept wrong | unread | most repeated reason |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (session, variant, kind), group in groups.items():
        by = {label: [r for r in group if r.label == label] for label in ("right", "wrong")}

        def mean(rs: list[Judgement]) -> str:
            scores = [r.score for r in rs if r.score is not None]
            return f"{sum(scores) / len(scores):.2f}" if scores else "—"

        def kept(rs: list[Judgement]) -> float:
            return sum(r.score is not None and r.score >= THRESHOLD for r in rs) / max(len(rs), 1)

        unread = sum(r.score is None for r in group) / len(group)
        repeated = Counter(r.reason for r in group).most_common(1)[0][1] / len(group)
        lines.append(
            f"| {session[:16]} | {variant} | {kind} | {len(group)} | "
            f"{mean(by['right'])} / {mean(by['wrong'])} | "
            f"{100 * kept(by['right']):.0f} % | {100 * kept(by['wrong']):.0f} % | "
            f"{100 * (kept(by['right']) - kept(by['wrong'])):+.0f} points | "
            f"{100 * unread:.0f} % | {100 * repeated:.0f} % |"
        )
    commits = sorted({r.commit for r in rows})
    return (
        "\n".join(lines)
        + f"\n\nThreshold {THRESHOLD}; commit {', '.join(f'`{c}`' for c in commits)}.\n"
    )


def docs_table() -> str:
    return table(read())


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def _variant(text: str, kind: str) -> tuple[str, Path | None]:
    """``shipped`` or ``NAME=DIR``, where DIR holds ``judge/<kind>.j2`` (else the shipped
    template would answer under the variant's name)."""
    if text == "shipped":
        return text, None
    name, _, folder = text.partition("=")
    if not folder or not (Path(folder) / "judge" / f"{kind}.j2").is_file():
        raise SystemExit(
            f"--variant {text}: expected 'shipped' or NAME=DIR with DIR/judge/{kind}.j2"
        )
    return name, Path(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", default=[], help="shipped or NAME=DIR")
    parser.add_argument("--kind", choices=["chat", "base"], default="chat")
    parser.add_argument("--per-skill", type=int, default=12, help="right examples per skill")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="passes over every variant (the judge samples at temperature 0 with seeds fixed by "
        "the example, so a repeat checks that the server answers alike, not a new sample)",
    )
    parser.add_argument("--url", help="an OpenAI-compatible server already running (else one "
                        "llama-server with the packaged Gemma 3 270M)")  # fmt: skip
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--table", action="store_true", help="print the recorded data's table")
    args = parser.parse_args()
    if args.table:
        print(table(read(args.results)), end="")
        return
    variants = [_variant(v, args.kind) for v in args.variant or ["shipped"]]
    kind: TeacherKind = args.kind
    task = ArithmeticTask(seed=TASK_SEED)
    examples = labelled(args.per_skill)
    session = datetime.now(UTC).isoformat(timespec="seconds")
    commit = _commit()
    server = None
    url = args.url
    if url is None:
        log = Path(tempfile.mkdtemp(prefix="judge-quality-")) / "llama.log"
        server = llama_server(default_gguf(), log, parallel=8)
        server.start()
        url = server.base_url
    args.results.parent.mkdir(parents=True, exist_ok=True)
    try:
        for repeat in range(1, args.repeats + 1):
            for name, folder in variants:  # alternating, so a noisy machine slows each alike
                client = OpenAIClient("gemma", [url], concurrency=8, flavor="llama.cpp")
                scored = asyncio.run(judge_all(client, kind, folder, examples, task))
                with args.results.open("a") as f:
                    for (example, label), (score, reason) in zip(examples, scored, strict=True):
                        row = Judgement(
                            session=session, commit=commit, variant=name, kind=kind,
                            repeat=repeat, skill=example.skill, label=label,
                            score=score, reason=reason,
                        )  # fmt: skip
                        f.write(row.model_dump_json() + "\n")
                print(f"repeat {repeat} {name}: {len(scored)} judged", flush=True)
    finally:
        if server is not None:
            server.stop()
    print(table([r for r in read(args.results) if r.session == session]), end="")


if __name__ == "__main__":
    main()
