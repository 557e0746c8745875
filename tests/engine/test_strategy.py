"""Every strategy's prompts (base and chat) and how it reads good, junk and truncated output."""

from __future__ import annotations

import json

import pytest

from dataloop.engine import (
    BUILTIN_STRATEGIES,
    LLM2LLM,
    AnswerAugmentation,
    Harder,
    NewQuestion,
    QuestionRephrase,
    Refine,
    RequestContext,
    resolve_strategy,
)
from dataloop.errors import RegistryError
from dataloop.llm import Templates
from dataloop.schema import Example, Failure, GenerationRequest


def _ctx(task, guidance: str = "", seed_ids: tuple[str, ...] = (), failed: int = 3):
    seeds = [e for e in task.split("train") if e.skill == "add"]
    return RequestContext(
        task=task,
        request=GenerationRequest(skill="add", count=6, guidance=guidance, seed_ids=list(seed_ids)),
        skill=next(s for s in task.skills() if s.name == "add"),
        seeds=seeds,
        failures=[Failure(example=e, prediction="12") for e in seeds[:failed]],
        iteration=1,
        teacher="gemma",
        shots=4,
    )


def test_registry_names_and_paths(tmp_path) -> None:
    assert set(BUILTIN_STRATEGIES) == {
        "new-question",
        "answer-augmentation",
        "question-rephrase",
        "llm2llm",
        "refine",
        "harder",
    }
    assert resolve_strategy("llm2llm") is LLM2LLM
    with pytest.raises(RegistryError, match="unknown strategy 'rephrase'; known: new-question"):
        resolve_strategy("rephrase")
    mine = tmp_path / "my_strats.py"
    mine.write_text(
        "from dataloop.engine import NewQuestion\n"
        "class Mine(NewQuestion):\n    name = 'mine'\n"
        "class Half:\n    pass\n"
    )
    assert resolve_strategy(f"{mine}:Mine").name == "mine"
    with pytest.raises(RegistryError, match="not a Strategy subclass"):
        resolve_strategy(f"{mine}:Half")


@pytest.mark.parametrize("cls", list(BUILTIN_STRATEGIES.values()))
@pytest.mark.parametrize("kind", ["base", "chat"])
def test_every_template_sees_skill_guidance_and_its_parents(arithmetic, cls, kind) -> None:
    ctx = _ctx(arithmetic, guidance="carry digits")
    prompt = cls(Templates(), kind).prompt(ctx, 0, 5)
    assert prompt.template == f"{cls.template_dir}/{kind}.j2"
    assert ctx.skill.description in prompt.text and "carry digits" in prompt.text
    assert prompt.parents and all(p.id in {s.id for s in ctx.seeds} for p in prompt.parents)
    for parent in prompt.parents:
        assert parent.question in prompt.text
    if kind == "chat":
        assert "JSON" in prompt.text


def test_new_question_base_prompt_is_a_few_shot_list_ending_in_a_new_item(arithmetic) -> None:
    strategy = NewQuestion(Templates(), "base")
    prompt = strategy.prompt(_ctx(arithmetic), index=0, count=6)
    assert prompt.text.endswith("\nQ:") and prompt.text.count("\nA: ") == 4
    for parent in prompt.parents:
        assert f"Q: {parent.question}\nA: {parent.answer}\n" in prompt.text
    assert strategy.prompt(_ctx(arithmetic), index=1, count=6).parents != prompt.parents
    chat = NewQuestion(Templates(), "chat").prompt(_ctx(arithmetic), index=0, count=5)
    assert "Write 5 new" in chat.text and '{"question": "' in chat.text


