"""The tolerant readers: good items kept, junk and truncated items dropped and counted."""

from __future__ import annotations

from dataloop.engine.parsing import parse_answer, parse_correction, parse_pairs, parse_questions


def test_pairs_from_lines_and_json_with_junk_and_truncation() -> None:
    text = (
        "Sure! Here you go:\n"
        '{"question": "5+5", "answer": 10}\n'
        '{"question": "6+6", "answ\n'  # truncated JSON: dropped
        "Q: 1+2\nA: 3\n"
        "random words\n"
        "Q: 7+7\n"  # no answer line: dropped
    )
    got = parse_pairs(text)
    assert [(i["question"], i["answer"]) for i in got.items] == [("5+5", "10"), ("1+2", "3")]
    assert got.dropped == 2
    assert parse_pairs("").items == [] and parse_pairs("}{ not json {").items == []


def test_pairs_cut_by_the_token_limit_lose_their_last_item() -> None:
    text = "Q: 1+2\nA: 3\nQ: 40+2\nA: 4"  # "4" may be the start of "42"
    assert len(parse_pairs(text).items) == 2
    cut = parse_pairs(text, cut=True)
    assert [i["question"] for i in cut.items] == ["1+2"] and cut.dropped == 1
    # An item followed by its newline was complete even when the text was cut after it.
    assert len(parse_pairs("Q: 1+2\nA: 3\n", cut=True).items) == 1


def test_duplicates_are_kept_for_the_dedup_filter_to_count() -> None:
    assert len(parse_pairs("Q: 1+2\nA: 3\nQ: 1+2\nA: 3\n").items) == 2


def test_questions_from_list_lines_or_json() -> None:
    got = parse_questions("- 35+12\n- \n3. 12 + 35\nnot an item\n- 1")
    assert [i["question"] for i in got.items] == ["35+12", "12 + 35", "1"]
    assert got.dropped == 1  # the empty item
    cut = parse_questions("- 35+12\n- 3", cut=True)
    assert [i["question"] for i in cut.items] == ["35+12"] and cut.dropped == 1
    js = parse_questions('{"question": "What is 35 plus 12?"}\n{"question": ')
    assert [i["question"] for i in js.items] == ["What is 35 plus 12?"] and js.dropped == 1
    assert parse_questions("1.5 kg of flour").items == []  # a number is not a list marker


def test_answer_is_one_line_or_one_json_object() -> None:
    assert parse_answer(" 47").items == [{"answer": "47"}]
    assert parse_answer("\n 47\nQ: 1+1").items == [{"answer": "47"}]
    assert parse_answer('{"answer": 47}', json_only=True).items == [{"answer": "47"}]
    assert parse_answer("47", json_only=True).dropped == 1  # chat must reply in JSON
    assert parse_answer("   \n").dropped == 1
    truncated = parse_answer(" 4", cut=True)
    assert truncated.items == [] and truncated.dropped == 1


def test_a_correction_is_an_answer_with_optional_feedback_in_json_or_text() -> None:
    both = '{"feedback": "sign error", "answer": "-3"}\n{"answer": "4"}'
    read = parse_correction(both, json_only=True)
    assert read.items == [{"answer": "-3", "feedback": "sign error"}]
    assert read.dropped == 1  # one correction per reply
    assert parse_correction('{"feedback": "no answer"}', json_only=True).items == []
    assert parse_correction("A: 7\nFeedback: carry the one\n").items == [
        {"answer": "7", "feedback": "carry the one"}
    ]
    assert parse_correction("A: 7\n\nQ: 1+1").items == [{"answer": "7"}]
    assert parse_correction("A: 7\n", json_only=True).items == []  # chat asks for JSON
    assert parse_correction("A: 7", cut=True).dropped == 1  # the answer may be cut short
