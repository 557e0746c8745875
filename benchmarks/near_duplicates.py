"""Time of the near-duplicate filters on N candidate questions: MinHash LSH against ROUGE-L.

    .venv/bin/python benchmarks/near_duplicates.py --sizes 1000,10000,100000 --rouge-up-to 2000

Each filter is used as the engine uses it: it starts holding the seeds (1,000 questions of one
skill), checks every candidate in turn and holds the ones it lets through. Candidates are word
problems drawn from a few templates with random names, objects and numbers; one in five is a
copy of an earlier one with one word changed. The table gives, per size, the seconds each filter
took and the candidates it removed; ROUGE-L (``engine.novelty``, LLM2LLM's 0.95) compares each
candidate with everything held, so it runs only up to ``--rouge-up-to`` candidates and larger
sizes show the time its measured quadratic growth predicts, marked as an estimate.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from dataloop.engine.filters import NearDuplicates, Novelty
from dataloop.schema import Example

NAMES = ["Ann", "Bob", "Chen", "Dana", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jo"]
THINGS = ["apples", "marbles", "stickers", "books", "coins", "pencils", "cards", "shells"]
TEMPLATES = [
    "{a} has {x} {t} and buys {y} more at the market. How many {t} does {a} have now?",
    "{a} has {x} {t} and gives {y} of them to {b}. How many {t} are left for {a}?",
    "There are {x} {t} in a box and {b} takes out {y} of them. How many {t} stay in the box?",
    "{a} and {b} share {x} {t} equally, then {a} finds {y} more. How many {t} has {a}?",
    "A shop sells {t} in packs of {y}. {a} needs {x} {t}. How many packs must {a} buy?",
]


def questions(n: int, rng: random.Random) -> list[str]:
    """``n`` questions; about one in five repeats an earlier one with one word changed."""
    made: list[str] = []
    for _ in range(n):
        if made and rng.random() < 0.2:
            words = rng.choice(made).split()
            words[rng.randrange(len(words))] = rng.choice(THINGS)
            made.append(" ".join(words))
            continue
        a, b = rng.sample(NAMES, 2)
        made.append(
            rng.choice(TEMPLATES).format(
                a=a, b=b, t=rng.choice(THINGS), x=rng.randint(2, 999), y=rng.randint(2, 99)
            )
        )
    return made


def run(filter_: NearDuplicates | Novelty, candidates: list[Example]) -> tuple[float, int]:
    """Seconds to check (and hold what passes) every candidate, and how many were removed."""
    removed = 0
    start = time.perf_counter()
    for example in candidates:
        if filter_.similar(example):
            removed += 1
        else:
            filter_.add(example)
    return time.perf_counter() - start, removed


def examples(texts: list[str]) -> list[Example]:
    """The texts as questions of one skill."""
    return [Example.make("word", q, "0") for q in texts]


def main() -> None:
    """Print a markdown table: size, then seconds and removed per filter."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="candidate counts")
    parser.add_argument("--rouge-up-to", type=int, default=2000, help="largest ROUGE-L size run")
    parser.add_argument("--threshold", type=float, default=0.7, help="MinHash Jaccard threshold")
    args = parser.parse_args()
    rng = random.Random(0)
    seeds = examples(questions(1000, rng))
    sizes = [int(s) for s in args.sizes.split(",")]
    pool = examples(questions(max(sizes), rng))
    filters: dict[str, Callable[[], NearDuplicates | Novelty]] = {
        "minhash": lambda: NearDuplicates(args.threshold, seeds),
        "rouge-l": lambda: Novelty(0.95, seeds),
    }
    print(
        f"| candidates | MinHash LSH ({args.threshold}) s | removed | ROUGE-L (0.95) s | removed |"
    )
    print("|---:|---:|---:|---:|---:|")
    rouge_rate = None  # seconds per (candidate x held question), from the largest run
    for n in sizes:
        start = time.perf_counter()
        minhash = filters["minhash"]()
        build = time.perf_counter() - start
        seconds, removed = run(minhash, pool[:n])
        cells = [f"{build + seconds:.1f}", str(removed)]
        if n <= args.rouge_up_to:
            rouge_seconds, rouge_removed = run(filters["rouge-l"](), pool[:n])
            rouge_rate = rouge_seconds / (n * (len(seeds) + n / 2))
            cells += [f"{rouge_seconds:.1f}", str(rouge_removed)]
        elif rouge_rate is not None:
            cells += [f"~{rouge_rate * n * (len(seeds) + n / 2):,.0f} (estimate)", "—"]
        else:
            cells += ["not run", "—"]
        print(f"| {n:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
