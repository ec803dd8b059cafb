"""common/stable_split.py and prepare's split: a row's split depends on the row alone.

The hash is checked against a pure-Python reference written from the module's specification
(SplitMix64's finaliser, BLAKE2b tags), not against the vectorised code.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline_code.steps import load
from tests.steps import FEATURES, SCHEMA_JSON, TARGET, small_frame, write

stable_split = load("common", "stable_split")
prepare = load("prepare")
step_failure = load("common", "failure")

MASK = (1 << 64) - 1


def reference_mix(z: int) -> int:
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & MASK
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def reference_tag(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def reference_content_u(row: dict[str, float], seed: int) -> float:
    h = reference_tag(f"seed:{seed}")
    for name in sorted(row):
        value = 0.0 if row[name] == 0 else row[name]
        bits = 0x7FF8000000000000 if value != value else int(np.float64(value).view(np.uint64))
        h = reference_mix(h ^ reference_mix(bits ^ reference_tag(name)))
    return (h >> 11) / 2**53


def test_the_content_hash_is_the_specified_one() -> None:
    rows = [
        {"a": 1.5, "b": -0.0, "c": float("nan")},
        {"a": 0.0, "b": 2.0**60, "c": -3.25},
        {"a": 1e-300, "b": 7.0, "c": 0.1},
    ]
    columns = {name: np.array([r[name] for r in rows]) for name in ("c", "a", "b")}
    u = stable_split.unit(stable_split.content_hash(columns, ["b", "c", "a"], seed=42))
    assert u.tolist() == [reference_content_u(r, 42) for r in rows]


def test_the_id_hash_is_the_specified_one() -> None:
    ids = ["txn-1", " txn-1 ", "123", "123.0", "1.23e2", "007", "1.5", "a,b"]
    u = stable_split.unit(stable_split.id_hash(ids, seed=7))
    canonical = ["txn-1", "txn-1", "123", "123", "123", "7", "1.5", "a,b"]
    expected = [
        (reference_mix(reference_tag("seed:7") ^ reference_tag(c)) >> 11) / 2**53 for c in canonical
    ]
    assert u.tolist() == expected
    assert u[0] == u[1] and u[2] == u[3] == u[4]


def test_assignment_follows_the_fractions_and_is_uniform() -> None:
    u = stable_split.unit(stable_split.id_hash([f"row-{i}" for i in range(200_000)], seed=42))
    split = stable_split.assign(u, 0.15, 0.2)
    shares = np.bincount(split, minlength=3) / u.size
    assert shares == pytest.approx([0.65, 0.15, 0.20], abs=0.004)
    assert split[u < 0.2].tolist() == [2] * int((u < 0.2).sum())


def test_a_rows_split_ignores_formatting_column_order_and_other_rows(tmp_path: Path) -> None:
    frame = small_frame(3000, seed=5)
    text_a = frame.to_csv(index=False, float_format="%.6f")
    text_b = frame[list(reversed(frame.columns))].to_csv(index=False, float_format="%.10g")
    hashes = []
    for text, rows in ((text_a, slice(None)), (text_b, slice(1000, None))):
        read = pd.read_csv(io.StringIO(text)).iloc[rows]
        columns = {c: read[c].to_numpy(np.float64) for c in FEATURES}
        hashes.append(stable_split.content_hash(columns, FEATURES, seed=42))
    assert np.array_equal(hashes[0][1000:], hashes[1])


def test_the_time_rule_cuts_at_quantiles_and_places_later_rows() -> None:
    times = np.arange(1000, dtype=np.float64)
    validation_from, test_from = stable_split.time_cutoffs(times, 0.15, 0.15)
    assert (validation_from, test_from) == (700.0, 850.0)
    rule = stable_split.time_rule("ts", 0.15, 0.15, validation_from, test_from, "number")
    later = stable_split.apply_rule(rule, {}, times=np.array([10.0, 700.0, 849.0, 5000.0]))
    assert later.tolist() == [0, 1, 1, 2]


def test_the_summary_round_trips_every_rule() -> None:
    rules = [
        stable_split.hash_rule(42, 0.15, 0.2, key_columns=["b", "a"]),
        stable_split.hash_rule(7, 0.1, 0.1, id_column="txn_id"),
        stable_split.time_rule("ts", 0.15, 0.15, 1.7e9, 1.71e9 + 0.25, "datetime"),
    ]
    for rule in rules:
        text = stable_split.summary(rule)
        assert len(text) <= 256
        assert stable_split.parse_summary(text, ["a", "b"]) == rule
    with pytest.raises(stable_split.SplitRuleError, match="unknown method 'random'"):
        stable_split.parse_summary("random seed=1 validation=0.1 test=0.1", [])
    with pytest.raises(stable_split.SplitRuleError, match="not readable"):
        stable_split.parse_summary("hash-v1 key=content", [])


def test_time_rules_are_never_the_same_rule() -> None:
    rule = stable_split.time_rule("ts", 0.15, 0.15, 1.0, 2.0, "number")
    assert not stable_split.same_rule(rule, dict(rule))
    content = stable_split.hash_rule(42, 0.15, 0.15, key_columns=["a"])
    assert stable_split.same_rule(content, dict(content))
    assert not stable_split.same_rule(content, {**content, "seed": 43})


# ---- prepare.py ----------------------------------------------------------------------------


def run_prepare(tmp_path: Path, frame: pd.DataFrame, *extra: str, name: str = "out") -> Path:
    write(frame, tmp_path / name / "in" / "data.csv")
    out = tmp_path / name / "out"
    args = ["--input-dir", str(tmp_path / name / "in"), "--output-dir", str(out)]
    assert prepare.main([*args, "--schema", SCHEMA_JSON, *extra]) == 0
    return out


def split_keys(out: Path, split: str) -> set[tuple[float, ...]]:
    frame = pd.read_csv(out / split / f"{split}.csv")
    return set(map(tuple, frame[FEATURES].round(9).fillna(-1).to_numpy()))


def test_a_row_keeps_its_split_when_a_later_version_adds_rows(tmp_path: Path) -> None:
    v1 = small_frame(4000, seed=21)
    v2 = pd.concat([small_frame(3000, seed=22), v1.sample(frac=1.0, random_state=0)])
    first, second = run_prepare(tmp_path, v1, name="v1"), run_prepare(tmp_path, v2, name="v2")
    for split in ("train", "validation", "test"):
        assert split_keys(first, split) <= split_keys(second, split)
    rule = json.loads((second / "report" / "split_report.json").read_text())["split_rule"]
    assert rule == {
        "method": "hash-v1",
        "seed": 42,
        "key": "content",
        "key_columns": sorted(FEATURES),
        "validation_fraction": 0.15,
        "test_fraction": 0.15,
    }


def test_duplicate_feature_rows_share_a_split_whatever_their_label(tmp_path: Path) -> None:
    frame = small_frame(3000, seed=23)
    copies = frame.head(300).copy()
    copies[TARGET] = 1 - copies[TARGET]
    out = run_prepare(tmp_path, pd.concat([frame, copies]))
    train, test = split_keys(out, "train"), split_keys(out, "test")
    assert not train & test


def test_an_id_column_keys_the_split_and_travels_with_the_test_rows(tmp_path: Path) -> None:
    frame = small_frame(3000, seed=24)
    frame.insert(0, "txn_id", [f"t{i:05d}" for i in range(len(frame))])
    out = run_prepare(tmp_path, frame, "--id-column", "txn_id")
    test = pd.read_csv(out / "test" / "test.csv", dtype={"txn_id": str})
    assert list(test.columns) == [TARGET, *FEATURES, "txn_id"]
    u = stable_split.unit(stable_split.id_hash(test["txn_id"].tolist(), 42))
    assert (u < 0.15).all()
    assert "txn_id" not in pd.read_csv(out / "train" / "train.csv").columns
    record = json.loads((out / "train" / "training_data.json").read_text())
    assert record["split_rule"]["id_column"] == "txn_id"


def test_a_time_column_trains_on_the_past_and_tests_on_the_future(tmp_path: Path) -> None:
    frame = small_frame(3000, seed=25)
    stamps = pd.date_range("2026-01-01", periods=len(frame), freq="min", tz="UTC")
    frame.insert(0, "event_time", stamps.strftime("%Y-%m-%dT%H:%M:%SZ"))
    out = run_prepare(
        tmp_path, frame.sample(frac=1.0, random_state=1), "--time-column", "event_time"
    )
    rule = json.loads((out / "report" / "split_report.json").read_text())["split_rule"]
    assert rule["method"] == "time" and rule["time_kind"] == "datetime"
    test_times = pd.read_csv(out / "test" / "test.csv")["event_time"]
    assert test_times.min() >= rule["test_from"] > rule["validation_from"]
    assert rule["test_from"] == pytest.approx(stamps[int(0.85 * len(frame))].timestamp())


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--id-column", "amount"], "--id-column 'amount' is the target or a feature"),
        (["--id-column", "a", "--time-column", "b"], "give at most one"),
        (["--id-column", "txn_id"], "missing the split's key column(s) 'txn_id'"),
        (["--time-column", "hour2"], "missing the split's key column(s) 'hour2'"),
    ],
)
def test_bad_key_columns_fail_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str], fragment: str
) -> None:
    failure = tmp_path / "message"
    monkeypatch.setenv(step_failure.FAILURE_FILE_ENV, str(failure))
    write(small_frame(600, seed=26), tmp_path / "in" / "data.csv")
    args = ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")]
    assert prepare.main([*args, "--schema", SCHEMA_JSON, *extra]) == 1
    assert fragment in failure.read_text()


def test_unreadable_times_and_missing_ids_fail_naming_the_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failure = tmp_path / "message"
    monkeypatch.setenv(step_failure.FAILURE_FILE_ENV, str(failure))
    frame = small_frame(600, seed=27)
    frame.insert(0, "when", ["2026-01-01"] * 599 + ["yesterday"])
    frame.insert(0, "txn_id", ["x"] * 599 + [""])
    write(frame, tmp_path / "in" / "data.csv")
    args = ["--input-dir", str(tmp_path / "in"), "--output-dir", str(tmp_path / "out")]
    assert prepare.main([*args, "--schema", SCHEMA_JSON, "--time-column", "when"]) == 1
    assert "'yesterday' in row 600" in failure.read_text()
    assert prepare.main([*args, "--schema", SCHEMA_JSON, "--id-column", "txn_id"]) == 1
    assert "id column 'txn_id' has 1 missing value(s) (row 600)" in failure.read_text()
