"""Check that a run's input directory holds exactly the objects its version manifest names.

The data-landing trigger writes, before it starts a run, the version manifest
`s3://<artifact bucket>/dataset-manifests/<DataDigest>.json` (format: the Lambda's
version_manifest.py): every data object of the dataset version with its size and the
identity of its bytes (a checksum algorithm and value). `verify_inputs(manifest, input_dir)`
compares that with the prefix as SageMaker downloaded it and returns a report, or raises
InputMismatch naming what differs: the manifest's own digest, the set of data files, a size
or a checksum.

Checksums recomputed here: SHA-256, SHA-512, SHA-1, MD5 (hashlib), CRC-32 (zlib),
CRC-32C and CRC-64/NVME (numpy, lane-parallel: see `Crc`). A composite checksum (multipart
upload) is checked part by part when the manifest records the part sizes, else the file is
checked by size only and the report says so; likewise for identities that are not a checksum
of the bytes (an upload's ETag) or that cannot be computed here (XXHASH). A SHA-256 stated
by the producer's manifest.json is checked too.

Runs inside the SageMaker XGBoost container, network-isolated: Python 3.10, numpy and the
standard library only. Files are read once, in blocks, whatever their size.

Usage: python verify_inputs.py --manifest M.json --input-dir DIR [--data-digest HEX]
(exit 1 with the reason on stderr when the inputs differ).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST_PREFIX = "dataset-manifests/"
DIGEST_FORMAT = 2
MANIFEST_NAME = "manifest.json"  # the producer's manifest at the version root: not data
READ_BLOCK = 16 * 1024 * 1024
# Below this many bytes a table lookup per byte beats numpy's per-call cost.
_MIN_LANES_INPUT = 4096
_REPORTED = 5


def manifest_key(data_digest: str) -> str:
    """Key of a run's version manifest in the artifact bucket."""
    return f"{MANIFEST_PREFIX}{data_digest}.json"