def test_new_question_reads_pairs_with_provenance(arithmetic) -> None:
    strategy, ctx = NewQuestion(Templates(), "base"), _ctx(arithmetic)
    prompt = strategy.prompt(ctx, 0, 6)
    got = strategy.parse(" 11+22\nA: 33\njunk\nQ: 40+2\nA: 42\nQ: 99+", ctx, prompt)
    assert [(e.question, e.answer) for e in got.items] == [("11+22", "33"), ("40+2", "42")]
    assert got.dropped == 1
    p = got.items[0].provenance
    assert (p.strategy, p.teacher, p.template, p.iteration) == (
        "new-question",
        "gemma",
        "new_question/base.j2",
        1,
    )
    assert p.parent_ids == [e.id for e in prompt.parents] and p.source == "generated"
    truncated = strategy.parse(" 11+22\nA: 33\nQ: 40+2\nA: 4", ctx, prompt, cut=True)
    assert [e.question for e in truncated.items] == ["11+22"] and truncated.dropped == 1


def test_answer_augmentation_spreads_over_every_seed_before_repeating(arithmetic) -> None:
    strategy, ctx = AnswerAugmentation(Templates(), "base"), _ctx(arithmetic)
    n = len(ctx.seeds)
    targets = [strategy.prompt(ctx, i, 1).parents[0] for i in range(n + 1)]
    assert sorted(e.id for e in targets[:n]) == sorted(e.id for e in ctx.seeds)
    assert targets[n] == targets[0]
    first = strategy.prompt(ctx, 0, 1)
    assert first.text.endswith(f"\nQ: {targets[0].question}\nA:") and first.stop == ("\n",)
    assert f"A: {targets[0].answer}" not in first.text  # the seed's own answer is not shown
    assert strategy.per_prompt(6) == 1


@pytest.mark.parametrize("cls", [AnswerAugmentation, QuestionRephrase])
def test_seed_targets_rotate_across_iterations_from_provenance(arithmetic, cls) -> None:
    """The seeds already used (the training set's provenance) go last; ties are drawn per
    iteration, so the order is the same however often it is computed (a resumed run)."""
    strategy, ctx = cls(Templates(), "base"), _ctx(arithmetic)
    first = [strategy.prompt(ctx, i, 1).parents[0].id for i in range(4)]
    again = _ctx(arithmetic)
    assert [strategy.prompt(again, i, 1).parents[0].id for i in range(4)] == first
    later = _ctx(arithmetic)
    later.iteration = 2
    later.used.update(first)
    second = [strategy.prompt(later, i, 1).parents[0].id for i in range(len(ctx.seeds) - 4)]
    assert set(second).isdisjoint(first)
    named = _ctx(arithmetic, seed_ids=(ctx.seeds[3].id,))
    named.used.update([ctx.seeds[3].id] * 5)
    assert strategy.prompt(named, 7, 1).parents == [ctx.seeds[3]]  # seed_ids still wins


def test_answer_augmentation_reads_one_answer_for_the_seed_question(arithmetic) -> None:
    strategy, ctx = AnswerAugmentation(Templates(), "base"), _ctx(arithmetic)
    prompt = strategy.prompt(ctx, 0, 1)
    seed = prompt.parents[0]
    got = strategy.parse(f" {seed.answer}\n", ctx, prompt).items
    assert [(e.question, e.answer) for e in got] == [(seed.question, seed.answer)]
    assert got[0].id != seed.id and got[0].provenance.parent_ids == [seed.id]
    assert strategy.parse("", ctx, prompt).dropped == 1
    assert strategy.parse(" 1", ctx, prompt, cut=True).items == []
    chat = AnswerAugmentation(Templates(), "chat")
    chat_prompt = chat.prompt(ctx, 0, 1)
    assert chat.parse('{"answer": "47"}', ctx, chat_prompt).items[0].answer == "47"
    assert chat.parse("The answer is 47.", ctx, chat_prompt).dropped == 1


def test_answer_augmentation_keeps_right_answers_and_rejects_wrong_ones(arithmetic) -> None:
    strategy, ctx = AnswerAugmentation(Templates(), "base"), _ctx(arithmetic)
    prompt = strategy.prompt(ctx, 0, 1)
    seed = prompt.parents[0]
    right = strategy.parse(f" {seed.answer}", ctx, prompt).items[0]
    wrong = strategy.parse(f" {int(seed.answer) + 1}", ctx, prompt).items[0]
    assert strategy.check(right, ctx, prompt)[0] == "verified"
    verdict, kept = strategy.check(wrong, ctx, prompt)
    assert verdict == "wrong-answer" and kept.answer == wrong.answer  # never relabelled


