"""Bad-input corpus: random schemas, files and encodings through the step scripts' `main(argv)`.

Property, per script: the run either succeeds with correct outputs, or exits 1 with a clear
reason in the failure-reason file (see tests.badinput). The generators know which of their
corruptions make an input invalid, so the property is sharper than "no crash": valid inputs
must succeed (rows conserved, labels intact) and invalid ones must be refused, naming the
column, channel or file at fault.

An input that hits a known bug is kept out of the generators and pinned instead by an
`xfail(strict=True)` test, so the properties guard everything else meanwhile and the xfail
turns red the day the bug is fixed; then the marker goes and the input joins the generators
(none is pinned today). Runs are derandomized (the same examples every run, no .hypothesis
database); `BADINPUT_EXPLORE=1` draws 10x as many fresh examples to hunt locally.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import math
import os
import pickle
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xgboost as xgb
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipeline_code.steps import load

evaluate = load("evaluate")
prepare = load("prepare")
train = load("train")
contract = load("evaluate", "evaluation_contract")
dataset_reading = load("prepare", "dataset_reading")
dataset_schema = load("prepare", "dataset_schema")
step_failure = load("common", "failure")
model_files = load("common", "model_files")

EXPLORE = os.environ.get("BADINPUT_EXPLORE") == "1"
FAILURE_ENV = step_failure.FAILURE_FILE_ENV
assert FAILURE_ENV == step_failure.FAILURE_FILE_ENV == step_failure.FAILURE_FILE_ENV
FAILURE_LIMIT_BYTES = 1024
# Markers of a traceback (Python's, or XGBoost's native one) where a reason should be.
TRACEBACK_MARKERS = ("Traceback (most recent call last)", "Stack trace:", "[bt] (")
TARGET = "is_fraud"


def corpus_settings(examples: int) -> settings:
    return settings(
        max_examples=examples * (10 if EXPLORE else 1),
        deadline=None,
        derandomize=not EXPLORE,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ---- running a step and judging its reason -----------------------------------------------------


@dataclass(frozen=True)
class Run:
    code: int
    reason: str  # the failure-reason file; "" when none was written


def run_step(main: Callable[[list[str]], int], argv: list[str], workdir: Path) -> Run:
    """Run a step's `main` with its failure-reason file in `workdir` (stderr swallowed)."""
    failure = workdir / "failure-reason"
    previous = os.environ.get(FAILURE_ENV)
    os.environ[FAILURE_ENV] = str(failure)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            code = main(argv)
    finally:
        if previous is None:
            del os.environ[FAILURE_ENV]
        else:
            os.environ[FAILURE_ENV] = previous
    return Run(code, failure.read_text("utf-8") if failure.exists() else "")


def assert_refused_clearly(run: Run, needles: Iterable[str] = ()) -> None:
    """Exit 1 and a clear reason that names one of `needles` (when any are given)."""
    assert run.code == 1, f"expected a refusal, got exit code {run.code}"
    reason = run.reason
    assert reason.strip(), "no failure reason was written"
    assert len(reason.encode("utf-8")) <= FAILURE_LIMIT_BYTES
    for marker in TRACEBACK_MARKERS:
        assert marker not in reason, f"traceback in the reason: {reason!r}"
    assert not reason.startswith("unexpected "), f"no check caught the input: {reason!r}"
    wanted = list(needles)
    if wanted:
        assert any(needle in reason for needle in wanted), (wanted, reason)


