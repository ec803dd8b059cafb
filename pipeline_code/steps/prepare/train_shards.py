"""The train split as shards, for training on several instances: with `--train-shards N`
(N > 1) Prepare writes `train/shards/part-00000.csv` ... `part-<N-1>.csv` instead of
`train/train.csv`, each with the header, and the training channel feeds them
`ShardedByS3Key`: SageMaker gives each instance "approximately 1/n" of the files, so a host
may receive none (it then trains with no rows of its own, see train/training_cluster).

Rows are dealt out in turn (row i of the split to shard i mod N), so every shard holds about
the same number of rows and of each class, and a time-ordered split still gives each shard
rows of every period. Each shard gets at least one row, or Prepare stops.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

SHARDS_DIR = "shards"
MAX_SHARDS = 1000


class ShardingError(ValueError):
    """The train split cannot be cut into the asked number of shards."""


def shard_file(output_dir: Path, shard: int) -> Path:
    return output_dir / "train" / SHARDS_DIR / f"part-{shard:05d}.csv"


def check_shards(shards: int) -> None:
    if not 1 <= shards <= MAX_SHARDS:
        raise ShardingError(f"--train-shards {shards}: expected 1 to {MAX_SHARDS}")


def shard_rows(index: np.ndarray, shards: int) -> list[np.ndarray]:
    """The rows of `index` dealt out to `shards` shards in turn."""
    check_shards(shards)
    if index.size < shards:
        raise ShardingError(
            f"the train split has {index.size} rows, fewer than the {shards} shards (one per "
            "training instance or more) it must be cut into"
        )
    return [index[shard::shards] for shard in range(shards)]


def write_shards(
    output_dir: Path,
    index: np.ndarray,
    shards: int,
    columns_of: Callable[[np.ndarray], dict[str, pa.Array]],
    write_csv: Callable[[Path, dict[str, pa.Array]], None],
) -> list[int]:
    """Write the shards of the train rows `index`; returns the rows of each shard."""
    parts = shard_rows(index, shards)
    for shard, rows in enumerate(parts):
        write_csv(shard_file(output_dir, shard), columns_of(rows))
    return [int(rows.size) for rows in parts]