def test_question_rephrase_keeps_the_seed_answer_and_checks_it(arithmetic) -> None:
    strategy, ctx = QuestionRephrase(Templates(), "base"), _ctx(arithmetic)
    prompt = strategy.prompt(ctx, 2, 4)
    seed = prompt.parents[0]
    assert seed == ctx.rotation[2] and prompt.stop == ("\nAnswer", "\n\n")
    assert prompt.text.endswith(f"Answer {seed.answer}:\n- {seed.question}\n-")
    a, b = seed.question.split("+")
    got = strategy.parse(f" {b}+{a}\n- {a}+{int(b) + 1}\n- \n", ctx, prompt)
    assert [e.question for e in got.items] == [f"{b}+{a}", f"{a}+{int(b) + 1}"]
    assert all(e.answer == seed.answer for e in got.items) and got.dropped == 1
    swapped, changed = got.items
    assert strategy.check(swapped, ctx, prompt)[0] == "verified"
    assert strategy.check(changed, ctx, prompt)[0] == "wrong-answer"
    junk = strategy.check(Example.make("add", "twelve plus", seed.answer), ctx, prompt)
    assert junk[0] == "unverified"
    chat = QuestionRephrase(Templates(), "chat")
    out = chat.parse(f'{{"question": "{b}+{a}"}}\n{{"question": "', ctx, chat.prompt(ctx, 2, 4))
    assert [e.question for e in out.items] == [f"{b}+{a}"] and out.dropped == 1


def test_llm2llm_targets_failed_seed_examples_only(arithmetic) -> None:
    strategy, ctx = LLM2LLM(Templates(), "base"), _ctx(arithmetic, failed=2)
    prompts = [strategy.prompt(ctx, i, 1) for i in range(3)]
    assert [p.parents[0] for p in prompts] == [ctx.seeds[0], ctx.seeds[1], ctx.seeds[0]]
    assert f"Q: {ctx.seeds[0].question}\nA: {ctx.seeds[0].answer}\n" in prompts[0].text
    assert prompts[0].text.endswith("\nQ:") and prompts[0].stop == ("\nQ:", "\n\n")
    assert strategy.per_prompt(6) == 1
    # A generated example that the student failed is never a parent.
    synthetic = Example.make("add", "10+10", "20", source="generated")
    ctx.failures.append(Failure(example=synthetic, prediction="0"))
    assert synthetic not in strategy.targets(ctx)
    named = _ctx(arithmetic, seed_ids=(ctx.seeds[5].id, synthetic.id), failed=0)
    assert strategy.targets(named) == [ctx.seeds[5]]
    assert strategy.targets(_ctx(arithmetic, failed=0)) == []  # nothing failed: no prompts
    got = strategy.parse(" 64+83\nA: 147\nQ: 6", ctx, prompts[0], cut=True)
    assert [e.question for e in got.items] == ["64+83"] and got.dropped == 1
    assert got.items[0].provenance.parent_ids == [ctx.seeds[0].id]


@pytest.mark.parametrize("kind", ["base", "chat"])
def test_llm2llm_shows_the_student_answer_only_when_switched_on(arithmetic, kind) -> None:
    strategy, ctx = LLM2LLM(Templates(), kind), _ctx(arithmetic, failed=1)
    ctx.failures[0].prediction = "9999"
    hidden = strategy.prompt(ctx, 0, 1).text
    assert "9999" not in hidden and "answered" not in hidden
    ctx.show_student_answer = True
    shown = strategy.prompt(ctx, 0, 1).text
    assert ('it answered "9999"' if kind == "chat" else "The student answered: 9999") in shown
    if kind == "chat":
        assert "Write 1 new question like it" in hidden