def strict_json(path: Path) -> Any:
    """Parse JSON as any consumer would; NaN/Infinity are not JSON."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{path.name} contains {constant}, which is not JSON")

    return json.loads(path.read_text("utf-8"), parse_constant=refuse)


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    # hypothesis runs many examples per test: tmp_path (one per test) can't isolate them.
    with tempfile.TemporaryDirectory(prefix="badinput-") as name:
        yield Path(name)


# ---- writing tables ------------------------------------------------------------------------

Cell = str | None  # None = missing


def csv_text(header: list[str], rows: Sequence[Sequence[Cell]], newline: str = "\n") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(header)
    writer.writerows([["" if cell is None else cell for cell in row] for row in rows])
    return buffer.getvalue()


TRUE_SPELLINGS = dataset_reading.TRUE_VALUES
FALSE_SPELLINGS = dataset_reading.FALSE_VALUES
BOOL_OF = {**dict.fromkeys(TRUE_SPELLINGS, True), **dict.fromkeys(FALSE_SPELLINGS, False)}


def parquet_bytes(header: list[str], rows: list[list[Cell]], kinds: dict[str, str]) -> bytes:
    """Columns typed as a producer would store them where every cell parses; text otherwise."""
    arrays = []
    for index, name in enumerate(header):
        cells = [row[index] for row in rows]
        arrays.append(_typed(cells, kinds.get(name)))
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, names=header), buffer)
    return buffer.getvalue()


def _typed(cells: list[Cell], kind: str | None) -> pa.Array:
    try:
        if kind == "bool":
            return pa.array([None if c is None else BOOL_OF[c] for c in cells], pa.bool_())
        if kind == "int":
            return pa.array([None if c is None else int(c) for c in cells], pa.int64())
        if kind == "float":
            return pa.array([None if c is None else float(c) for c in cells], pa.float64())
    except (KeyError, ValueError):
        pass
    return pa.array(cells, pa.string())


# ---- prepare.py: the generator -----------------------------------------------------------------

NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_ éßΩ€"
column_names = st.text(NAME_CHARS, min_size=1, max_size=8).filter(lambda s: s == s.strip())


def _not_a_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text not in dataset_reading.NULL_VALUES
    return False


words = st.text("abcdefghijklmnopqrstuvwxyzé", min_size=1, max_size=8).filter(_not_a_number)
REJECTED_BOOLS = ("yes", "no", "Y", "N", "t", "f", "on", "off", "2", "-1", "0.5", "vrai")
INFINITIES = ("inf", "-inf", "Infinity", "-Infinity", "1e999")
NULL_SPELLINGS = ("", "NA", "NaN", "null", "None", "N/A")


@dataclass
class Corruption:
    kind: str
    breaking: bool
    needles: tuple[str, ...] = ()


@dataclass
class PrepareCase:
    schema: dict[str, Any]
    header: list[str]
    rows: list[list[Cell]]
    labels: list[bool | None]  # the class of each row as written (None = missing target)
    corruptions: list[Corruption] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def breaking(self) -> bool:
        return any(c.breaking for c in self.corruptions)

    @property
    def needles(self) -> list[str]:
        """What the reason must name; empty when some breaking corruption names nothing."""
        breaking = [c for c in self.corruptions if c.breaking]
        if any(not c.needles for c in breaking):
            return []
        return [needle for c in breaking for needle in c.needles]

    def describe(self) -> str:
        kinds = ", ".join(c.kind for c in self.corruptions) or "none"
        return f"corruptions: {kinds}; files: {sorted(self.files)}"


CELL_CORRUPTIONS = ("text", "huge", "infinite", "fraction", "bad_bool", "missing", "padded")
FILE_CORRUPTIONS = (
    "drop_column",
    "duplicate_column",
    "extra_columns",
    "shuffle_columns",
    "one_class",
    "truncate",
    "ragged",
    "encoding",
)


@st.composite
def prepare_cases(draw: st.DrawFn, primary: str) -> PrepareCase:
    """A random schema and data set with corruption `primary` ("none" for none) and maybe
    one more drawn at random."""
    names = draw(st.lists(column_names, min_size=2, max_size=4, unique=True))
    target, feature_names = names[0], names[1:]
    # Category features (any text is a value) have their own tests in tests/steps.
    numeric_kinds = [t for t in dataset_schema.FEATURE_TYPES if t != dataset_schema.CATEGORY]
    kinds = {n: draw(st.sampled_from(numeric_kinds)) for n in feature_names}
    max_missing = draw(st.sampled_from([0.0, 0.5]))
    schema = {
        "target": target,
        "features": [{"name": n, "type": kinds[n]} for n in feature_names],
        "max_missing_fraction": max_missing,
    }
    kinds[target] = "bool"

    # Enough rows of both classes for three splits, whatever one corruption drops (each row is
    # placed by a hash of its values: a split may still lack a class, see a_split_lacks_a_class).
    n = draw(st.integers(30, 48))
    positives = draw(st.integers(int(0.4 * n), int(0.6 * n)))
    labels: list[bool | None] = draw(
        st.permutations([True] * positives + [False] * (n - positives))
    )

    def spell(value: bool) -> str:
        return draw(st.sampled_from(TRUE_SPELLINGS if value else FALSE_SPELLINGS))

    def value(kind: str) -> str:
        if kind == "float":
            return repr(draw(st.floats(-1e6, 1e6, allow_nan=False)))
        if kind == "int":
            return str(draw(st.integers(-(10**6), 10**6)))
        return spell(draw(st.booleans()))

    header = [target, *feature_names]
    rows: list[list[Cell]] = [
        [spell(bool(label)), *(value(kinds[f]) for f in feature_names)] for label in labels
    ]
    case = PrepareCase(schema, header, rows, labels)
    numeric = [f for f in feature_names if kinds[f] in ("float", "int")]
    booleans = [target, *(f for f in feature_names if kinds[f] == "bool")]

    others = [k for k in CELL_CORRUPTIONS + FILE_CORRUPTIONS if k != primary]
    chosen = [primary, *draw(st.lists(st.sampled_from(others), max_size=1))]
    # Cell corruptions each take their own row, so none undoes another.
    free_rows = iter(draw(st.permutations(range(n))))
    csv_only = False

    def set_cell(column: str, text: Cell) -> int:
        row = next(free_rows)
        case.rows[row][case.header.index(column)] = text
        return row

    for kind in chosen:
        if kind == "one_class":
            only = draw(st.booleans())
            for row, label in enumerate(case.labels):
                if label is not None:
                    case.labels[row] = only
                    case.rows[row][0] = spell(only)
            case.corruptions.append(Corruption(kind, True, (repr(target),)))
    for kind in chosen:
        if kind == "text" and numeric:
            column = draw(st.sampled_from(numeric))
            set_cell(column, draw(words))
            case.corruptions.append(Corruption(kind, True, (repr(column),)))
        elif kind == "huge":
            column = draw(st.sampled_from(header))
            set_cell(column, draw(st.sampled_from("xyzé")) * draw(st.integers(10_000, 30_000)))
            case.corruptions.append(Corruption(kind, True, (repr(column),)))
        elif kind == "infinite" and numeric:
            column = draw(st.sampled_from(numeric))
            set_cell(column, draw(st.sampled_from(INFINITIES)))
            case.corruptions.append(Corruption(kind, True, (repr(column),)))
        elif kind == "fraction" and any(kinds[f] == "int" for f in feature_names):
            column = draw(st.sampled_from([f for f in feature_names if kinds[f] == "int"]))
            set_cell(column, "2.5")
            case.corruptions.append(Corruption(kind, True, (repr(column),)))
        elif kind == "bad_bool":
            column = draw(st.sampled_from(booleans))
            set_cell(column, draw(st.sampled_from(REJECTED_BOOLS)))
            case.corruptions.append(Corruption(kind, True, (repr(column),)))
        elif kind == "missing":
            column = draw(st.sampled_from(header))
            spelled = draw(st.sampled_from(NULL_SPELLINGS))
            row = set_cell(column, None if spelled == "" else spelled)
            if column == target:
                case.labels[row] = None
            case.corruptions.append(Corruption(kind, max_missing == 0.0, (repr(column),)))
        elif kind == "padded":
            column = draw(st.sampled_from(header))  # blanks are ignored around every type
            index = case.header.index(column)
            row = next(free_rows)
            case.rows[row][index] = f"  {case.rows[row][index]} "
            case.corruptions.append(Corruption(kind, False))

    # File-level changes, in an order where each sees the columns the previous left.
    if "drop_column" in chosen:
        column = draw(st.sampled_from(header))
        index = case.header.index(column)
        case.header.pop(index)
        for cells in case.rows:
            cells.pop(index)
        case.corruptions.append(Corruption("drop_column", True, (repr(column),)))
    if "duplicate_column" in chosen:
        column = draw(st.sampled_from(case.header))
        index = case.header.index(column)
        case.header.append(column)
        for cells in case.rows:
            cells.append(cells[index])
        case.corruptions.append(Corruption("duplicate_column", True, (repr(column),)))
        csv_only = True  # Parquet writers refuse duplicate names
    if "extra_columns" in chosen:
        for number in range(draw(st.integers(1, 2))):
            case.header.append(f"extra_{number}")
            junk = st.text(min_size=0, max_size=draw(st.sampled_from([5, 200, 20_000])))
            for cells in case.rows:
                # A bare CR would end the row (csv quotes only delimiter, quote and "\n").
                cells.append(draw(junk).replace("\x00", "").replace("\r", "") or None)
        case.corruptions.append(Corruption("extra_columns", False))
    truncate = None
    if "truncate" in chosen:
        truncate = draw(st.sampled_from(["empty", "header_only", "single_row"]))
        case.corruptions.append(Corruption(f"truncate-{truncate}", True))
    ragged = "ragged" in chosen
    encoding = draw(st.sampled_from(["utf-16", "latin-1"])) if "encoding" in chosen else None
    if ragged or encoding:
        csv_only = True

    # Split into part files of drawn formats.
    parts = 1 if truncate or ragged or encoding else draw(st.integers(1, 2))
    cut = draw(st.integers(1, n - 1)) if parts == 2 else n
    chunks = [(0, cut), (cut, n)][:parts]
    if truncate == "single_row":
        chunks = [(0, 1)]
    for number, (start, stop) in enumerate(chunks):
        header, rows = list(case.header), [list(r) for r in case.rows[start:stop]]
        if "shuffle_columns" in chosen:
            order = draw(st.permutations(range(len(header))))
            header = [header[i] for i in order]
            rows = [[row[i] for i in order] for row in rows]
        file_format = "csv" if csv_only else draw(st.sampled_from(["csv", "csv.gz", "parquet"]))
        name = f"part-{number}.{file_format}"
        if truncate in ("empty", "header_only"):
            rows = []
        if file_format == "parquet":
            case.files[name] = parquet_bytes(header, rows, kinds)
            continue
        text = csv_text(header, rows, draw(st.sampled_from(["\n", "\r\n"])))
        if truncate == "empty":
            text = ""
        if ragged:
            text += ",".join(["1"] * (len(header) - 1)) + "\n"
        if file_format == "csv.gz":
            case.files[name] = gzip.compress(text.encode("utf-8"))
        elif encoding == "latin-1":
            # A producer's latin-1 export: non-ASCII bytes already in the header.
            header_line, _, body = text.partition("\n")
            case.files[name] = f"{header_line},café\n{body}".encode("latin-1", "replace")
        elif encoding == "utf-16":
            case.files[name] = text.encode("utf-16")
        else:
            case.files[name] = text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])))
    if "shuffle_columns" in chosen:
        case.corruptions.append(Corruption("shuffle_columns", False))
    if ragged:
        case.corruptions.append(Corruption("ragged", True, tuple(case.files)))
    if encoding:
        case.corruptions.append(Corruption(f"encoding-{encoding}", True, tuple(case.files)))
    if truncate == "single_row":
        case.labels = case.labels[:1]
    if draw(st.booleans()):
        case.files["README.txt"] = b"not data: skipped with a warning"
    return case


stable_split = load("common", "stable_split")


def a_split_lacks_a_class(case: PrepareCase) -> bool:
    """Whether Prepare's stable split of this (unbroken) case leaves a split without both
    classes, which Prepare must refuse: each row is placed by a hash of its feature values, so
    a few dozen rows (and duplicate rows, which share a split) can leave one split a class
    short. The values are parsed here from the cells as written."""
    kinds = {f["name"]: f["type"] for f in case.schema["features"]}

    def parsed(cell: Cell, kind: str) -> float:
        text = None if cell is None else str(cell).strip()
        if text is None or text in NULL_SPELLINGS:
            return math.nan
        return float(BOOL_OF[text]) if kind == "bool" else float(text)

    labelled = [row for row, label in enumerate(case.labels) if label is not None]
    columns = {
        name: np.array([parsed(case.rows[r][case.header.index(name)], kind) for r in labelled])
        for name, kind in kinds.items()
    }
    u = stable_split.unit(stable_split.content_hash(columns, list(kinds), 42))
    split = stable_split.assign(u, 0.15, 0.15)
    labels = np.array([bool(case.labels[r]) for r in labelled])
    return any(len(set(labels[split == code])) < 2 for code in range(3))


def run_prepare(case: PrepareCase, root: Path) -> Run:
    (root / "in").mkdir()
    for name, data in case.files.items():
        (root / "in" / name).write_bytes(data)
    (root / "schema.json").write_text(json.dumps(case.schema), "utf-8")
    argv = ["--input-dir", str(root / "in"), "--output-dir", str(root / "out")]
    return run_step(prepare.main, [*argv, "--schema", str(root / "schema.json")], root)


def assert_prepared_correctly(case: PrepareCase, out: Path) -> None:
    target = case.schema["target"]
    names = [target, *(f["name"] for f in case.schema["features"])]
    splits = []
    for split in prepare.SPLITS:
        path = out / split / f"{split}.csv"
        assert path.read_text("utf-8").split("\n", 1)[0] == ",".join(names)
        splits.append(pd.read_csv(path, keep_default_na=False, na_values=[""]))
    written = pd.concat(splits)
    labelled = [label for label in case.labels if label is not None]
    assert len(written) == len(labelled)  # every labelled row once, no other row
    assert written[target].isna().sum() == 0
    assert set(written[target].unique()) <= {0, 1}
    assert int(written[target].sum()) == sum(labelled)  # true/false spellings mapped right


@pytest.mark.parametrize("primary", ["none", *CELL_CORRUPTIONS, *FILE_CORRUPTIONS])
@corpus_settings(examples=6)
@given(data=st.data())
def test_prepare_processes_valid_input_and_refuses_invalid_input_clearly(
    primary: str, data: st.DataObject
) -> None:
    case = data.draw(prepare_cases(primary))
    event(f"corruptions: {', '.join(c.kind for c in case.corruptions) or 'none'}")
    event(f"expected: {'refusal' if case.breaking else 'success'}")
    with workdir() as root:
        run = run_prepare(case, root)
        if case.breaking:
            assert_refused_clearly(run, case.needles)
            assert not (root / "out" / "train" / "train.csv").exists()
        elif a_split_lacks_a_class(case):
            event("expected: refusal (a split without both classes)")
            assert_refused_clearly(run, ["after the split"])
        else:
            assert (run.code, run.reason) == (0, ""), case.describe()
            assert_prepared_correctly(case, root / "out")


# ---- prepare.py: cases the generator leaves to explicit tests ----------------------------------

SCHEMA = {
    "target": "y",
    "features": [
        {"name": "amount", "type": "float"},
        {"name": "count", "type": "int"},
        {"name": "flag", "type": "bool"},
    ],
}


def small_table(rows: int = 40) -> tuple[list[str], list[list[Cell]]]:
    header = ["y", "amount", "count", "flag"]
    return header, [
        [str(i % 2), f"{i * 1.25}", str(i), "true" if i % 3 else "false"] for i in range(rows)
    ]


def prepare_files(files: dict[str, bytes], tmp_path: Path, schema: dict = SCHEMA) -> Run:
    (tmp_path / "in").mkdir(parents=True)
    for name, data in files.items():
        (tmp_path / "in" / name).write_bytes(data)
    argv = ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")]
    return run_step(prepare.main, [*argv, "--schema", json.dumps(schema)], tmp_path)


def written_rows(out: Path) -> pd.DataFrame:
    return pd.concat(pd.read_csv(out / s / f"{s}.csv") for s in prepare.SPLITS)


@pytest.mark.parametrize(
    ("encoding", "accepted"),
    [("utf-8-sig", True), ("utf-16", False), ("utf-16-le", False), ("cp1252", False)],
)
def test_prepare_reads_utf8_with_a_bom_and_refuses_other_encodings_naming_the_file(
    tmp_path: Path, encoding: str, accepted: bool
) -> None:
    header, rows = small_table()
    header[1] = "montant_€"  # non-ASCII, so a wrong encoding cannot pass as UTF-8
    schema = json.loads(json.dumps(SCHEMA).replace('"amount"', '"montant_€"'))
    run = prepare_files({"export.csv": csv_text(header, rows).encode(encoding)}, tmp_path, schema)
    if accepted:
        assert run.code == 0, run.reason
        assert len(written_rows(tmp_path / "out")) == len(rows)
    else:
        assert_refused_clearly(run, ["export.csv"])


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_prepare_refuses_a_duplicated_schema_column_naming_it(
    tmp_path: Path, file_format: str
) -> None:
    header, rows = small_table()
    header.append("amount")
    rows = [[*row, "0"] for row in rows]
    if file_format == "csv":
        data = csv_text(header, rows).encode()
    else:
        table = pa.Table.from_arrays([pa.array(c) for c in zip(*rows, strict=True)], names=header)
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        data = buffer.getvalue()
    assert_refused_clearly(prepare_files({f"p.{file_format}": data}, tmp_path), ["'amount'"])


def test_prepare_reason_for_a_huge_cell_names_the_column_within_one_kilobyte(
    tmp_path: Path,
) -> None:
    header, rows = small_table()
    rows[7][1] = "9" * 10 + "x" * 200_000
    run = prepare_files({"p.csv": csv_text(header, rows).encode()}, tmp_path)
    assert_refused_clearly(run, ["'amount'"])


@pytest.mark.parametrize("spelling", TRUE_SPELLINGS + FALSE_SPELLINGS)
@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_prepare_maps_every_accepted_boolean_spelling(
    tmp_path: Path, spelling: str, file_format: str
) -> None:
    header, rows = small_table()
    for row in rows[::4]:
        row[3] = spelling
    if file_format == "csv":
        data = csv_text(header, rows).encode()
    else:
        data = parquet_bytes(header, rows, {"flag": "text"})  # text column: parsed by prepare
    assert prepare_files({f"p.{file_format}": data}, tmp_path).code == 0
    flags = written_rows(tmp_path / "out").sort_values("count")["flag"].tolist()
    expected = [int(BOOL_OF[str(row[3])]) for row in rows]
    assert flags == expected


@pytest.mark.parametrize("spelling", REJECTED_BOOLS)
def test_prepare_refuses_other_boolean_spellings_naming_the_column(
    tmp_path: Path, spelling: str
) -> None:
    header, rows = small_table()
    rows[5][3] = spelling
    run = prepare_files({"p.csv": csv_text(header, rows).encode()}, tmp_path)
    assert_refused_clearly(run, ["'flag'"])


@pytest.mark.parametrize("big", ["1e20", "9223372036854775808", "-1e19", "9007199254740993"])
def test_prepare_refuses_ints_it_cannot_write_exactly_naming_the_column(
    tmp_path: Path, big: str
) -> None:
    """Beyond 2**53 - 1 float64 rounds whole numbers (beyond int64 astype wrapped them to
    -2**63): refused, naming the column, instead of written as another number."""
    header, rows = small_table()
    rows[0][2] = big
    run = prepare_files({"p.csv": csv_text(header, rows).encode()}, tmp_path)
    assert_refused_clearly(run, ["'count'"])
    assert "2**53 - 1" in run.reason
    assert not (tmp_path / "out" / "train" / "train.csv").exists()


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_prepare_writes_the_largest_exact_ints_unchanged(tmp_path: Path, file_format: str) -> None:
    header, rows = small_table()
    rows[0][2], rows[1][2] = str(2**53 - 1), str(-(2**53 - 1))
    if file_format == "csv":
        data = csv_text(header, rows).encode()
    else:
        data = parquet_bytes(header, rows, {"count": "int"})
    run = prepare_files({f"p.{file_format}": data}, tmp_path)
    assert run.code == 0, run.reason
    written = written_rows(tmp_path / "out")["count"].tolist()
    assert {2**53 - 1, -(2**53 - 1)} <= set(written)


@pytest.mark.parametrize("arrow_type", [pa.int64(), pa.uint64()])
def test_prepare_refuses_parquet_integers_beyond_float_precision_naming_the_column(
    tmp_path: Path, arrow_type: pa.DataType
) -> None:
    header, rows = small_table()
    columns = [pa.array(c) for c in zip(*rows, strict=True)]
    columns[2] = pa.array([2**60] + list(range(1, len(rows))), arrow_type)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(columns, names=header), buffer)
    run = prepare_files({"p.parquet": buffer.getvalue()}, tmp_path)
    assert_refused_clearly(run, ["'count'"])
    assert "2**53 - 1" in run.reason


@pytest.mark.parametrize("cell", ["1e39", "-3.5e38"])
def test_prepare_refuses_floats_beyond_float32_naming_the_column(tmp_path: Path, cell: str) -> None:
    """Finite in float64 but infinite in XGBoost's float32: refused here, not in training."""
    header, rows = small_table()
    rows[3][1] = cell
    run = prepare_files({"p.csv": csv_text(header, rows).encode()}, tmp_path)
    assert_refused_clearly(run, ["'amount'"])
    assert "float32" in run.reason