class InputMismatch(Exception):
    """The input directory is not what the run's version manifest names."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# ---- CRCs with numpy -----------------------------------------------------------------------


def _reflect_mult(a: int, b: int, poly: int, width: int) -> int:
    """a * b modulo the CRC polynomial, both in the reflected bit order CRCs use."""
    top = 1 << (width - 1)
    product = 0
    while a:
        if a & top:
            product ^= b
        a = (a << 1) & ((1 << width) - 1)
        b = (b >> 1) ^ poly if b & 1 else b >> 1
    return product


class Crc:
    """A reflected CRC (`width` 32 or 64 bits, reflected polynomial `poly`), lane-parallel.

    A block of `lanes` x `lane_bytes` bytes is cut into `lanes` contiguous pieces whose raw
    CRCs (register from 0) advance together, 8 bytes a step, with four 16-bit lookup tables;
    the pieces are then joined pairwise: crc(A + B) = shift(crc(A), len(B)) ^ crc(B), where
    shift is multiplication by x^(8 len) modulo the polynomial (a GF(2) linear map, applied
    with byte tables). Leading zero bytes leave a raw CRC unchanged, so short input is padded
    in front to a power of two.
    """

    def __init__(self, width: int, poly: int, init: int, xorout: int) -> None:
        self.width, self.poly, self.init, self.xorout = width, poly, init, xorout
        self.mask = (1 << width) - 1
        self.byte_table = [self._bytewise(i, 1) for i in range(256)]
        self._step = self._linear_tables(lambda v: self._raw_word(v), 16, 4)
        self._shifts: dict[int, np.ndarray] = {}
        # x^(2^k) modulo the polynomial, k = 0..66: enough for any shift by a byte count.
        self._x_powers = [1 << (width - 2)]
        for _ in range(66):
            last = self._x_powers[-1]
            self._x_powers.append(_reflect_mult(last, last, poly, width))

    # -- scalar pieces (table construction and short input) --

    def _bytewise(self, register: int, rounds: int) -> int:
        for _ in range(8 * rounds):
            register = (register >> 1) ^ self.poly if register & 1 else register >> 1
        return register

    def _raw_word(self, value: int) -> int:
        """Raw CRC (register from 0) of the 8 little-endian bytes of `value`."""
        register = 0
        for index in range(8):
            register = self.byte_table[(register ^ (value >> (8 * index))) & 0xFF] ^ (register >> 8)
        return register

    def shift(self, register: int, nbytes: int) -> int:
        """The register after `nbytes` zero bytes (multiplication by x^(8 nbytes))."""
        factor, bits, k = 1 << (self.width - 1), 8 * nbytes, 0
        while bits:
            if bits & 1:
                factor = _reflect_mult(factor, self._x_powers[k], self.poly, self.width)
            bits >>= 1
            k += 1
        return _reflect_mult(factor, register, self.poly, self.width)

    def _linear_tables(self, function: Callable[[int], int], bits: int, count: int) -> np.ndarray:
        """`count` tables of 2**bits entries: table j maps x to function(x << (bits * j)),
        for a GF(2)-linear `function` (built from its values on single bits)."""
        tables = np.zeros((count, 1 << bits), dtype=np.uint64)
        for j in range(count):
            for bit in range(bits):
                value = np.uint64(function(1 << (bits * j + bit)))
                low = 1 << bit
                tables[j, low : 2 * low] = tables[j, :low] ^ value
        return tables

    def _shift_tables(self, nbytes: int) -> np.ndarray:
        if nbytes not in self._shifts:
            self._shifts[nbytes] = self._linear_tables(
                lambda v: self.shift(v, nbytes), 8, self.width // 8
            )
        return self._shifts[nbytes]

    @staticmethod
    def _apply(tables: np.ndarray, values: np.ndarray, bits: int) -> np.ndarray:
        mask = np.uint64((1 << bits) - 1)
        result = np.zeros(values.shape, dtype=np.uint64)
        for j in range(tables.shape[0]):
            index = (values >> np.uint64(bits * j)) & mask
            result ^= tables[j][index.astype(np.intp)]
        return result

    # -- the lane-parallel raw CRC --

    def _raw_lanes(self, words: np.ndarray) -> np.ndarray:
        """Raw CRCs of `lanes` pieces; `words` is (steps, lanes) uint64, one row per step."""
        steps, lanes = words.shape
        register = np.zeros(lanes, dtype=np.uint64)
        value = np.empty(lanes, dtype=np.uint64)
        index = np.empty(lanes, dtype=np.uint64)
        looked_up = np.empty(lanes, dtype=np.uint64)
        mask, tables = np.uint64(0xFFFF), self._step
        shifts = [np.uint64(16 * j) for j in range(4)]
        for step in range(steps):
            np.bitwise_xor(register, words[step], out=value)
            np.bitwise_and(value, mask, out=index)
            np.take(tables[0], index.view(np.int64), out=register)
            for j in (1, 2, 3):
                np.right_shift(value, shifts[j], out=index)
                np.bitwise_and(index, mask, out=index)
                np.take(tables[j], index.view(np.int64), out=looked_up)
                np.bitwise_xor(register, looked_up, out=register)
        return register

    def raw(self, data: bytes | memoryview) -> int:
        """Raw CRC (register from 0, no final xor) of `data`."""
        size = len(data)
        if size < _MIN_LANES_INPUT:
            register = 0
            for byte in bytes(data):
                register = self.byte_table[(register ^ byte) & 0xFF] ^ (register >> 8)
            return register
        padded = 1 << (size - 1).bit_length()
        lanes = min(8192, padded // 512)
        lane_bytes = padded // lanes
        buffer = np.zeros(padded, dtype=np.uint8)
        buffer[padded - size :] = np.frombuffer(data, dtype=np.uint8)
        words = np.ascontiguousarray(buffer.view("<u8").reshape(lanes, lane_bytes // 8).T)
        crcs = self._raw_lanes(words)
        while crcs.size > 1:
            tables = self._shift_tables(lane_bytes)
            crcs = self._apply(tables, crcs[0::2], 8) ^ crcs[1::2]
            lane_bytes *= 2
        return int(crcs[0])

    def new(self) -> CrcState:
        return CrcState(self)

    def compute(self, data: bytes) -> int:
        state = self.new()
        state.update(data)
        return state.value()


class CrcState:
    """A running CRC: feed blocks with `update`, read the checksum with `value`."""

    def __init__(self, crc: Crc) -> None:
        self.crc, self.register = crc, crc.init

    def update(self, data: bytes | memoryview) -> None:
        """Feed `data`: the largest power-of-two pieces lane-parallel (no padding), the last
        few bytes one by one."""
        view, crc = memoryview(data).cast("B"), self.crc
        while len(view) >= _MIN_LANES_INPUT:
            piece = min(1 << (len(view).bit_length() - 1), READ_BLOCK)
            self.register = crc.shift(self.register, piece) ^ crc.raw(view[:piece])
            view = view[piece:]
        register, table = self.register, crc.byte_table
        for byte in bytes(view):
            register = table[(register ^ byte) & 0xFF] ^ (register >> 8)
        self.register = register

    def value(self) -> int:
        return self.register ^ self.crc.xorout


_CRC32C: Crc | None = None
_CRC64NVME: Crc | None = None


def crc32c() -> Crc:
    """CRC-32C (Castagnoli): check("123456789") = 0xE3069283."""
    global _CRC32C
    if _CRC32C is None:
        _CRC32C = Crc(32, 0x82F63B78, 0xFFFFFFFF, 0xFFFFFFFF)
    return _CRC32C


def crc64nvme() -> Crc:
    """CRC-64/NVME: check("123456789") = 0xAE8B14860A799888."""
    global _CRC64NVME
    if _CRC64NVME is None:
        _CRC64NVME = Crc(64, 0x9A6C9329AC4BC9B5, (1 << 64) - 1, (1 << 64) - 1)
    return _CRC64NVME


# ---- one digester interface over all algorithms ------------------------------------------


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


class _NumpyCrc:
    def __init__(self, crc: Crc) -> None:
        self.state = crc.new()
        self.size = crc.width // 8

    def update(self, data: bytes) -> None:
        self.state.update(data)

    def digest(self) -> bytes:
        return self.state.value().to_bytes(self.size, "big")


_DIGESTERS: dict[str, Callable[[], Any]] = {
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "sha1": hashlib.sha1,
    "md5": hashlib.md5,
    "crc32": _Crc32,
    "crc32c": lambda: _NumpyCrc(crc32c()),
    "crc64nvme": lambda: _NumpyCrc(crc64nvme()),
}
COMPOSITE = "-composite"


@dataclass
class FileCheck:
    """What was checked for one file: `method` names it, `note` says why a check was less."""

    key: str
    size: int
    method: str
    note: str = ""


@dataclass
class Report:
    """The verified input: files, bytes, seconds, and which files were checked by size only."""

    data_digest: str
    files: list[FileCheck] = field(default_factory=list)
    bytes_read: int = 0
    seconds: float = 0.0

    @property
    def size_only(self) -> list[FileCheck]:
        return [f for f in self.files if f.method == "size"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "data_digest": self.data_digest,
            "files": len(self.files),
            "bytes": self.bytes_read,
            "seconds": round(self.seconds, 3),
            "checked_by": sorted({f.method for f in self.files}),
            "size_only": [{"key": f.key, "why": f.note} for f in self.size_only],
        }


# ---- the check -----------------------------------------------------------------------------


def is_data_file(relative: str) -> bool:
    """The trigger's rule (dataset_completion.is_data_key): a file, not the producer's
    manifest.json at the version root, no name starting with `_` or `.`."""
    name = relative.rsplit("/", 1)[-1]
    return bool(name) and relative != MANIFEST_NAME and not name.startswith(("_", "."))


def _digest(lines: list[list[Any]]) -> str:
    text = "\n".join(
        json.dumps(line, ensure_ascii=False, separators=(",", ":"))
        for line in sorted(lines, key=lambda line: str(line[0]))
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_manifest(manifest: dict[str, Any], data_digest: str | None) -> str:
    """The manifest's data digest, after checking it describes its own files (format 2)."""
    if manifest.get("digest_format") != DIGEST_FORMAT or not isinstance(
        manifest.get("files"), list
    ):
        raise InputMismatch(
            "manifest-format",
            f"not a version manifest of digest format {DIGEST_FORMAT} "
            f"(digest_format={manifest.get('digest_format')!r})",
        )
    files = manifest["files"]
    described = _digest(
        [
            [f["key"], f["size"], f["identity"]["algorithm"], f["identity"]["value"],
             f["version_id"]]
            for f in files
        ]
    )  # fmt: skip
    stated = manifest.get("data_digest")
    if described != stated or (data_digest is not None and described != data_digest):
        raise InputMismatch(
            "manifest-digest",
            f"the version manifest describes data digest {described}, but it is named "
            f"{stated} and the run's DataDigest is {data_digest or stated}: it was altered",
        )
    return described


