"""The task-agnostic filters: ROUGE-L novelty (as LLM2LLM's, which uses ``rouge_score``)."""

from __future__ import annotations

import pytest

from dataloop.engine.filters import Novelty, rouge_l, rouge_tokens
from dataloop.schema import Example


def test_rouge_tokens_and_rouge_l_match_rouge_scores_definition() -> None:
    assert rouge_tokens("The cat, sat!") == ["the", "cat", "sat"]
    # LCS "the cat on the mat" = 5 of 6 tokens each way: F1 = 5/6.
    a, b = rouge_tokens("the cat sat on the mat"), rouge_tokens("The cat is on the mat")
    assert rouge_l(a, b) == pytest.approx(5 / 6)
    assert rouge_l(a, a) == 1.0 and rouge_l(a, []) == 0.0 and rouge_l(["x"], ["y"]) == 0.0
    # Unequal lengths: LCS 2, precision 2/2, recall 2/4 -> F1 2/3.
    assert rouge_l(["a", "b"], ["a", "x", "b", "y"]) == pytest.approx(2 / 3)


def test_novelty_holds_questions_per_skill() -> None:
    seed = Example.make("s", "How many apples does Ann have left after lunch?", "3")
    novelty = Novelty(0.7, [seed])
    close = Example.make("s", "How many apples does Bob have left after lunch?", "3")
    far = Example.make("s", "What is the area of a square of side 4?", "16")
    assert novelty.similar(close) and not novelty.similar(far)
    assert not novelty.similar(close.model_copy(update={"skill": "other"}))
    novelty.add(far)
    assert novelty.similar(Example.make("s", "What is the area of a square of side 5?", "25"))
    with pytest.raises(ValueError, match="ROUGE-L threshold"):
        Novelty(0)