@pytest.mark.parametrize(
    ("column", "cell"), [(3, " true"), (3, "false  "), (0, " 1 "), (0, "\tFALSE"), (1, " NA ")]
)
def test_prepare_treats_blank_padded_cells_alike_in_csv_and_parquet(
    tmp_path: Path, column: int, cell: str
) -> None:
    """Blanks around a bool, target or null spelling are ignored in both formats, as pyarrow
    ignores them around numbers."""
    header, rows = small_table()
    rows[4][column] = cell
    written = []
    for file_format in ("csv", "parquet"):
        if file_format == "csv":
            data = csv_text(header, rows).encode()
        else:
            data = parquet_bytes(header, rows, {})  # text columns: parsed by prepare
        schema = {**SCHEMA, "max_missing_fraction": 0.5}
        run = prepare_files({f"p.{file_format}": data}, tmp_path / file_format, schema)
        assert (run.code, run.reason) == (0, ""), file_format
        written.append(written_rows(tmp_path / file_format / "out").sort_values("count"))
    from_csv, from_parquet = written
    pd.testing.assert_frame_equal(from_csv.reset_index(drop=True),
                                  from_parquet.reset_index(drop=True))  # fmt: skip
    row = from_csv[from_csv["count"] == 4].iloc[0]
    stripped = cell.strip()
    if stripped in dataset_reading.NULL_VALUES:
        assert math.isnan(row[header[column]])
    else:
        assert row[header[column]] == int(BOOL_OF[stripped])