def local_files(input_dir: Path) -> dict[str, Path]:
    """Data files under `input_dir` by path relative to it (`/`-separated)."""
    found: dict[str, Path] = {}
    for root, _dirs, names in os.walk(input_dir):
        for name in names:
            path = Path(root, name)
            relative = path.relative_to(input_dir).as_posix()
            if is_data_file(relative):
                found[relative] = path
    return found


def _short(keys: list[str]) -> str:
    more = len(keys) - _REPORTED
    return ", ".join(repr(k) for k in keys[:_REPORTED]) + (f" and {more} more" if more > 0 else "")


def _check_file_set(files: list[dict[str, Any]], present: dict[str, Path]) -> None:
    listed = {f["key"] for f in files}
    missing = sorted(listed - set(present))
    unexpected = sorted(set(present) - listed)
    if missing or unexpected:
        raise InputMismatch(
            "file-set",
            f"the input differs from the version manifest: {len(missing)} file(s) missing "
            f"({_short(missing)}), {len(unexpected)} not in the manifest ({_short(unexpected)})",
        )
    wrong = [
        f"{f['key']} (manifest {f['size']}, found {present[f['key']].stat().st_size})"
        for f in files
        if present[f["key"]].stat().st_size != f["size"]
    ]
    if wrong:
        raise InputMismatch(
            "size", f"{len(wrong)} file(s) differ in size: {', '.join(wrong[:_REPORTED])}"
        )


