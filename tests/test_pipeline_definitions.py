"""The CDK app's cache of generated pipeline definitions (.build/pipelines/<env>/)."""

from __future__ import annotations

import os
from pathlib import Path

from stacks.pipeline_definitions import prune_generations


def test_pipeline_generations_are_pruned_to_the_newest(tmp_path: Path) -> None:
    generations = [tmp_path / f"gen{i}" for i in range(5)]
    for age, generation in enumerate(reversed(generations)):
        generation.mkdir()
        os.utime(generation, (1_000_000 - age, 1_000_000 - age))  # gen4 newest
    staging = tmp_path / "gen9.tmp-abc"  # another process's generation in progress
    staging.mkdir()
    prune_generations(tmp_path, generations[0], keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen0", "gen3", "gen4", "gen9.tmp-abc"]
