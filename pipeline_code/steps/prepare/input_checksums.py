"""Checksums of file bytes, computed in blocks: every algorithm a version manifest can name.

SHA-256, SHA-512, SHA-1, MD5 (hashlib), CRC-32 (zlib), CRC-32C and CRC-64/NVME (numpy,
lane-parallel: see `Crc`). `DIGESTERS` maps the manifest's algorithm names to a factory of
objects with `update(bytes)` and `digest() -> bytes` (big-endian for the CRCs, as S3 states
them). numpy and the standard library only: it runs in the network-isolated Prepare job.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

READ_BLOCK = 16 * 1024 * 1024
# Below this many bytes a table lookup per byte beats numpy's per-call cost.
_MIN_LANES_INPUT = 4096

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


DIGESTERS: dict[str, Callable[[], Any]] = {
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "sha1": hashlib.sha1,
    "md5": hashlib.md5,
    "crc32": _Crc32,
    "crc32c": lambda: _NumpyCrc(crc32c()),
    "crc64nvme": lambda: _NumpyCrc(crc64nvme()),
}