def test_a_user_template_folder_comes_first(arithmetic, tmp_path) -> None:
    (tmp_path / "llm2llm").mkdir()
    (tmp_path / "llm2llm" / "base.j2").write_text("Mine: {{ target.question }}\nQ:")
    prompt = LLM2LLM(Templates(tmp_path), "base").prompt(_ctx(arithmetic), 0, 4)
    assert prompt.text == f"Mine: {prompt.parents[0].question}\nQ:"


def test_rephrase_trusts_a_task_that_cannot_check_answers(arithmetic) -> None:
    from dataloop.environments import TaskEnvironment

    class Unverifiable(TaskEnvironment):
        name = "unverifiable"

        def skills(self):
            return arithmetic.skills()

        def split(self, name):
            return arithmetic.split(name)

    task = Unverifiable()
    ctx = _ctx(task)
    strategy = QuestionRephrase(Templates(), "base")
    prompt = strategy.prompt(ctx, 0, 4)
    (reworded,) = strategy.parse(" What do you get when adding them?", ctx, prompt).items
    assert task.check_answer(reworded) is None
    assert strategy.check(reworded, ctx, prompt) == ("verified", reworded)


def _code_ctx():
    from dataloop.environments import load_task

    task = load_task("code")
    skill = task.skills()[0]
    seeds = [e for e in task.split("train") if e.skill == skill.name]
    return RequestContext(
        task=task,
        request=GenerationRequest(skill=skill.name, count=2),
        skill=skill,
        seeds=seeds,
        failures=[Failure(example=e, prediction="pass") for e in seeds[:1]],
        iteration=1,
        teacher="gemma",
        shots=2,
    )


CODE_Q = 'def triple(x):\n    """Three times x.\n    >>> triple(2)\n    6\n    """\n'
CODE_A = "    y = 3 * x\n    return y\n"  # several lines: kept as written, indentation too


@pytest.mark.parametrize("cls", [NewQuestion, LLM2LLM])
def test_base_prompts_of_multiline_examples_are_json_lines_and_read_back(cls) -> None:
    ctx = _code_ctx()
    strategy = cls(Templates(), "base")
    prompt = strategy.prompt(ctx, 0, 2)
    assert prompt.text.endswith('\n{"question": "')
    assert "\nQ:" not in prompt.text and "\\n" in prompt.text  # newlines escaped in JSON
    # What Gemma writes: the rest of the open line, then another item, then a cut-off one.
    item = json.dumps({"question": CODE_Q, "answer": CODE_A})
    text = item[len('{"question": "') :] + "\n" + item.replace("triple", "quad") + '\n{"quest'
    got = strategy.parse(text, ctx, prompt, cut=True)
    assert [(e.question, e.answer) for e in got.items] == [
        (CODE_Q, CODE_A),
        (CODE_Q.replace("triple", "quad"), CODE_A),
    ]
    assert got.dropped == 1


def test_multiline_answer_augmentation_and_rephrase_use_open_json_lines() -> None:
    ctx = _code_ctx()
    aug = AnswerAugmentation(Templates(), "base")
    prompt = aug.prompt(ctx, 0, 1)
    target = prompt.parents[0]
    assert prompt.text.endswith(f'{{"question": {json.dumps(target.question)}, "answer": "')
    assert prompt.stop == ("\n",)
    got = aug.parse(json.dumps(CODE_A)[1:] + "}", ctx, prompt)
    assert [(e.question, e.answer) for e in got.items] == [(target.question, CODE_A)]
    assert aug.parse(json.dumps(CODE_A)[1:8], ctx, prompt, cut=True).items == []

    rephrase = QuestionRephrase(Templates(), "base")
    prompt = rephrase.prompt(ctx, 0, 1)
    target = prompt.parents[0]
    assert prompt.text.endswith(f'{{"answer": {json.dumps(target.answer)}, "question": "')
    assert prompt.stop == ("\n",)
    got = rephrase.parse(json.dumps(CODE_Q)[1:] + "}", ctx, prompt)
    assert [(e.question, e.answer) for e in got.items] == [(CODE_Q, target.answer)]


