"""Which split a row belongs to, decided by the row alone: a stable hash of its identity, or its
time. Prepare assigns the splits with it; Evaluate recomputes a champion's recorded rule to know
which test rows that champion trained on.

Hash rule `hash-v1` (portable: 64-bit unsigned arithmetic, a few lines in any language):

    mix(z)  SplitMix64's finaliser: z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
            z *= 0x94D049BB133111EB; z ^= z >> 31            (all mod 2**64)
    tag(s)  the 8-byte BLAKE2b digest of the UTF-8 text s, read big-endian
    key     content: h = tag("seed:<seed>"); for each key column c in sorted name order,
                     h = mix(h ^ mix(bits(value of c) ^ tag(c)))
                     bits = the IEEE 754 float64 bits of the value as Prepare parses it (bools
                     0/1, -0.0 as 0.0, every missing value as 0x7FF8000000000000), so "1.5",
                     "1.50" and "15e-1" are one value and the file's column order is irrelevant;
                     a category feature's bits are tag(its canonical text), see
                     common.categories (missing: 0x7FF8000000000000 too)
            id:      h = mix(tag("seed:<seed>") ^ tag(canonical id)); the canonical id is the
                     text without surrounding blanks, and a whole number written as one
                     ("123", "123.0", "1.23e2") is its integer's digits
    u       (h >> 11) / 2**53, uniform on [0, 1)
    split   test if u < test_fraction; validation if u < test_fraction + validation_fraction;
            train otherwise

The target is never part of the key: a relabelled row keeps its split, and duplicate feature
rows share one (no copy of a test row can sit in train). Time rule `time`: the oldest rows
train, the newest test, cut at the time quantiles 1 - validation - test and 1 - test; the
cut-offs are recorded, so any later row can be placed against them.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

HASH_METHOD = "hash-v1"
TIME_METHOD = "time"
SPLITS = ("train", "validation", "test")
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
MISSING_BITS = np.uint64(0x7FF8000000000000)
_INT_TEXT = re.compile(r"^[+-]?\d+$")


class SplitRuleError(ValueError):
    """A split rule that cannot be read or applied; the message says which part and why."""


def mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, element-wise on uint64 (wrapping arithmetic)."""
    z = np.array(z, dtype=np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= _C1
        z ^= z >> np.uint64(27)
        z *= _C2
        z ^= z >> np.uint64(31)
    return z


def tag(text: str) -> np.uint64:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "big"))


def float_bits(values: np.ndarray) -> np.ndarray:
    """float64 bit patterns; -0.0 counts as 0.0 and every NaN (missing) as one pattern."""
    v = np.asarray(values, dtype=np.float64)
    v = np.where(v == 0.0, 0.0, v)
    bits = v.view(np.uint64).copy()
    bits[np.isnan(v)] = MISSING_BITS
    return bits


def content_hash(
    columns: Mapping[str, np.ndarray], key_columns: Sequence[str], seed: int
) -> np.ndarray:
    """hash-v1 of each row's values in `key_columns` (taken in sorted name order)."""
    rows = len(next(iter(columns.values()))) if columns else 0
    h = np.full(rows, tag(f"seed:{seed}"), dtype=np.uint64)
    for name in sorted(key_columns):
        h = mix(h ^ mix(value_bits(columns[name]) ^ tag(name)))
    return h


def value_bits(values: np.ndarray) -> np.ndarray:
    """A key column's bits: float64 bits of numbers, tag() of category text (object arrays)."""
    if values.dtype != object:
        return float_bits(values)
    tags: dict[str, np.uint64] = {}
    bits = np.empty(values.size, dtype=np.uint64)
    for i, value in enumerate(values):
        if value is None:
            bits[i] = MISSING_BITS
        else:
            if value not in tags:
                tags[value] = tag(value)
            bits[i] = tags[value]
    return bits


def canonical_id(value: Any) -> str:
    """An id as hash-v1 reads it: stripped text; a whole number as its integer's digits."""
    text = str(value).strip()
    if _INT_TEXT.match(text):
        return str(int(text))
    try:
        number = float(text)
    except ValueError:
        return text
    if math.isfinite(number) and number == math.floor(number):
        return str(int(number))
    return text


def id_hash(ids: Sequence[Any], seed: int) -> np.ndarray:
    """hash-v1 of each row's id (see :func:`canonical_id`)."""
    digests = b"".join(
        hashlib.blake2b(canonical_id(v).encode("utf-8"), digest_size=8).digest() for v in ids
    )
    keys = np.frombuffer(digests, dtype=">u8").astype(np.uint64)
    return mix(tag(f"seed:{seed}") ^ keys)


def unit(h: np.ndarray) -> np.ndarray:
    """The top 53 bits of a hash as a float in [0, 1)."""
    return (h >> np.uint64(11)).astype(np.float64) / 2.0**53


def assign(u: np.ndarray, validation_fraction: float, test_fraction: float) -> np.ndarray:
    """Split index per row (0 train, 1 validation, 2 test) from its uniform value."""
    split = np.zeros(u.size, dtype=np.int8)
    split[u < test_fraction + validation_fraction] = 1
    split[u < test_fraction] = 2
    return split


