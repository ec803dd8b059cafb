"""Generator runs shared by the pipeline definition tests (once per session)."""

from __future__ import annotations

from typing import Any

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from tests.pipeline.generated import Run, Runs, generate_runs


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of the generator runs on one xdist worker (`--dist loadgroup`): otherwise
    both workers ran the four generator processes (~25 CPU-s) for the tests they were given."""
    for item in items:
        if "runs" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("pipeline_runs"))


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """The four generator runs (baseline, elsewhere, variant, model_monitor), in parallel."""
    return generate_runs(tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="session")
def baseline(runs: Runs) -> Run:
    assert runs.baseline.returncode == 0, runs.baseline.stderr
    return runs.baseline


@pytest.fixture(scope="session")
def model_monitor(runs: Runs) -> Run:
    """The run with ``monitoring_engine="model-monitor"``."""
    assert runs.model_monitor.returncode == 0, runs.model_monitor.stderr
    return runs.model_monitor


@pytest.fixture()
def snapshot_json(snapshot: Any) -> Any:
    return snapshot.use_extension(JSONSnapshotExtension)