def test_one_line_examples_keep_the_q_a_format(arithmetic) -> None:
    for cls in (NewQuestion, LLM2LLM, AnswerAugmentation, QuestionRephrase):
        text = cls(Templates(), "base").prompt(_ctx(arithmetic), 0, 3).text
        assert "{" not in text, cls.name


def _probes(task, n: int = 3) -> list[Failure]:
    """Failed feedback probes of 'add' (questions outside the seed set)."""
    return [
        Failure(example=Example.make("add", f"{90 + i}+{19 + i}", str(109 + 2 * i)), prediction="7")
        for i in range(n)
    ]


@pytest.mark.parametrize("cls", list(BUILTIN_STRATEGIES.values()))
@pytest.mark.parametrize("kind", ["base", "chat"])
def test_every_template_shows_the_failures_a_request_carries(arithmetic, cls, kind) -> None:
    ctx = _ctx(arithmetic)
    plain = cls(Templates(), kind).prompt(ctx, 0, 5).text
    ctx.request = ctx.request.model_copy(update={"failures": _probes(arithmetic)})
    shown = cls(Templates(), kind).prompt(ctx, 0, 5).text
    assert "wrongly" in shown and "wrongly" not in plain
    for failure in ctx.request.failures:  # problem, the student's answer, the correct one
        assert failure.example.question in shown and failure.example.answer in shown
    assert '"7"' in shown


def test_new_question_writes_from_the_failures_first(arithmetic) -> None:
    ctx = _ctx(arithmetic)
    ctx.request = ctx.request.model_copy(update={"failures": _probes(arithmetic, 2)})
    prompt = NewQuestion(Templates(), "base").prompt(ctx, 0, 6)
    probes = [f.example for f in ctx.request.failures]
    assert prompt.parents[:2] == probes or prompt.parents[:2] == probes[::-1]
    assert len(prompt.parents) == ctx.shots  # seeds fill the rest of the shots
    for parent in prompt.parents:
        assert f"Q: {parent.question}\nA: {parent.answer}\n" in prompt.text
    assert prompt.text.endswith("\nQ:")


@pytest.mark.parametrize("kind", ["base", "chat"])
def test_refine_shows_the_students_answer_and_reads_feedback_then_answer(arithmetic, kind) -> None:
    strategy, ctx = Refine(Templates(), kind), _ctx(arithmetic, failed=2)
    prompt = strategy.prompt(ctx, 0, 1)
    (target,) = prompt.parents
    assert target in [f.example for f in ctx.failures]
    said = "Student's answer: 12" if kind == "base" else '"student_answer": "12"'
    assert target.question in prompt.text and said in prompt.text
    if kind == "base":
        assert prompt.text.endswith(f"Q: {target.question}\nStudent's answer: 12\nA:")
        text = f" {target.answer}\nFeedback: it dropped the carry\nQ: 1+1"
    else:
        text = json.dumps({"feedback": "it dropped the carry", "answer": target.answer})
    (got,) = strategy.parse(text, ctx, prompt).items
    assert (got.question, got.answer) == (target.question, target.answer)
    p = got.provenance
    assert (p.strategy, p.parent_ids, p.feedback) == ("refine", [target.id], "it dropped the carry")
    assert got.id != target.id  # a new answer to the seed's question is its own example
    assert strategy.parse("", ctx, prompt).items == []
    assert strategy.parse(text, ctx, prompt, cut=True).items == []  # the answer may be cut short


