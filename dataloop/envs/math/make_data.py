"""Writes the math environment's built-in sample: ``data/{train,validation,test}.jsonl`` and the
skill labels in ``skills.json``.

``python -m dataloop.envs.math.make_data`` rewrites them exactly (a fixed random seed). Every
problem is written for dataloop from templates in GSM8K's format (a worked solution with
``<<expr=value>>`` annotations, ending in ``#### <answer>``). Each split has templates of its
own, worded differently, so no split shares a word 8-gram with another: decontamination (8-gram
overlap with validation and test) then measures what it should, and test accuracy does not
reward memorising a template seen in training (checked by ``tests/environments/test_math.py``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = [("Ken", "he"), ("Omar", "he"), ("Jack", "he"), ("Tom", "he")]
NAMES += [("Maria", "she"), ("Priya", "she"), ("Aisha", "she"), ("Lena", "she")]
SKILLS = {
    "money": "prices, wages, totals and change",
    "percentages": "a percent of a quantity, discounts and shares",
    "rates": "speed, distance, time and other per-unit quantities",
    "counting": "several steps of multiplying, adding and subtracting counts",
    "fractions": "taking a fraction of a quantity, then adding or subtracting",
}
Problem = tuple[str, str]
Template = Callable[[random.Random], Problem]


def _who(rng: random.Random) -> tuple[str, str]:
    return rng.choice(NAMES)


def _solution(*steps: tuple[str, str, int]) -> str:
    """Lines ``text expr = <<expr=value>>value.``, then ``#### answer`` (the last value)."""
    lines = [f"{text} {e} = <<{e.replace(' ', '')}={v}>>{v}." for text, e, v in steps]
    return "\n".join(lines) + f"\n#### {steps[-1][2]}"


# money


def wages(rng: random.Random) -> Problem:
    name, he = _who(rng)
    rate, hours, days = rng.randint(8, 25), rng.randint(3, 8), rng.randint(2, 6)
    q = (
        f"{name} earns ${rate} per hour and works {hours} hours a day. How much does {he} earn "
        f"in {days} days?"
    )
    daily = rate * hours
    return q, _solution(
        ("In one day", f"{rate} * {hours}", daily),
        (f"In {days} days", f"{daily} * {days}", daily * days),
    )


def change(rng: random.Random) -> Problem:
    name, he = _who(rng)
    item = rng.choice(["books", "mugs", "plants", "tickets"])
    n, price = rng.randint(2, 6), rng.randint(3, 12)
    bill = next(b for b in (20, 50, 100) if b > n * price)
    q = (
        f"{name} buys {n} {item} at ${price} each. {he.capitalize()} pays with a ${bill} bill. "
        f"How much change does {he} get?"
    )
    cost = n * price
    return q, _solution(
        ("The cost is", f"{n} * {price}", cost), ("The change is", f"{bill} - {cost}", bill - cost)
    )


def cafe(rng: random.Random) -> Problem:
    name, _ = _who(rng)
    sandwich, drink = rng.randint(4, 9), rng.randint(2, 4)
    n, m = rng.randint(2, 5), rng.randint(1, 4)
    q = (
        f"At a café a sandwich costs ${sandwich} and a drink ${drink}. {name} orders {n} "
        f"sandwiches and {m} drinks. What is the bill?"
    )
    a, b = n * sandwich, m * drink
    return q, _solution(
        ("Sandwiches cost", f"{n} * {sandwich}", a),
        ("Drinks cost", f"{m} * {drink}", b),
        ("Together", f"{a} + {b}", a + b),
    )


def savings(rng: random.Random) -> Problem:
    name, he = _who(rng)
    weekly, weeks = rng.randint(5, 15), rng.randint(4, 10)
    spent = rng.randint(5, weekly * weeks - 5)
    q = (
        f"{name} puts aside ${weekly} every week. After {weeks} weeks, {he} spends ${spent} on "
        f"a gift. What is left over?"
    )
    saved = weekly * weeks
    return q, _solution(
        ("Saved", f"{weekly} * {weeks}", saved), ("Left", f"{saved} - {spent}", saved - spent)
    )


# percentages


def discount(rng: random.Random) -> Problem:
    item = rng.choice(["notebook", "jacket", "lamp", "backpack"])
    price, off = rng.choice([80, 120, 200, 40, 160]), rng.choice([25, 50, 20, 10])
    q = (
        f"A shop sells a {item} for ${price}. During a sale it is {off}% off. What is the sale "
        f"price of the {item}?"
    )
    cut = price * off // 100
    return q, _solution(
        ("The discount is", f"{price} * {off} / 100", cut),
        ("The sale price is", f"{price} - {cut}", price - cut),
    )


def bus_riders(rng: random.Random) -> Problem:
    n, walk = rng.choice([20, 40, 60, 80, 100]), rng.choice([25, 50, 75, 30, 10])
    q = (
        f"There are {n} students in a school club. {walk}% of them walk to school and the rest "
        f"take the bus. How many students take the bus?"
    )
    walkers = n * walk // 100
    return q, _solution(
        ("Walkers:", f"{n} * {walk} / 100", walkers),
        ("Bus riders:", f"{n} - {walkers}", n - walkers),
    )


