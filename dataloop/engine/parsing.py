"""Tolerant readers for teacher output: what can be read is kept, the rest is counted.

Base models continue a few-shot list (``Q: … / A: …`` items, or ``- …`` lines); chat models are
asked for one JSON object per line. Both may wander off, repeat themselves or stop mid-item at
the token limit. Nothing here raises: an item that cannot be read is *dropped* and counted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Generic, TypeVar

_QA = re.compile(r"Q:[ \t]*(?P<q>[^\n]*?)[ \t]*\n[ \t]*A:[ \t]*(?P<a>[^\n]*)(?P<end>\n?)")
_ITEM_START = re.compile(r"^\s*Q:", re.MULTILINE)
_JSON_LINE = re.compile(r"^\s*\{.*$", re.MULTILINE)
# A numbered marker needs a space after it, so "1.5 kg of flour" is not item 1.
_LIST_LINE = re.compile(r"^[ \t]*(?:[-*•]|\d+[.)](?=[ \t]))[ \t]*(?P<text>.*)$", re.MULTILINE)
# A refine item in text: "A: <answer>" (the prompt ends at "A:"), then "Feedback: <text>".
_ANSWER_THEN_FEEDBACK = re.compile(
    r"^[ \t]*A:[ \t]*(?P<a>[^\n]*)(?:\n[ \t]*Feedback:[ \t]*(?P<f>[^\n]*))?", re.MULTILINE
)


T = TypeVar("T")
Item = dict[str, str]
"""One item as read: ``question`` and/or ``answer`` (non-empty; one-line values stripped)."""


@dataclass
class Parsed(Generic[T]):
    """What was read from one completion, and how many item-like fragments were unreadable:
    items (:data:`Item`) as the readers here find them, examples once a strategy made them."""

    items: list[T] = field(default_factory=list)
    dropped: int = 0
    """Fragments that looked like an item but were junk, incomplete or cut off."""


def _value(text: str) -> str:
    """A value read from JSON: one line is stripped; several lines (code, lettered choices)
    are kept as written, since their indentation and final newline may be structure."""
    return text if "\n" in text.strip() else text.strip()


def _json_items(text: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> Parsed[Item]:
    """Lines holding a JSON object with string-able values for every key in ``keys``, and for
    each key of ``optional`` that it has (a missing or empty optional value is left out)."""
    out: Parsed[Item] = Parsed()
    for line in _JSON_LINE.findall(text):
        try:
            obj = json.loads(line.strip().rstrip(","))
        except json.JSONDecodeError:
            out.dropped += 1
            continue
        values = {k: obj.get(k) for k in keys} if isinstance(obj, dict) else {}
        if not values or any(v is None or isinstance(v, (dict, list)) for v in values.values()):
            out.dropped += 1
            continue
        item = {k: _value(str(v)) for k, v in values.items()}
        if all(v.strip() for v in item.values()):
            extra = {k: obj.get(k) for k in optional}
            item |= {k: _value(v) for k, v in extra.items() if isinstance(v, str) and v.strip()}
            out.items.append(item)
        else:
            out.dropped += 1
    return out


def parse_pairs(text: str, cut: bool = False) -> Parsed[Item]:
    """Question/answer pairs from ``Q: … / A: …`` items or JSON lines.

    An item with no answer line is dropped; so is the last item of a completion ``cut`` by the
    token limit (its answer may be missing digits). Duplicates are kept: dedup counts them.
    """
    out = _json_items(text, ("question", "answer"))
    matches = list(_QA.finditer(text))
    complete = [m for m in matches if m["q"] and m["a"].strip()]
    if cut and complete and not complete[-1]["end"]:
        complete.pop()
    out.items += [{"question": m["q"], "answer": m["a"].strip()} for m in complete]
    out.dropped += max(0, len(_ITEM_START.findall(text)) - len(complete))
    return out


def parse_questions(text: str, cut: bool = False) -> Parsed[Item]:
    """Questions from list lines (``- …``, ``1. …``) or, failing that, JSON lines.

    The last line of a ``cut`` completion is dropped: it may stop mid-question.
    """
    out = _json_items(text, ("question",))
    if out.items:
        return out
    lines = text.split("\n")
    if cut:
        out.dropped += bool(lines.pop().strip())
    for line in lines:
        match = _LIST_LINE.match(line)
        if match and match["text"].strip():
            out.items.append({"question": match["text"].strip()})
        elif match:
            out.dropped += 1
    return out


def parse_answer(text: str, cut: bool = False, json_only: bool = False) -> Parsed[Item]:
    """One answer: a JSON ``{"answer": …}`` object, or else the first non-empty line.

    ``json_only`` (chat prompts ask for JSON) refuses bare text; a ``cut`` completion's answer
    may be incomplete, so it is dropped.
    """
    found = _json_items(text, ("answer",))
    if not found.items and not json_only:
        line = next((ln.strip() for ln in text.split("\n") if ln.strip()), "")
        found = Parsed(items=[{"answer": line}] if line else [])
    if cut or not found.items:
        return Parsed(dropped=max(1, found.dropped + len(found.items)))
    return Parsed(items=found.items[:1], dropped=found.dropped + len(found.items) - 1)


def parse_correction(text: str, cut: bool = False, json_only: bool = False) -> Parsed[Item]:
    """One corrected answer and the feedback on the student's mistake: a JSON object with
    ``answer`` and ``feedback``, or else an ``A: …`` line with a ``Feedback: …`` line after it.

    The answer is required; without (or with empty) feedback the item has none. ``json_only``
    (chat prompts ask for JSON) refuses bare text; a ``cut`` completion's answer may be
    incomplete, so it is dropped.
    """
    found = _json_items(text, ("answer",), optional=("feedback",))
    if not found.items and not json_only:
        match = _ANSWER_THEN_FEEDBACK.search(text)
        if match and match["a"].strip():
            item = {"answer": match["a"].strip()}
            if match["f"] and match["f"].strip():
                item["feedback"] = match["f"].strip()
            found = Parsed(items=[item])
    if cut or not found.items:
        return Parsed(dropped=max(1, found.dropped + len(found.items)))
    return Parsed(items=found.items[:1], dropped=found.dropped + len(found.items) - 1)