def test_refine_keeps_a_correction_only_if_graded_right_against_the_seed(arithmetic) -> None:
    strategy, ctx = Refine(Templates(), "base"), _ctx(arithmetic, failed=1)
    prompt = strategy.prompt(ctx, 0, 1)
    target = prompt.parents[0]
    right = strategy.parse(f" {target.answer}\nFeedback: carry", ctx, prompt).items[0]
    wrong = strategy.parse(f" {int(target.answer) + 1}\nFeedback: carry", ctx, prompt).items[0]
    assert strategy.check(right, ctx, prompt)[0] == "verified"
    assert strategy.check(wrong, ctx, prompt)[0] == "wrong-answer"
    assert strategy.parse(" 5\n\n", ctx, prompt).items[0].provenance.feedback is None


def test_refine_corrects_seed_failures_only_and_honours_seed_ids(arithmetic) -> None:
    strategy, ctx = Refine(Templates(), "base"), _ctx(arithmetic, failed=3)
    failed = [f.example for f in ctx.failures]
    # A failed probe the request carries is held out of training: shown, never corrected.
    ctx.request = ctx.request.model_copy(update={"failures": _probes(arithmetic, 2)})
    targets = [strategy.prompt(ctx, i, 1).parents[0] for i in range(6)]
    assert set(e.id for e in targets) == {e.id for e in failed}
    assert targets[:3] == targets[3:]  # every failure once before any repeats
    named = _ctx(arithmetic, seed_ids=(failed[1].id, ctx.seeds[5].id), failed=3)
    assert strategy.targets(named) == [failed[1]]  # a named seed it solves has no wrong attempt
    assert strategy.targets(_ctx(arithmetic, failed=0)) == []  # nothing to correct: no prompt


def test_harder_builds_on_solved_seeds_one_problem_per_prompt(arithmetic) -> None:
    strategy, ctx = Harder(Templates(), "base"), _ctx(arithmetic, failed=3)
    failed = {f.example.id for f in ctx.failures}
    parents = [strategy.prompt(ctx, i, 1).parents[0] for i in range(len(ctx.seeds) - 3)]
    assert {p.id for p in parents} == {e.id for e in ctx.seeds} - failed
    assert strategy.per_prompt(6) == 1
    prompt = strategy.prompt(ctx, 0, 1)
    target = prompt.parents[0]
    assert (
        f"solves this problem:\nQ: {target.question}\nA: {target.answer}\nA harder" in prompt.text
    )
    assert prompt.text.endswith("\nQ:") and prompt.stop == ("\nQ:", "\n\n")
    (got,) = strategy.parse(" 345+678\nA: 1023\n", ctx, prompt).items
    assert (got.question, got.provenance.strategy, got.provenance.parent_ids) == (
        "345+678",
        "harder",
        [target.id],
    )
    named = _ctx(arithmetic, seed_ids=(ctx.seeds[0].id,), failed=3)
    assert strategy.targets(named) == [ctx.seeds[0]]  # the policy chose it: used as named
    everything = _ctx(arithmetic, failed=len(ctx.seeds))
    assert strategy.targets(everything) == []  # no solved seed: the request cannot be served


def test_multiline_refine_leaves_a_json_line_open_at_the_answer() -> None:
    ctx = _code_ctx()
    strategy = Refine(Templates(), "base")
    prompt = strategy.prompt(ctx, 0, 1)
    target = prompt.parents[0]
    opened = f'{{"question": {json.dumps(target.question)}, "student_answer": "pass", "answer": "'
    assert prompt.text.endswith(opened) and prompt.stop == ("\n",)
    text = json.dumps(CODE_A)[1:] + ', "feedback": "no body"}'
    (got,) = strategy.parse(text, ctx, prompt).items
    assert (got.question, got.answer, got.provenance.feedback) == (
        target.question,
        CODE_A,
        "no body",
    )


def test_templates_from_the_engine_package_still_work_and_warn() -> None:
    """``from dataloop.engine import Templates``, where docs/architecture.md once put it."""
    import dataloop.engine

    with pytest.warns(DeprecationWarning, match="import Templates from dataloop.llm"):
        old = dataloop.engine.Templates  # type: ignore[attr-defined]
    assert old is Templates
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        dataloop.engine.Nothing  # type: ignore[attr-defined]  # noqa: B018
