"""EventBridge -> log a finished pipeline execution as one MLflow run (see run_tracker.py).

Input: "SageMaker Model Building Pipeline Execution Status Change" events.

Environment: TRACKING_SERVER (a SageMaker MLflow tracking server ARN, or an http(s) URL),
CREDENTIALS_SECRET (optional: the ARN of a Secrets Manager secret with the server's credentials,
read once per cold start and again after the server answers 401/403, never logged),
PIPELINE_NAMES (comma-separated, lower case as in execution ARNs), COPY_ARTIFACTS ("true": the
server's artifact store is ours, managed mode; otherwise, external, the run only links to the
artifacts in our bucket), POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (default "MLOps/Tracking").

Metrics (count 1 per invocation): RunsLogged, RunsAlreadyLogged, Skipped, InvalidEvents, and
TrackingFailures when the server is unreachable or rejects a write: that failure raises, so
the rule's retry policy and dead-letter queue apply (the pipeline never waits on tracking).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import run_tracker as tracker
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from execution_reader import CLIENT_CONFIG
from mlflow_rest import Credentials, MlflowClient, Server, TrackingError, sigv4_signer

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MLOps/Tracking"))
TRACKING_FAILURES = "TrackingFailures"
# The server's answers to stale credentials (a rotated secret): the next invocation rebuilds
# the tracking client and reads the secret again.
REJECTED_CREDENTIALS = frozenset({401, 403})

# What GetSecretValue answers for a partial ARN (without the suffix Secrets Manager appends):
# the policy grants the full ARN only, and a partial ARN names no secret.
PARTIAL_ARN_CODES = frozenset({"AccessDeniedException", "ResourceNotFoundException"})
PARTIAL_ARN_HINT = " (use the secret's full ARN with its 6-character suffix)"

# Reused across warm invocations; tests put stubbed clients here.
clients: dict[str, Any] = {}


def _client(name: str) -> Any:
    if name not in clients:
        clients[name] = boto3.client(name, config=CLIENT_CONFIG)  # type: ignore[call-overload]
    return clients[name]


def _tracking() -> MlflowClient:
    if "mlflow" not in clients:
        server = Server.from_uri(os.environ["TRACKING_SERVER"])
        signer = sigv4_signer(boto3.Session(), server.region) if server.region else None
        clients["mlflow"] = MlflowClient(
            server, signer=signer, s3=_client("s3"), credentials=_credentials()
        )
    tracking: MlflowClient = clients["mlflow"]
    return tracking


def _credentials() -> Credentials | None:
    """The self-hosted server's credentials from CREDENTIALS_SECRET (its own region), or None."""
    arn = os.environ.get("CREDENTIALS_SECRET", "")
    if not arn:
        return None
    if "secretsmanager" not in clients:
        region = arn.split(":")[3]
        clients["secretsmanager"] = boto3.client(
            "secretsmanager",
            region_name=region,
            config=CLIENT_CONFIG,  # type: ignore[call-overload]
        )
    try:
        secret = clients["secretsmanager"].get_secret_value(SecretId=arn)
    except (ClientError, BotoCoreError) as error:
        code = error.response["Error"].get("Code", "") if isinstance(error, ClientError) else ""
        hint = PARTIAL_ARN_HINT if code in PARTIAL_ARN_CODES else ""
        raise TrackingError(f"secret {arn} could not be read: {error}{hint}") from error
    if "SecretString" not in secret:
        raise TrackingError(f"secret {arn} holds binary data, not a JSON string")
    return Credentials.from_secret(secret["SecretString"], arn)


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Entry point: `handler.lambda_handler`."""
    names = frozenset(n for n in os.environ.get("PIPELINE_NAMES", "").split(",") if n)
    try:
        outcome = tracker.track(
            _client("sagemaker"),
            _client("s3"),
            _tracking(),
            names,
            event,
            copy_artifacts=os.environ.get("COPY_ARTIFACTS") == "true",
        )
    except tracker.InvalidEventError as error:
        outcome = tracker.Outcome("rejected", str(error))
        logger.error("invalid event, nothing logged", extra={"error": outcome.message})
    except TrackingError as error:
        # counted and alarmed; raising lets EventBridge/Lambda retry, then dead-letter it
        metrics.add_metric(name=TRACKING_FAILURES, unit=MetricUnit.Count, value=1)
        if error.status in REJECTED_CREDENTIALS:
            clients.pop("mlflow", None)  # the retry reads the (maybe rotated) secret again
        logger.error("tracking failed: the event will be retried", extra={"error": str(error)})
        raise
    else:
        logger.info(outcome.message, extra={"status": outcome.status})
    metrics.add_metric(name=outcome.metric, unit=MetricUnit.Count, value=1)
    return {"status": outcome.status, "message": outcome.message, "run_id": outcome.run_id}
