"""Run tracker artifacts and requests: s3:// artifacts (a managed server's store, moto; its
errors are TrackingErrors counted as TrackingFailures), none copied to an external server (links
to our bucket instead), and log-batch requests within MLflow's limits. Shares the world of
test_track_runs.py (a real local MLflow server, Stubber-checked SageMaker, moto S3)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from mlflow.tracking import MlflowClient as Reader

from tests.lambda_loader import emf_documents
from tests.lambdas.test_track_runs import (
    BUCKET,
    PACKAGE_ARN,
    REGION,
    S3_PIPELINE,
    client,
    execution_arn,
    logger_module,
    reader,
    record,
    rest,
    run_handler,
    status_event,
    world,
)
from tests.mlflow_server import mlflow_server
from tests.tracking_world import evaluation, put_outputs, queue_execution_reads

pytestmark = [pytest.mark.usefixtures("aws_credentials"), pytest.mark.xdist_group("mlflow")]
__all__ = ["client", "mlflow_server", "reader", "world"]


# --- artifacts: s3:// (a managed server's store), and none copied to an external server ------


def s3_store_execution(client: Any, store: str, execution_id: str) -> str:
    """An execution of S3_PIPELINE, whose experiment keeps its artifacts under `store`."""
    try:
        client._call(
            "POST", "experiments/create", {"name": S3_PIPELINE, "artifact_location": store}
        )
    except rest.TrackingError as error:
        assert "RESOURCE_ALREADY_EXISTS" in str(error)
    return execution_arn(S3_PIPELINE, execution_id)


def test_s3_artifacts_are_written_to_the_runs_artifact_uri(
    world: tuple[Any, Any], client: Any, reader: Reader
) -> None:
    _, s3 = world
    s3.create_bucket(Bucket="store", CreateBucketConfiguration={"LocationConstraint": REGION})
    arn = s3_store_execution(client, "s3://store/mlflow", "s3ok1")
    s3_client = rest.MlflowClient(client.server, s3=s3)
    logged = logger_module.log_execution(
        s3_client, record(pipeline_name=S3_PIPELINE, execution_arn=arn)
    )
    uri = reader.get_run(logged.run_id).info.artifact_uri
    assert uri.startswith("s3://store/mlflow/")
    key = f"{uri.removeprefix('s3://store/')}/plots/roc.png"
    assert s3.get_object(Bucket="store", Key=key)["Body"].read() == b"\x89PNG roc"
    assert s3.head_object(Bucket="store", Key=key)["ContentType"] == "image/png"


def test_an_s3_artifact_write_error_is_a_tracking_error(world: tuple[Any, Any]) -> None:
    _, s3 = world  # moto: the bucket does not exist
    client = rest.MlflowClient(rest.Server.from_uri("http://127.0.0.1:9"), s3=s3)
    with pytest.raises(rest.TrackingError, match="NoSuchBucket"):
        client.log_artifact("s3://no-such-bucket/mlflow/1/abc/artifacts", "a.json", b"{}")


def test_access_denied_on_the_artifact_store_is_counted_as_a_tracking_failure(
    monkeypatch: pytest.MonkeyPatch,
    world: tuple[Any, Any],
    client: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sagemaker, s3 = world
    arn = s3_store_execution(client, "s3://someone-elses-bucket/mlflow", "s3denied1")
    put_outputs(s3, BUCKET, arn, evaluation(champion=False))
    queue_execution_reads(sagemaker.stubber, arn, BUCKET, package_arn=PACKAGE_ARN)
    denied = boto3.client("s3", region_name=REGION)
    with Stubber(denied) as stubber:  # the error as S3 returns it (service model validated)
        stubber.add_client_error("put_object", "AccessDenied", "Access Denied", 403)
        with pytest.raises(rest.TrackingError, match="AccessDenied"):
            run_handler(
                monkeypatch, world, client.server.url, status_event(arn=arn), artifact_s3=denied
            )
    documents = emf_documents(capsys.readouterr().out)
    assert [doc.get("TrackingFailures") for doc in documents] == [[1.0]]


def test_external_mode_copies_no_artifact_and_links_them_in_our_bucket(
    monkeypatch: pytest.MonkeyPatch,
    world: tuple[Any, Any],
    client: Any,
    reader: Reader,
) -> None:
    sagemaker, s3 = world
    arn = s3_store_execution(client, "s3://someone-elses-bucket/mlflow", "s3ext1")
    put_outputs(s3, BUCKET, arn, evaluation(champion=False))
    queue_execution_reads(sagemaker.stubber, arn, BUCKET, package_arn=PACKAGE_ARN)
    sagemaker.stubber.add_response(
        "add_tags", {"Tags": []}, {"ResourceArn": PACKAGE_ARN, "Tags": ANY}
    )
    untouchable = boto3.client("s3", region_name=REGION)
    with Stubber(untouchable):  # any S3 call on the server's store would fail the test
        result = run_handler(
            monkeypatch,
            world,
            client.server.url,
            status_event(arn=arn),
            copy_artifacts=False,
            artifact_s3=untouchable,
        )
    assert result["status"] == "logged"
    tags = reader.get_run(result["run_id"]).data.tags
    assert tags["mlops.logged"] == "true"
    assert tags["mlops.artifact.evaluation.json"].startswith(f"s3://{BUCKET}/")
    assert tags["mlops.artifact.evaluation.json"].endswith("/evaluation.json")
    assert tags["mlops.artifact.plots/roc.png"].startswith(f"s3://{BUCKET}/")


def test_log_batch_requests_keep_mlflows_limits_of_1000_items_in_all() -> None:
    sent: list[dict[str, Any]] = []

    class Recording(rest.MlflowClient):
        def _call(self, method: str, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
            sent.append(payload)
            return {}

    client = Recording(rest.Server.from_uri("http://127.0.0.1:9"))
    metrics = [{"key": f"m{i}", "value": 1.0, "timestamp": 0, "step": 0} for i in range(1200)]
    params = {f"p{i}": "v" for i in range(150)}
    tags = {f"t{i}": "v" for i in range(100)}
    client.log_batch("run", params=params, metrics=metrics, tags=tags)
    for payload in sent:
        kinds = {kind: len(payload[kind]) for kind in ("metrics", "params", "tags")}
        assert sum(kinds.values()) <= 1000
        assert kinds["params"] <= 100 and kinds["tags"] <= 100
    assert sum(len(p["metrics"]) for p in sent) == 1200
    assert {k["key"] for p in sent for k in p["params"]} == set(params)
    assert sum(len(p["tags"]) for p in sent) == 100
