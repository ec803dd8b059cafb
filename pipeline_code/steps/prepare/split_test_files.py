"""The sharded Prepare's test split as parts: test/test.csv cut into one file per processing
instance (`test-00000.csv`, ...; each with the header, rows in order), so that EvaluateShards'
ShardedByS3Key input gives every instance a share of the rows to predict. Reading the files in
name order gives back test.csv's rows in its order (Evaluate reads them so)."""

from __future__ import annotations

import logging
from pathlib import Path

LOG = logging.getLogger("prepare")
TEST_PART = "test-{:05d}.csv"


def part_rows(rows: int, parts: int) -> list[int]:
    """Rows of each part: as even as possible, the first parts one row longer; never an
    empty part (fewer parts when there are fewer rows)."""
    parts = max(1, min(parts, rows))
    return [rows // parts + (1 if k < rows % parts else 0) for k in range(parts)]


def split_test_file(path: Path, rows: int, parts: int) -> list[Path]:
    """Cut the CSV file `path` (a header line, then `rows` rows) into `parts` files beside it,
    streamed line by line, and remove it; returns the files. With one part, or when a row spans
    lines (a quoted line break in a category value), the file is left as it is."""
    if parts <= 1 or rows <= 1:
        return [path]
    written: list[Path] = []
    with path.open("rb") as source:
        header = source.readline()
        for number, count in enumerate(part_rows(rows, parts)):
            written.append(path.with_name(TEST_PART.format(number)))
            with written[-1].open("wb") as sink:
                sink.write(header)
                for _ in range(count):
                    line = source.readline()
                    if not line.endswith(b"\n") or line.count(b'"') % 2:
                        return _kept(path, written)
                    sink.write(line)
        if source.readline():
            return _kept(path, written)
    path.unlink()
    return written


def _kept(path: Path, written: list[Path]) -> list[Path]:
    for part in written:
        part.unlink()
    LOG.warning(
        "%s: a row spans lines (a quoted line break); the test split stays one file", path.name
    )
    return [path]
