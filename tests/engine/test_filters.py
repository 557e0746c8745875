"""The task-agnostic filters: ROUGE-L novelty (as LLM2LLM's, which uses ``rouge_score``) and
MinHash LSH near-duplicates."""

from __future__ import annotations

import pytest

from dataloop.engine.filters import NearDuplicates, Novelty, rouge_l, rouge_tokens, shingles
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


ANN = "Ann has 12 apples and gives 5 of them to Bob at lunch. How many apples does Ann have left?"


def test_near_duplicates_catch_a_copy_with_a_word_changed_per_skill() -> None:
    # Word 3-gram Jaccard similarities: the copy 0.89, the rewrite 0.59, the other 0.36 and 0:
    # far enough from the thresholds that LSH's banding decides them with certainty (> 99.8 %).
    near = NearDuplicates(0.7, [Example.make("s", ANN, "7")])
    copy = Example.make("s", ANN.replace("left?", "now?").upper(), "7")
    other = Example.make("s", "A square has sides of 4 cm. What is the area of the square?", "16")
    assert near.similar(copy) and not near.similar(other)
    assert not near.similar(copy.model_copy(update={"skill": "t"}))
    near.add(other)  # held from now on, as an accepted question of the batch is
    assert near.similar(
        Example.make("s", "a square has sides of 4 cm: what is the area of the square", "16")
    )
    # a lower threshold reaches further
    rewrite = "Ann has 12 apples and gives 5 of them to Bob at lunch. How many pears does Tom have?"
    assert NearDuplicates(0.3, [Example.make("s", ANN, "7")]).similar(
        Example.make("s", rewrite, "0")
    )
    far = Example.make("s", "Ann has 12 apples and gives 5 of them to Tom. How many now?", "7")
    assert not near.similar(far)
    with pytest.raises(ValueError, match="near-duplicate threshold"):
        NearDuplicates(1.5)


def test_near_duplicate_shingles_are_word_3grams_of_the_normalised_text() -> None:
    assert shingles("What is 12 + 34?") == [b"what is 12", b"is 12 34"]
    assert shingles("Sort: b a") == [b"sort b a"]  # as short as a shingle: one