def quiz(rng: random.Random) -> Problem:
    name, _ = _who(rng)
    n, score = rng.choice([20, 40, 50]), rng.choice([60, 70, 80, 90])
    q = f"{name} got {score}% right in a test of {n} items. How many items were answered wrongly?"
    right = n * score // 100
    return q, _solution(
        ("Right answers:", f"{n} * {score} / 100", right),
        ("Wrong answers:", f"{n} - {right}", n - right),
    )


def harvest(rng: random.Random) -> Problem:
    n, sold = rng.choice([40, 60, 80, 120]), rng.choice([25, 50, 75])
    q = (
        f"A farmer picked {n} apples and sold {sold} percent of them at the market. How many "
        f"apples did the farmer keep?"
    )
    gone = n * sold // 100
    return q, _solution(("Sold", f"{n} * {sold} / 100", gone), ("Kept", f"{n} - {gone}", n - gone))


# rates


def bus_trip(rng: random.Random) -> Problem:
    a, h, b, k = rng.randint(30, 60), rng.randint(1, 4), rng.randint(30, 60), rng.randint(1, 3)
    q = (
        f"A bus drives at {a} miles per hour for {h} hours, then at {b} miles per hour for {k} "
        f"hours. How many miles does it drive in total?"
    )
    x, y = a * h, b * k
    return q, _solution(
        ("First part:", f"{a} * {h}", x),
        ("Second part:", f"{b} * {k}", y),
        ("Total:", f"{x} + {y}", x + y),
    )


def reading(rng: random.Random) -> Problem:
    name, _ = _who(rng)
    per_day, days, read = rng.randint(8, 15), rng.randint(3, 6), rng.randint(10, 40)
    total = read + per_day * days
    q = (
        f"{name} reads {per_day} pages a day. The book has {total} pages and {read} pages are "
        f"already read. How many more days are needed to finish the book?"
    )
    left = total - read
    return q, _solution(
        ("Pages left:", f"{total} - {read}", left), ("Days:", f"{left} / {per_day}", days)
    )


def tank(rng: random.Random) -> Problem:
    rate, minutes, start = rng.randint(3, 9), rng.randint(4, 12), rng.randint(5, 30)
    size = start + rate * minutes
    q = (
        f"A tap pours {rate} litres into a tank each minute. The tank holds {size} litres and "
        f"already has {start} litres in it. After how many minutes is it full?"
    )
    gap = size - start
    return q, _solution(
        ("Litres missing:", f"{size} - {start}", gap), ("Minutes:", f"{gap} / {rate}", minutes)
    )


def printer(rng: random.Random) -> Problem:
    per_minute, classes, minutes = rng.randint(10, 30), rng.randint(2, 5), rng.randint(2, 6)
    total = per_minute * minutes
    if total % classes:
        return printer(rng)
    each = total // classes
    q = (
        f"An office printer makes {per_minute} copies per minute. Each of {classes} classes "
        f"needs {each} copies. How long does the printing take, in minutes?"
    )
    return q, _solution(
        ("Copies:", f"{each} * {classes}", total), ("Minutes:", f"{total} / {per_minute}", minutes)
    )


# counting


def marbles(rng: random.Random) -> Problem:
    name, he = _who(rng)
    boxes, each, give, buy = (
        rng.randint(3, 9),
        rng.randint(4, 12),
        rng.randint(3, 16),
        rng.randint(5, 14),
    )
    if give > boxes * each:
        return marbles(rng)
    q = (
        f"{name} has {boxes} boxes with {each} marbles in each box. {he.capitalize()} gives "
        f"away {give} marbles and then buys {buy} more. How many marbles does {he} have now?"
    )
    a = boxes * each
    return q, _solution(
        ("At first", f"{boxes} * {each}", a),
        ("After giving", f"{a} - {give}", a - give),
        ("After buying", f"{a - give} + {buy}", a - give + buy),
    )


def parking(rng: random.Random) -> Problem:
    rows, cars, leave, come = (
        rng.randint(3, 8),
        rng.randint(5, 12),
        rng.randint(2, 10),
        rng.randint(1, 9),
    )
    q = (
        f"A parking lot has {rows} rows of {cars} cars. Then {leave} cars leave and {come} "
        f"arrive. How many cars are in the lot?"
    )
    a = rows * cars
    return q, _solution(
        ("At first", f"{rows} * {cars}", a),
        ("After leaving", f"{a} - {leave}", a - leave),
        ("After arriving", f"{a - leave} + {come}", a - leave + come),
    )