def time_cutoffs(
    times: np.ndarray, validation_fraction: float, test_fraction: float
) -> tuple[float, float]:
    """(validation_from, test_from): the time quantiles the time rule cuts at."""
    validation_from = float(
        np.quantile(times, 1 - validation_fraction - test_fraction, method="higher")
    )
    test_from = float(np.quantile(times, 1 - test_fraction, method="higher"))
    return validation_from, test_from


def assign_by_time(times: np.ndarray, validation_from: float, test_from: float) -> np.ndarray:
    split = np.zeros(times.size, dtype=np.int8)
    split[times >= validation_from] = 1
    split[times >= test_from] = 2
    return split


def hash_rule(
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    *,
    id_column: str | None = None,
    key_columns: Sequence[str] = (),
) -> dict[str, Any]:
    """The record of a hash-v1 split (what the model package carries)."""
    rule: dict[str, Any] = {"method": HASH_METHOD, "seed": int(seed)}
    if id_column:
        rule.update(key="id", id_column=id_column)
    else:
        rule.update(key="content", key_columns=sorted(key_columns))
    rule.update(validation_fraction=float(validation_fraction), test_fraction=float(test_fraction))
    return rule


def time_rule(
    column: str,
    validation_fraction: float,
    test_fraction: float,
    validation_from: float,
    test_from: float,
    time_kind: str,
) -> dict[str, Any]:
    """The record of a time split; `time_kind` is `number` or `datetime` (seconds since
    1970-01-01 UTC)."""
    return {
        "method": TIME_METHOD,
        "time_column": column,
        "time_kind": time_kind,
        "validation_fraction": float(validation_fraction),
        "test_fraction": float(test_fraction),
        "validation_from": float(validation_from),
        "test_from": float(test_from),
    }


def summary(rule: Mapping[str, Any]) -> str:
    """The rule in one line (the registry's `split_rule`, at most 256 characters); content keys
    leave out their columns, which are the model's features. :func:`parse_summary` reads it."""
    fractions = f"validation={rule['validation_fraction']!r} test={rule['test_fraction']!r}"
    if rule["method"] == TIME_METHOD:
        return (
            f"time column={rule['time_column']} kind={rule['time_kind']} {fractions} "
            f"validation_from={rule['validation_from']!r} test_from={rule['test_from']!r}"
        )
    key = f"id={rule['id_column']}" if rule["key"] == "id" else "key=content"
    return f"{HASH_METHOD} {key} seed={rule['seed']} {fractions}"


def parse_summary(text: str, feature_names: Sequence[str]) -> dict[str, Any]:
    """A rule from its :func:`summary`; a content key's columns are `feature_names`."""
    method, *pairs = text.split()
    try:
        fields = dict(pair.split("=", 1) for pair in pairs)
        fractions = (float(fields["validation"]), float(fields["test"]))
        if method == TIME_METHOD:
            return time_rule(
                fields["column"],
                *fractions,
                float(fields["validation_from"]),
                float(fields["test_from"]),
                fields["kind"],
            )
        if method == HASH_METHOD:
            return hash_rule(
                int(fields["seed"]),
                *fractions,
                id_column=fields.get("id"),
                key_columns=feature_names,
            )
    except (KeyError, ValueError) as error:
        raise SplitRuleError(f"split rule {text!r} is not readable: {error}") from error
    raise SplitRuleError(f"split rule {text!r}: unknown method {method!r}")


def same_rule(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two records put every row in the same split. Time rules never count as the
    same: their cut-offs follow each version's data."""
    return a.get("method") == HASH_METHOD and dict(a) == dict(b)


def apply_rule(
    rule: Mapping[str, Any],
    columns: Mapping[str, np.ndarray],
    ids: Sequence[Any] | None = None,
    times: np.ndarray | None = None,
) -> np.ndarray:
    """The split (0 train, 1 validation, 2 test) `rule` gives each row.

    Args:
        columns: feature values by name (float64, NaN = missing), for content keys.
        ids: the rule's id column values, for id keys.
        times: the rule's time column values (its `time_kind`), for time rules.

    Raises:
        SplitRuleError: the rows lack what the rule needs, or the rule is not one of ours.
    """
    method = rule.get("method")
    if method == TIME_METHOD:
        if times is None:
            raise SplitRuleError(f"the rows have no time column {rule.get('time_column')!r}")
        return assign_by_time(
            np.asarray(times, dtype=np.float64), rule["validation_from"], rule["test_from"]
        )
    if method != HASH_METHOD:
        raise SplitRuleError(f"split method {method!r} is not one of {HASH_METHOD}, {TIME_METHOD}")
    if rule.get("key") == "id":
        if ids is None:
            raise SplitRuleError(f"the rows have no id column {rule.get('id_column')!r}")
        h = id_hash(ids, rule["seed"])
    else:
        missing = [c for c in rule.get("key_columns", []) if c not in columns]
        if missing or not rule.get("key_columns"):
            raise SplitRuleError(f"the rows lack the key column(s) {missing or 'of the rule'}")
        h = content_hash(columns, rule["key_columns"], rule["seed"])
    return assign(unit(h), rule["validation_fraction"], rule["test_fraction"])