@dataclass
class _Plan:
    """What to compute over one file: whole-file digesters and, for a composite checksum,
    one digester per part."""

    whole: dict[str, Any]
    expected: dict[str, str]
    parts: list[dict[str, Any]]
    part_algorithm: str
    method: str
    note: str = ""


def _plan(entry: dict[str, Any]) -> _Plan:
    algorithm, value = entry["identity"]["algorithm"], entry["identity"]["value"]
    plan = _Plan(whole={}, expected={}, parts=[], part_algorithm="", method="size")
    if algorithm in _DIGESTERS:
        plan.whole[algorithm], plan.expected[algorithm] = _DIGESTERS[algorithm](), value
        plan.method = algorithm
    elif algorithm.endswith(COMPOSITE) and algorithm[: -len(COMPOSITE)] in _DIGESTERS:
        if entry.get("parts"):
            plan.parts, plan.part_algorithm = entry["parts"], algorithm[: -len(COMPOSITE)]
            plan.method = f"{algorithm} ({len(plan.parts)} parts)"
        else:
            plan.note = "composite checksum without part sizes in the manifest"
    elif algorithm == "etag":
        plan.note = "identified by its upload's ETag, which is no checksum of the bytes"
    else:
        plan.note = f"{algorithm} cannot be computed here"
    stated = entry.get("stated_sha256")
    if stated and "sha256" not in plan.whole:
        plan.whole["sha256"], plan.expected["sha256"] = hashlib.sha256(), stated
        plan.method = "sha256" if plan.method == "size" else f"{plan.method} + stated sha256"
        plan.note = ""
    return plan


