"""`make local-run` logs each execution as one MLflow run in a local store, through the run
tracker's own logger: read back with mlflow's client, the run carries the execution's
parameters, the evaluation's metrics and gate, the split report, the plots and the package;
logging it again adds nothing; a store that cannot be written leaves the run's outcome alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline_code.local_pipeline import cli
from pipeline_code.local_pipeline.bucket import LocalS3
from pipeline_code.local_tracking import log_local_run, store_uri
from tests.local_pipeline.conftest import Baseline

pytestmark = pytest.mark.xdist_group("local_pipeline")


def test_a_local_execution_is_one_run_in_the_local_store(
    baseline: Baseline, tmp_path: Path
) -> None:
    store = tmp_path / "mlruns"
    result, s3 = baseline.run.result, LocalS3(baseline.workdir / "s3")
    line = log_local_run(result, s3, baseline.names.region, store)
    assert f"mlflow ui --backend-store-uri {store_uri(store)}" in line
    log_local_run(result, s3, baseline.names.region, store)  # again: nothing more

    reader = MlflowClient(tracking_uri=store_uri(store))
    experiment = reader.get_experiment_by_name(result.pipeline)
    assert experiment is not None
    (run,) = reader.search_runs([experiment.experiment_id])
    assert run.info.run_name == result.execution_id
    assert run.data.params["NumRound"] == str(result.parameters["NumRound"])
    assert run.data.tags["mlops.dataset_version"] == str(result.parameters["DatasetVersion"])
    gate = result.property_files["Evaluate.EvaluationReport"]["gate"]
    assert run.data.tags["mlops.gate_decision"] == gate["decision"]
    assert run.data.metrics["challenger.auc"] == pytest.approx(gate["challenger"])
    assert run.data.metrics["split.rows"] > 0
    assert {"mlops.code.Prepare", "mlops.code.Train", "mlops.code.Evaluate"} <= set(run.data.tags)
    registered = (result.properties.get("Register") or {}).get("ModelPackageArn")
    assert run.data.tags.get("mlops.model_package_arn") == registered
    plots = {a.path for a in reader.list_artifacts(run.info.run_id, "plots")}
    assert "plots/roc.png" in plots


def test_a_store_that_cannot_be_written_leaves_the_run_as_it_is(
    baseline: Baseline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store should be")
    cli._track(baseline.run, baseline.names.region, baseline.workdir, blocked)
    assert "note: the run was not logged to MLflow" in capsys.readouterr().out
