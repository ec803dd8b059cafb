"""Batch serving's scoring runs as the Lambdas see them: the one parser of the run-prefix layout
`predictions/<dataset>/<version>/<model version>/<execution id>/` and of the envelope of a
"SageMaker Transform Job State Change" event, shared by the predictions marker, the
scoring-model cleanup and the drift starter (constructs/python_function.py's `shared_modules`
copies this file beside each handler).

The layout is written by the scoring pipeline's Score step (pipeline_code/steps/score/score.py)
and read by `mlops lineage --predictions` (cli/prediction_lineage.py); those layers cannot import
Lambda code, so tests/test_scoring_run_prefix.py checks that all three agree on the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TRANSFORM_DETAIL_TYPE = "SageMaker Transform Job State Change"
PREDICTIONS_PREFIX = "predictions/"
# <dataset>/<version>/<model version>/<execution id>
RUN_PREFIX_PARTS = 4


class InvalidTransformEventError(ValueError):
    """The event is not a transform job state change from aws.sagemaker."""


@dataclass(frozen=True)
class RunPrefix:
    """One scoring run's output prefix under `predictions/`."""

    dataset: str
    version: str
    model_version: str  # the model package version, digits
    execution_id: str

    @property
    def dataset_version(self) -> str:
        return f"{self.dataset}/{self.version}"

    @property
    def key(self) -> str:
        """`predictions/<d>/<v>/<m>/<run>/`."""
        return (
            f"{PREDICTIONS_PREFIX}{self.dataset}/{self.version}/{self.model_version}/"
            f"{self.execution_id}/"
        )


def parse_run_prefix(key: str) -> RunPrefix | None:
    """The run of an object key or prefix `predictions/<d>/<v>/<m>/<run>[/]`, or None for
    anything else (another prefix, a parent or a deeper key, a model version that is not a
    number, an empty part)."""
    if not key.startswith(PREDICTIONS_PREFIX):
        return None
    parts = key.removeprefix(PREDICTIONS_PREFIX).rstrip("/").split("/")
    if len(parts) != RUN_PREFIX_PARTS or not all(parts) or not parts[2].isdigit():
        return None
    return RunPrefix(*parts)


def parse_run_uri(uri: str, bucket: str | None = None) -> RunPrefix | None:
    """The run of `s3://<bucket>/predictions/<d>/<v>/<m>/<run>/` (of `bucket` when given)."""
    if not uri.startswith("s3://"):
        return None
    found, _, key = uri.removeprefix("s3://").partition("/")
    if bucket is not None and found != bucket:
        return None
    return parse_run_prefix(key)


def transform_detail(event: Any) -> dict[str, Any]:
    """The detail (DescribeTransformJob's answer) of an EventBridge transform job state change;
    InvalidTransformEventError naming what is wrong otherwise."""
    if not isinstance(event, dict) or event.get("detail-type") != TRANSFORM_DETAIL_TYPE:
        raise InvalidTransformEventError(f"not a {TRANSFORM_DETAIL_TYPE!r} event")
    if event.get("source") != "aws.sagemaker":
        raise InvalidTransformEventError("not from aws.sagemaker")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidTransformEventError("the event has no detail")
    return detail
