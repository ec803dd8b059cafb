"""One layout of a scoring run's prefix, `predictions/<dataset>/<version>/<model version>/
<execution id>/`, in every layer that touches it: the Score step writes it
(pipeline_code/steps/score/score.py), the Lambdas parse it with lambdas/shared/scoring_runs.py
(the marker, the cleanup, the drift starter), the CLI parses it (cli/prediction_lineage.py) and
the constructs scope their rules and grants by its first part. The layers cannot import each
other (tests/test_layers.py), so this checks they agree: what the step writes, both parsers
read back the same way; what one refuses, the other refuses.
"""

from __future__ import annotations

import pytest

from cli.aws import CliError
from cli.prediction_lineage import PREDICTIONS_PREFIX as CLI_PREFIX
from cli.prediction_lineage import parse_ref
from constructs.predictions_marker import PREDICTIONS_PREFIX as CONSTRUCT_PREFIX
from constructs.scoring_model_role import PREDICTIONS_PREFIX as ROLE_PREFIX
from pipeline_code.steps import load
from tests.lambda_loader import load_lambda_module

runs = load_lambda_module("mark_predictions", "scoring_runs")
score = load("score")
PACKAGE = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlops-loop-dev-models/{}"


def test_every_layer_names_the_same_prefix() -> None:
    assert {runs.PREDICTIONS_PREFIX, CLI_PREFIX, CONSTRUCT_PREFIX, ROLE_PREFIX} == {
        score.PREDICTIONS_PREFIX
    }


@pytest.mark.parametrize(
    ("version", "package", "run"),
    [
        ("transactions/2026-12-07 08:00+v%1", 3, "k2x9q1w7e3r5"),
        ("fraud/v1", 12, "local-20261207T080000"),
    ],
)
def test_what_the_step_writes_both_parsers_read_the_same(
    version: str, package: int, run: str
) -> None:
    uri, model_version = score.predictions_uri(
        f"s3://data/score/{version}/", PACKAGE.format(package), run
    )
    parsed = runs.parse_run_uri(uri, "data")
    assert parsed is not None
    assert (parsed.dataset_version, parsed.model_version, parsed.execution_id) == (
        version,
        model_version,
        run,
    )
    assert uri == f"s3://data/{parsed.key}"
    ref = parse_ref(uri)
    assert (ref.bucket, ref.dataset_version, ref.model_version, ref.execution_id) == (
        "data",
        version,
        model_version,
        run,
    )
    assert ref.prefix == parsed.key


@pytest.mark.parametrize(
    "key",
    [
        "predictions/transactions/v1/3",  # a parent prefix
        "predictions/transactions/v1/3/run/part-0.out",  # deeper than a run
        "predictions/transactions/v1/latest/run/",  # not a package version
        "predictions/transactions//3/run/",
        "score/transactions/v1/3/run/",
    ],
)
def test_what_one_parser_refuses_the_other_refuses(key: str) -> None:
    assert runs.parse_run_prefix(key) is None
    with pytest.raises(CliError):
        parse_ref(f"s3://data/{key}")