def _blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while block := stream.read(READ_BLOCK):
            yield block


def _check_file(path: Path, entry: dict[str, Any]) -> FileCheck:
    plan = _plan(entry)
    check = FileCheck(entry["key"], entry["size"], plan.method, plan.note)
    if not plan.whole and not plan.parts:
        return check
    part_digests: list[bytes] = []
    part_index, part_left = 0, plan.parts[0]["size"] if plan.parts else 0
    part: Any = _DIGESTERS[plan.part_algorithm]() if plan.parts else None
    for block in _blocks(path):
        for digester in plan.whole.values():
            digester.update(block)
        view = memoryview(block)
        while plan.parts and len(view):
            if part_index >= len(plan.parts):
                raise InputMismatch(
                    "checksum", f"{entry['key']} is longer than its {len(plan.parts)} parts"
                )
            take = min(part_left, len(view))
            part.update(view[:take])
            view, part_left = view[take:], part_left - take
            if part_left == 0:
                part_digests.append(part.digest())
                part_index += 1
                if part_index < len(plan.parts):
                    part = _DIGESTERS[plan.part_algorithm]()
                    part_left = plan.parts[part_index]["size"]
    wrong = [
        name
        for name, digester in plan.whole.items()
        if digester.digest().hex() != plan.expected[name]
    ]
    if plan.parts:
        wrong += _composite_mismatches(entry, plan, part_digests)
    if wrong:
        raise InputMismatch(
            "checksum",
            f"{entry['key']} does not have the bytes its version manifest names "
            f"({', '.join(wrong)} differ): it changed after the version completed",
        )
    return check


def _composite_mismatches(
    entry: dict[str, Any], plan: _Plan, part_digests: list[bytes]
) -> list[str]:
    """Parts whose checksum differs, and the composite itself (checksum of the checksums)."""
    if len(part_digests) != len(plan.parts):
        return [f"part count ({len(part_digests)} of {len(plan.parts)} parts read)"]
    wrong = [
        f"part {number}"
        for number, (digest, part) in enumerate(zip(part_digests, plan.parts, strict=True), start=1)
        if digest.hex() != part["checksum"]
    ]
    composite = _DIGESTERS[plan.part_algorithm]()
    composite.update(b"".join(part_digests))
    value, _, count = entry["identity"]["value"].partition("-")
    if composite.digest().hex() != value or (count and int(count) != len(plan.parts)):
        wrong.append("composite checksum")
    return wrong


def verify_inputs(
    manifest: dict[str, Any], input_dir: str | Path, *, data_digest: str | None = None
) -> Report:
    """Check `input_dir` (the version prefix as downloaded) against a version manifest.

    `data_digest`: the run's DataDigest, if known (the manifest must describe it). Returns a
    Report; raises InputMismatch (`reason`: manifest-format, manifest-digest, file-set,
    size, checksum) with a message naming the files.
    """
    started = time.perf_counter()
    report = Report(_check_manifest(manifest, data_digest))
    files = sorted(manifest["files"], key=lambda f: f["key"])
    present = local_files(Path(input_dir))
    _check_file_set(files, present)
    for entry in files:
        report.files.append(_check_file(present[entry["key"]], entry))
        report.bytes_read += entry["size"]
    report.seconds = time.perf_counter() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True, type=Path, help="version manifest JSON")
    parser.add_argument("--input-dir", required=True, type=Path, help="the downloaded prefix")
    parser.add_argument("--data-digest", default=None, help="the run's DataDigest")
    args = parser.parse_args(argv)
    try:
        manifest = json.loads(args.manifest.read_text("utf-8"))
        report = verify_inputs(manifest, args.input_dir, data_digest=args.data_digest)
    except InputMismatch as mismatch:
        print(f"inputs differ ({mismatch.reason}): {mismatch.message}", file=sys.stderr)
        return 1
    print(json.dumps(report.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