def test_prepare_names_the_column_of_a_bad_bool_next_to_padded_ones(tmp_path: Path) -> None:
    """The CSV reason names the column, not pyarrow's 'CSV column #3'."""
    header, rows = small_table()
    rows[2][3], rows[6][3] = " true", "maybe"
    run = prepare_files({"p.csv": csv_text(header, rows).encode()}, tmp_path)
    assert_refused_clearly(run, ["'flag'"])
    assert "column #" not in run.reason
    assert "'maybe' in line 8" in run.reason


# ---- train.py ----------------------------------------------------------------------------------

FAST = ["--num_round", "4", "--early_stopping_rounds", "2", "--max_depth", "2"]


@dataclass
class ChannelCase:
    features: list[str]
    channels: dict[str, dict[str, bytes]]  # channel -> file name -> bytes
    train_rows: int
    breaking: bool = False
    channel: str = "train"  # the channel a breaking corruption is in
    kind: str = "none"


def labelled_rows(draw: st.DrawFn, features: int, rows: int) -> list[list[str]]:
    labels = draw(st.permutations([1] * (rows // 2) + [0] * (rows - rows // 2)))
    return [
        [str(label), *(repr(draw(st.floats(-100, 100, allow_nan=False))) for _ in range(features))]
        for label in labels
    ]


TRAIN_BREAKING = (
    "empty",
    "header_only",
    "text",
    "bad_target",
    "missing_target",
    "drop_target",
    "ragged",
    "utf-16",
    "one_class",
    "feature_mismatch",
    "files_differ",
    "infinite",
    "duplicate_column",
    "target_only",
)
TRAIN_HARMLESS = ("none", "missing_feature", "bom", "bool_target", "crlf", "two_files")


@st.composite
def channel_cases(draw: st.DrawFn, kind: str) -> ChannelCase:
    """Random valid train/validation channels, then corruption `kind` ("none" for none)."""
    features = draw(st.lists(column_names.filter(lambda s: s != TARGET), min_size=1, max_size=3,
                             unique=True))  # fmt: skip
    header = [TARGET, *features]
    tables = {
        "train": labelled_rows(draw, len(features), draw(st.integers(12, 30))),
        "validation": labelled_rows(draw, len(features), draw(st.integers(6, 12))),
    }
    channel = "train" if kind == "files_differ" else draw(st.sampled_from(["train", "validation"]))
    case = ChannelCase(features, {}, len(tables["train"]), kind in TRAIN_BREAKING, channel, kind)
    for name, rows in tables.items():
        files: dict[str, bytes] = {}
        columns = list(header)
        hit = name == channel
        if hit and kind == "text":
            rows[draw(st.integers(0, len(rows) - 1))][1] = draw(words)
        elif hit and kind == "bad_target":
            rows[draw(st.integers(0, len(rows) - 1))][0] = draw(st.sampled_from(["2", "-1", "0.5"]))
        elif hit and kind == "missing_target":
            rows[draw(st.integers(0, len(rows) - 1))][0] = ""
        elif hit and kind == "missing_feature":
            rows[draw(st.integers(0, len(rows) - 1))][1] = ""
        elif hit and kind == "one_class":
            for row in rows:
                row[0] = "1"
        elif hit and kind == "bool_target":
            for row in rows:
                row[0] = "true" if row[0] == "1" else "false"
        elif hit and kind == "drop_target":
            columns, rows = columns[1:], [row[1:] for row in rows]
        elif hit and kind == "feature_mismatch":
            columns = [*columns[:-1], columns[-1] + "_renamed"]
        elif hit and kind == "infinite":
            at, feature = draw(st.integers(0, len(rows) - 1)), draw(st.integers(1, len(features)))
            rows[at][feature] = draw(st.sampled_from((*INFINITIES, "1e39", "-4e38")))
        elif hit and kind == "duplicate_column":
            twice = draw(st.integers(0, len(columns) - 1))
            columns = [*columns, columns[twice]]
            rows = [[*row, row[twice]] for row in rows]
        elif hit and kind == "target_only":
            columns, rows = columns[:1], [row[:1] for row in rows]
        text = csv_text(columns, rows, "\r\n" if hit and kind == "crlf" else "\n")
        if hit and kind == "empty":
            text = ""
        elif hit and kind == "header_only":
            text = csv_text(columns, [])
        elif hit and kind == "ragged":
            text += "1\n"
        if hit and kind in ("files_differ", "two_files"):
            half = len(rows) // 2
            other = list(reversed(columns)) if kind == "files_differ" else columns
            reorder = [columns.index(c) for c in other]
            files["part-a.csv"] = csv_text(columns, rows[:half]).encode()
            files["part-b.csv"] = csv_text(
                other, [[row[i] for i in reorder] for row in rows[half:]]
            ).encode()
        elif hit and kind == "utf-16":
            files[f"{name}.csv"] = text.encode("utf-16")
        elif hit and kind == "bom":
            files[f"{name}.csv"] = text.encode("utf-8-sig")
        else:
            files[f"{name}.csv"] = text.encode()
        case.channels[name] = files
    return case


def run_train(case: ChannelCase, root: Path, *extra: str) -> Run:
    for channel, files in case.channels.items():
        (root / channel).mkdir()
        for name, data in files.items():
            (root / channel / name).write_bytes(data)
    argv = [
        *FAST,
        "--train", str(root / "train"),
        "--validation", str(root / "validation"),
        "--model_dir", str(root / "model"),
        "--checkpoint_dir", str(root / "checkpoints"),
        *extra,
    ]  # fmt: skip
    return run_step(train.main, argv, root)


@pytest.mark.parametrize("kind", TRAIN_BREAKING + TRAIN_HARMLESS)
@corpus_settings(examples=4)
@given(data=st.data())
def test_train_trains_on_valid_channels_and_refuses_malformed_ones_clearly(
    kind: str, data: st.DataObject
) -> None:
    case = data.draw(channel_cases(kind))
    event(f"in channel {case.channel}" if case.breaking else "expected: success")
    with workdir() as root:
        run = run_train(case, root)
        if case.breaking:
            assert_refused_clearly(run, [f"'{case.channel}'", f"{case.channel} channel"])
            assert not (root / "model" / train.MODEL_FILE).exists()
        else:
            assert (run.code, run.reason) == (0, ""), case.kind
            metadata = strict_json(root / "model" / train.METADATA_DIR / train.METADATA_FILE)
            assert metadata["feature_names"] == case.features
            assert metadata["train_rows"] == case.train_rows
            booster = xgb.Booster()
            booster.load_model(str(root / "model" / train.MODEL_FILE))
            assert booster.num_features() == len(case.features)


def channel_files(train_csv: str, validation_csv: str | None = None) -> ChannelCase:
    """A case from literal CSV text; the validation channel defaults to a valid one. The train
    text is encoded latin-1, as a legacy export would be (ASCII text is the same bytes)."""
    valid = validation_csv or "is_fraud,a,b\n" + "".join(
        f"{i % 2},{i * 0.5},{i % 3}\n" for i in range(10)
    )
    return ChannelCase(
        ["a", "b"],
        {"train": {"train.csv": train_csv.encode("latin-1")},
         "validation": {"validation.csv": valid.encode()}},
        0,
    )  # fmt: skip


GOOD_TRAIN = "is_fraud,a,b\n" + "".join(
    f"{i % 2},{(i % 2) * 3 + i * 0.1},{i % 5}\n" for i in range(30)
)


def assert_no_model(root: Path) -> None:
    assert not (root / "model" / train.MODEL_FILE).exists()
    assert not (root / "model" / train.METADATA_DIR / train.METADATA_FILE).exists()


@pytest.mark.parametrize("cell", ["inf", "-inf", "1e39"])
def test_train_refuses_infinite_features_naming_the_channel(tmp_path: Path, cell: str) -> None:
    """'1e39' is finite in float64 but infinite in float32, which XGBoost stores: refused up
    front, naming channel and column, instead of XGBoost's native error and backtrace."""
    run = run_train(channel_files(GOOD_TRAIN + f"1,{cell},1\n"), tmp_path)
    assert_refused_clearly(run, ["'train'", "train channel"])
    assert "column 'a'" in run.reason
    assert "row 31" in run.reason
    assert_no_model(tmp_path)


def test_train_rounds_ints_beyond_float32_precision_instead_of_refusing(tmp_path: Path) -> None:
    """An int column above 2**24 is not exact in float32; XGBoost rounds it, so must we
    (pyarrow's checked cast refused it as 'Integer value ... not in range')."""
    big = "is_fraud,a,b\n" + "".join(f"{i % 2},{i * 0.5},{2**40 + i}\n" for i in range(30))
    run = run_train(channel_files(big), tmp_path)
    assert (run.code, run.reason) == (0, "")


@pytest.mark.parametrize("header", ["is_fraud,a,a", "is_fraud,a,is_fraud"])
def test_train_refuses_duplicated_columns_naming_the_channel(tmp_path: Path, header: str) -> None:
    run = run_train(channel_files(GOOD_TRAIN.replace("is_fraud,a,b", header, 1)), tmp_path)
    assert_refused_clearly(run, ["'train'", "train channel"])
    assert "train.csv" in run.reason
    assert "more than once" in run.reason


def test_train_refuses_a_latin1_channel_naming_channel_and_file(tmp_path: Path) -> None:
    run = run_train(channel_files(GOOD_TRAIN.replace("a,b", "montant_é,b", 1)), tmp_path)
    assert_refused_clearly(run, ["train.csv"])
    assert "channel 'train'" in run.reason
    assert "UTF-8" in run.reason


def test_train_refuses_a_channel_without_features(tmp_path: Path) -> None:
    only_target = "is_fraud\n" + "".join(f"{i % 2}\n" for i in range(20))
    run = run_train(channel_files(only_target, only_target), tmp_path)
    assert_refused_clearly(run, ["'train'", "train channel"])
    assert "no feature columns" in run.reason


def test_train_refuses_a_file_that_is_not_gzip_naming_it(tmp_path: Path) -> None:
    case = channel_files(GOOD_TRAIN)
    case.channels["train"] = {"train.csv.gz": GOOD_TRAIN.encode()}
    run = run_train(case, tmp_path)
    assert_refused_clearly(run, ["train.csv.gz"])
    assert "channel 'train'" in run.reason


@pytest.mark.parametrize("label", ["0", "1"])
def test_train_refuses_a_single_class_validation_channel(tmp_path: Path, label: str) -> None:
    """Its AUC is NaN every round: the job exited 0 with "best_validation_auc": NaN."""
    one_class = "is_fraud,a,b\n" + "".join(f"{label},{i * 0.5},{i % 3}\n" for i in range(10))
    run = run_train(channel_files(GOOD_TRAIN, one_class), tmp_path, "--num_round", "8")
    assert_refused_clearly(run, ["'validation'", "validation channel"])
    assert "single class" in run.reason
    assert_no_model(tmp_path)


def test_train_metadata_is_strict_json(tmp_path: Path) -> None:
    run = run_train(channel_files(GOOD_TRAIN), tmp_path)
    assert (run.code, run.reason) == (0, "")
    metadata = strict_json(tmp_path / "model" / train.METADATA_DIR / train.METADATA_FILE)
    assert math.isfinite(metadata["best_validation_auc"])


# ---- evaluate.py -------------------------------------------------------------------------------

MODEL_FEATURES = ["f1", "f2", "f3"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A challenger trained by train.py on MODEL_FEATURES."""
    root = tmp_path_factory.mktemp("challenger")
    rng = np.random.default_rng(5)
    rows = []
    for i in range(80):
        label = i % 2
        rows.append([str(label), *(f"{label + rng.normal():.4f}" for _ in MODEL_FEATURES)])
    for channel in ("train", "validation"):
        (root / channel).mkdir()
        (root / channel / "data.csv").write_text(csv_text([TARGET, *MODEL_FEATURES], rows))
    argv = [*FAST, "--train", str(root / "train"), "--validation", str(root / "validation")]
    run = run_step(train.main, [*argv, "--model_dir", str(root / "model"),
                                "--checkpoint_dir", str(root / "ck")], root)  # fmt: skip
    assert run.code == 0, run.reason
    return root / "model"


@dataclass
class EvalCase:
    files: dict[str, bytes]
    rows: int
    breaking: bool
    kind: str


EVAL_BREAKING = (
    "empty",
    "header_only",
    "text",
    "bad_target",
    "missing_target",
    "one_class",
    "drop_feature",
    "extra_feature",
    "ragged",
    "utf-16",
    "files_differ",
    "infinite",
    "duplicate_column",
)
EVAL_HARMLESS = ("none", "missing_feature", "bom", "shuffle_columns", "bool_target", "two_files")


@st.composite
def eval_cases(draw: st.DrawFn, kind: str) -> EvalCase:
    """A random labelled test set for the challenger, then corruption `kind`."""
    rows = labelled_rows(draw, len(MODEL_FEATURES), draw(st.integers(4, 24)))
    header = [TARGET, *MODEL_FEATURES]
    some_row = draw(st.integers(0, len(rows) - 1))
    if kind == "text":
        rows[some_row][draw(st.integers(1, 3))] = draw(words)
    elif kind == "bad_target":
        rows[some_row][0] = draw(st.sampled_from(["2", "-1", "0.5"]))
    elif kind == "missing_target":
        rows[some_row][0] = ""
    elif kind == "missing_feature":
        rows[some_row][draw(st.integers(1, 3))] = ""
    elif kind == "one_class":
        for row in rows:
            row[0] = "0"
    elif kind == "bool_target":
        for row in rows:
            row[0] = "true" if row[0] == "1" else "false"
    elif kind == "drop_feature":
        drop = draw(st.integers(1, 3))
        header.pop(drop)
        rows = [[c for i, c in enumerate(row) if i != drop] for row in rows]
    elif kind == "extra_feature":
        header.append("f4")
        rows = [[*row, "0.5"] for row in rows]
    elif kind == "infinite":
        rows[some_row][draw(st.integers(1, 3))] = draw(st.sampled_from((*INFINITIES, "1e39")))
    elif kind == "duplicate_column":
        twice = draw(st.integers(0, len(header) - 1))
        header.append(header[twice])
        rows = [[*row, row[twice]] for row in rows]
    elif kind == "shuffle_columns":
        order = draw(st.permutations(range(len(header))))
        header = [header[i] for i in order]
        rows = [[row[i] for i in order] for row in rows]
    text = csv_text(header, rows)
    files: dict[str, bytes] = {"test.csv": text.encode()}
    if kind == "empty":
        files["test.csv"] = b""
    elif kind == "header_only":
        files["test.csv"] = csv_text(header, []).encode()
    elif kind == "ragged":
        files["test.csv"] = (text + "1,2\n").encode()
    elif kind == "utf-16":
        files["test.csv"] = text.encode("utf-16")
    elif kind == "bom":
        files["test.csv"] = text.encode("utf-8-sig")
    elif kind in ("files_differ", "two_files"):
        half = len(rows) // 2
        other = list(reversed(header)) if kind == "files_differ" else header
        reorder = [header.index(c) for c in other]
        files = {
            "part-a.csv": csv_text(header, rows[:half]).encode(),
            "part-b.csv": csv_text(other, [[r[i] for i in reorder] for r in rows[half:]]).encode(),
        }
    return EvalCase(files, len(rows), kind in EVAL_BREAKING, kind)


def run_evaluate(model: Path, files: dict[str, bytes], root: Path, *extra: str) -> Run:
    (root / "test").mkdir()
    for name, data in files.items():
        (root / "test" / name).write_bytes(data)
    argv = [
        "--model-dir", str(model),
        "--test-dir", str(root / "test"),
        "--output-dir", str(root / "out"),
        "--bootstrap-samples", "20",
        *extra,
    ]  # fmt: skip
    return run_step(evaluate.main, argv, root)


@pytest.mark.parametrize("kind", EVAL_BREAKING + EVAL_HARMLESS)
@corpus_settings(examples=3)
@given(data=st.data())
def test_evaluate_scores_valid_test_sets_and_refuses_malformed_ones_clearly(
    model_dir: Path, kind: str, data: st.DataObject
) -> None:
    case = data.draw(eval_cases(kind))
    with workdir() as root:
        run = run_evaluate(model_dir, case.files, root)
        if case.breaking:
            assert_refused_clearly(run, ["test set", "challenger model"])
            assert not (root / "out" / contract.EVALUATION_FILE).exists()
        else:
            assert (run.code, run.reason) == (0, ""), case.kind
            report = strict_json(root / "out" / contract.EVALUATION_FILE)
            gate = report[contract.GATE_KEY]
            assert gate[contract.GATE_TEST_ROWS] == case.rows
            assert math.isfinite(gate[contract.GATE_CHALLENGER])


def labelled_test_set(*extra_rows: str, header: str = "is_fraud,f1,f2,f3") -> dict[str, bytes]:
    body = "".join(f"{i % 2},{i * 0.1},{i * 0.2},{i * 0.3}\n" for i in range(12))
    return {"test.csv": (header + "\n" + body + "".join(extra_rows)).encode()}


def model_dir_with(root: Path, files: dict[str, bytes]) -> Path:
    """A model directory holding `files` (name -> bytes) in place of a model."""
    directory = root / "model"
    directory.mkdir()
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


MALFORMED_MODELS = [
    pytest.param({"xgboost-model": b""}, id="empty-file"),
    pytest.param({"xgboost-model": b"\x00\x01garbage"}, id="garbage"),
    pytest.param({"xgboost-model": b'{"learner": 1}'}, id="json-not-a-model"),
    pytest.param("truncated", id="truncated-model"),
    pytest.param({"xgboost-model": pickle.dumps({"weights": [1, 2]})}, id="pickled-dict"),
    pytest.param({"a.bin": b"1", "b.bin": b"2"}, id="two-unnamed-files"),
    pytest.param({"model.tar.gz": b""}, id="empty-archive"),
    pytest.param({"model.tar.gz": b"\x1f\x8b\x08garbage"}, id="corrupt-gzip"),
    pytest.param(
        {"model.tar.gz": tar_gz({"notes.txt": b"x", "other.txt": b"y"})}, id="archive-without-model"
    ),  # fmt: skip
]


@pytest.mark.parametrize("files", MALFORMED_MODELS)
def test_evaluate_refuses_a_malformed_model_clearly(
    model_dir: Path, tmp_path: Path, files: Any
) -> None:
    if files == "truncated":
        trained = (model_dir / model_files.MODEL_FILE).read_bytes()
        files = {"xgboost-model": trained[: len(trained) // 2]}
    model = model_dir_with(tmp_path, files)
    run = run_evaluate(model, labelled_test_set(), tmp_path)
    assert_refused_clearly(run, ["challenger model", "model archive"])
    assert "\n" not in run.reason.strip()  # one line: no native stack trace below it


@pytest.mark.parametrize(
    "data", [b"", b"\x00\x01garbage", b'{"learner": 1}'], ids=["empty", "garbage", "json"]
)
def test_evaluate_names_a_model_file_xgboost_cannot_load_in_one_short_line(
    tmp_path: Path, data: bytes
) -> None:
    """The reason keeps XGBoost's first line only: its native backtrace filled most of the
    1 KB ExitMessage."""
    run = run_evaluate(model_dir_with(tmp_path, {"xgboost-model": data}), labelled_test_set(),
                       tmp_path)  # fmt: skip
    assert_refused_clearly(run)
    assert run.reason.startswith(
        "challenger model file xgboost-model is not an XGBoost model in JSON or UBJSON format: "
    )
    assert len(run.reason) < 400
    assert "libxgboost" not in run.reason
    assert not (tmp_path / "out" / contract.EVALUATION_FILE).exists()


@pytest.mark.parametrize("cell", ["inf", "-inf", "1e39"])
def test_evaluate_refuses_infinite_test_features_clearly(
    model_dir: Path, tmp_path: Path, cell: str
) -> None:
    """'1e39' is infinite once in float32, where XGBoost stores features."""
    run = run_evaluate(model_dir, labelled_test_set(f"1,{cell},0,0\n"), tmp_path)
    assert_refused_clearly(run, ["test set"])
    assert "column 'f1'" in run.reason
    assert "test.csv" in run.reason
    assert not (tmp_path / "out" / contract.EVALUATION_FILE).exists()


@pytest.mark.parametrize("header", ["is_fraud,f1,f1,f3", "is_fraud,f1,f2,is_fraud"])
def test_evaluate_refuses_duplicated_test_columns_clearly(
    model_dir: Path, tmp_path: Path, header: str
) -> None:
    run = run_evaluate(model_dir, labelled_test_set(header=header), tmp_path)
    assert_refused_clearly(run, ["test set"])
    assert "more than once" in run.reason
    assert "test.csv" in run.reason


def test_evaluate_refuses_a_latin1_test_set_naming_the_file(
    model_dir: Path, tmp_path: Path
) -> None:
    files = labelled_test_set(header="is_fraud,f1,f2,f3,note_é")
    files["test.csv"] = files["test.csv"].decode().encode("latin-1")
    run = run_evaluate(model_dir, files, tmp_path)
    assert_refused_clearly(run, ["test set"])
    assert "test.csv" in run.reason


def test_evaluate_scores_int_features_beyond_float32_precision(
    model_dir: Path, tmp_path: Path
) -> None:
    """Ints above 2**24 round in float32 as XGBoost stores them; pyarrow's checked cast
    refused them as 'Integer value ... not in range'."""
    body = "".join(f"{i % 2},{2**40 + i},{i * 0.2},{i * 0.3}\n" for i in range(12))
    run = run_evaluate(model_dir, {"test.csv": f"is_fraud,f1,f2,f3\n{body}".encode()}, tmp_path)
    assert (run.code, run.reason) == (0, "")
    report = strict_json(tmp_path / "out" / contract.EVALUATION_FILE)
    assert report[contract.GATE_KEY][contract.GATE_TEST_ROWS] == 12