def party(rng: random.Random) -> Problem:
    tables, seats = rng.randint(4, 10), rng.randint(4, 8)
    empty = rng.randint(1, tables * seats // 3)
    q = (
        f"Each of {tables} tables seats {seats} guests. At the party {empty} seats stay empty. "
        f"How many guests came?"
    )
    a = tables * seats
    return q, _solution(
        ("Seats:", f"{tables} * {seats}", a), ("Guests:", f"{a} - {empty}", a - empty)
    )


def shelf(rng: random.Random) -> Problem:
    stacks, books, bad, new = (
        rng.randint(3, 8),
        rng.randint(6, 15),
        rng.randint(2, 9),
        rng.randint(3, 12),
    )
    q = (
        f"A library shelf holds {stacks} stacks of {books} books. Volunteers remove {bad} "
        f"damaged books and add {new} donated ones. What is the number of books on the shelf?"
    )
    a = stacks * books
    return q, _solution(
        ("Books", f"{stacks} * {books}", a),
        ("Without the damaged", f"{a} - {bad}", a - bad),
        ("With the donated", f"{a - bad} + {new}", a - bad + new),
    )


# fractions


def cookies(rng: random.Random) -> Problem:
    name, he = _who(rng)
    k = rng.choice([2, 3, 4, 5])
    n = k * rng.randint(3, 11)
    give = rng.randint(1, n - n // k - 1)
    q = (
        f"{name} baked {n} cookies. {he.capitalize()} ate 1/{k} of them and gave {give} to a "
        f"friend. How many cookies are left?"
    )
    ate = n // k
    return q, _solution(
        ("Eaten:", f"{n} / {k}", ate),
        ("Left after eating:", f"{n} - {ate}", n - ate),
        ("Left after giving:", f"{n - ate} - {give}", n - ate - give),
    )


def vote(rng: random.Random) -> Problem:
    k = rng.choice([2, 3, 4, 5, 6])
    n = k * rng.randint(4, 8)
    q = (
        f"A class of {n} pupils voted, and 1/{k} chose football. How many pupils did not "
        f"choose football?"
    )
    yes = n // k
    return q, _solution(
        ("Football:", f"{n} / {k}", yes), ("Not football:", f"{n} - {yes}", n - yes)
    )


def rope(rng: random.Random) -> Problem:
    name, _ = _who(rng)
    k = rng.choice([2, 3, 4, 5])
    n = k * rng.randint(4, 12)
    more = rng.randint(1, n - n // k - 1)
    q = (
        f"A rope is {n} metres long. {name} cuts off 1/{k} of it and then another {more} "
        f"metres. How many metres remain?"
    )
    cut = n // k
    return q, _solution(
        ("First cut:", f"{n} / {k}", cut),
        ("Remaining:", f"{n} - {cut}", n - cut),
        ("After the second cut:", f"{n - cut} - {more}", n - cut - more),
    )


def pizza(rng: random.Random) -> Problem:
    k = rng.choice([3, 4, 6])
    n = k * rng.randint(2, 4)
    j = rng.randint(1, k - 1)
    eaten = n * j // k
    cook = rng.randint(1, max(1, n - eaten - 1))
    if eaten + cook >= n:
        return pizza(rng)
    q = (
        f"A pizza was cut into {n} slices. Guests ate {j}/{k} of the slices and the cook ate "
        f"{cook} more. How many slices are uneaten?"
    )
    return q, _solution(
        ("Guests ate", f"{n} * {j} / {k}", eaten),
        ("Uneaten after guests:", f"{n} - {eaten}", n - eaten),
        ("Uneaten now:", f"{n - eaten} - {cook}", n - eaten - cook),
    )


# Each split's own templates per skill: (skill, template, how many).
SPLITS: dict[str, list[tuple[str, Template, int]]] = {
    "train": [
        ("money", wages, 7), ("money", change, 7),
        ("percentages", discount, 7), ("percentages", bus_riders, 7),
        ("rates", bus_trip, 7), ("rates", reading, 7),
        ("counting", marbles, 7), ("counting", parking, 7),
        ("fractions", cookies, 7), ("fractions", vote, 7),
    ],
    "validation": [
        ("money", cafe, 4), ("percentages", quiz, 3), ("rates", tank, 3),
        ("counting", party, 3), ("fractions", rope, 3),
    ],
    "test": [
        ("money", savings, 6), ("percentages", harvest, 6), ("rates", printer, 6),
        ("counting", shelf, 6), ("fractions", pizza, 6),
    ],
}  # fmt: skip


def make(seed: int = 7) -> dict[str, list[dict[str, str]]]:
    """Every split's problems (question, answer, skill), distinct within the sample."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: dict[str, list[dict[str, str]]] = {}
    for split, plan in SPLITS.items():
        rows = []
        for skill, template, count in plan:
            made = 0
            while made < count:
                question, answer = template(rng)
                if question not in seen:
                    seen.add(question)
                    rows.append({"question": question, "answer": answer, "skill": skill})
                    made += 1
        out[split] = rows
    return out


def main() -> None:
    """Write the data files and ``skills.json``."""
    splits = make()
    labels = []
    for split, rows in splits.items():
        with open(HERE / "data" / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps({"question": row["question"], "answer": row["answer"]}) + "\n")
        labels += [{"question": r["question"], "skill": r["skill"]} for r in rows]
    skills = [{"name": n, "description": d} for n, d in SKILLS.items()]
    taxonomy = {"schema_version": 1, "skills": skills, "labels": labels}
    (HERE / "skills.json").write_text(json.dumps(taxonomy, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
