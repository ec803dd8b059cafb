"""Dataset and version names: every name a producer may use starts exactly one run and is
carried safely to every place it goes; names that cannot be carried are refused before
anything is claimed or started.

The label's safety is checked against the patterns in botocore's SageMaker service model
(the `regex` package speaks Java's `\\p{L}`), not against our own idea of them.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
import regex

from tests.lambda_loader import load_lambda_module
from tests.lambdas.trigger_env import (
    BUCKET,
    Env,
    Kind,
    LambdaContext,
    executions,
    handle,
    handler,
    land,
    land_version,
    make_trigger,
    metrics_out,
    object_event,
    parameters_of,
    rerun_request,
    sqs_event,
    stored,
    take_queued,
)

names = load_lambda_module("start_training", "dataset_names")
_SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


def sagemaker_pattern(shape: str) -> Any:
    """The pattern and maximum length of a SageMaker shape, as the service model states."""
    model = _SAGEMAKER.shape_for(shape)
    return regex.compile(f"^(?:{model.metadata['pattern']})$"), model.metadata["max"]


SINKS = {  # where the DatasetVersion label goes
    "model package metadata": sagemaker_pattern("CustomerMetadataValue"),
    "job tag value": sagemaker_pattern("TagValue"),
}

# (what, dataset/version as landed, the DatasetVersion label expected)
NAMES = [
    ("spaces", "sales 2026/week 47", "sales 2026/week 47"),
    ("plus", "sales/2026+11+22", "sales/2026+11+22"),
    ("percent", "sales/50% off", "sales/50=25 off"),
    ("colon", "sales/v1:2", "sales/v1:2"),
    ("unicode", "ventes été/二〇二六", "ventes été/二〇二六"),
    ("iso-time", "sales/2026-11-22T03:00:00+00:00", "sales/2026-11-22T03:00:00+00:00"),
    ("punctuation", "sales/q(1) #2, 'x'*!", "sales/q=281=29 =232=2C =27x=27=2A=21"),
    ("equals", "sales/a=b", "sales/a=3Db"),
]


def land_with(env: Env, prefix: str, mode: str) -> dict[str, Any]:
    """Two files and the version's marker (`_SUCCESS`, or `manifest.json` listing them)."""
    bodies = {"part 1.csv": b"a,b\n1,2\n", "sub/part+2.csv": b"a,b\n3,4\n"}
    for name, body in bodies.items():
        land(env, prefix + name, body)
    if mode == "marker":
        return land(env, prefix + "_SUCCESS", b"")
    files = [{"key": name, "size": len(body)} for name, body in bodies.items()]
    return land(env, prefix + "manifest.json", json.dumps({"files": files}).encode())


@pytest.mark.parametrize("mode", ["marker", "manifest"])
@pytest.mark.parametrize(("what", "dataset_version", "label"), NAMES, ids=[n[0] for n in NAMES])
def test_every_carried_name_starts_exactly_one_run_through_the_handler(
    lambda_env: Env, what: str, dataset_version: str, label: str, mode: str
) -> None:
    prefix = f"landing/{dataset_version}/"
    marker = land_with(lambda_env, prefix, mode)
    events = [object_event(prefix + "part 1.csv", size=8), marker]
    for _ in range(2):  # and once more: S3 delivers at least once
        response = handler.lambda_handler(sqs_event(*map(json.dumps, events)), LambdaContext())
        assert response == {"batchItemFailures": []}
    [execution] = executions(lambda_env)
    parameters = parameters_of(lambda_env, execution["PipelineExecutionArn"])
    assert parameters["InputDataUri"] == f"s3://{BUCKET}/{prefix}"
    assert parameters["DatasetVersion"] == label
    assert names.unlabel(label) == dataset_version
    assert stored(lambda_env, f"VERSION#{dataset_version}")["file_count"] == 2
    for sink, (pattern, longest) in SINKS.items():
        assert pattern.match(label) and len(label) <= longest, f"{label!r} breaks the {sink}"


def test_a_rerun_of_a_labelled_version_carries_the_same_label(env: Env) -> None:
    trigger = make_trigger(env)
    first = handle(trigger, land_version(env, prefix="landing/sales/50% off/")[1])
    rerun = trigger.handle_direct(rerun_request("sales/50% off"))
    assert rerun.kind is Kind.STARTED
    assert parameters_of(env, rerun.execution_arn) == parameters_of(env, first.execution_arn)
    assert parameters_of(env, rerun.execution_arn)["DatasetVersion"] == "sales/50=25 off"


def test_a_rerun_may_name_the_version_by_the_label_runs_and_the_registry_show(
    env: Env,
) -> None:
    trigger = make_trigger(env)
    percent = handle(trigger, land_version(env, prefix="landing/sales/50% off/")[1])
    by_label = trigger.handle_direct(rerun_request("sales/50=25 off", request_id="t1"))
    assert (by_label.kind, by_label.dataset_version) == (Kind.STARTED, "sales/50% off")
    assert by_label.details["rerun_of"] == percent.execution_arn

    # A version landed under the label's text itself is what that text names.
    literal = handle(trigger, land_version(env, prefix="landing/sales/50=25 off/")[1])
    again = trigger.handle_direct(rerun_request("sales/50=25 off", request_id="t2"))
    assert (again.kind, again.details["rerun_of"]) == (Kind.STARTED, literal.execution_arn)
    assert parameters_of(env, again.execution_arn)["DatasetVersion"] == "sales/50=3D25 off"


@pytest.mark.parametrize(
    ("key", "reason", "says"),
    [
        ("landing/sales/v\x01/_SUCCESS", "invalid-name", "U+0001 (a control character)"),
        ("landing/sa\nles/v1/part.csv", "invalid-name", "U+000A (a control character)"),
        ("landing/sales/a\u2028b/_SUCCESS", "invalid-name", "U+2028 (a line separator)"),
        ("landing/sales/v\x85/_SUCCESS", "invalid-name", "U+0085 (a control character)"),
        ("landing/sales/" + "%" * 90 + "/_SUCCESS", "name-too-long", "at most 256"),
    ],
    ids=["control", "newline-in-dataset", "line-separator", "next-line", "label"],
)
def test_names_that_cannot_be_carried_are_refused_before_anything_starts(
    env: Env, key: str, reason: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    trigger = make_trigger(env)
    outcome = handle(trigger, object_event(key, size=0 if key.endswith("_SUCCESS") else 5))
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, reason)
    assert says in outcome.message
    if reason == "invalid-name":
        assert "names may use letters, marks, digits, spaces" in outcome.message
    assert executions(env) == []
    assert take_queued(env) == []  # acknowledged, not retried
    assert env.table.scan()["Items"] == []  # nothing claimed
    assert {"Reason": reason, "RejectedEvents": [1.0]}.items() <= metrics_out(capsys)[0].items()


def test_an_input_uri_too_long_for_a_pipeline_parameter_is_refused(env: Env) -> None:
    deep = "landing/" + "archive/" * 120  # a long LANDING_PREFIX leaves little for names
    trigger = make_trigger(env, landing_prefix=deep)
    outcome = handle(trigger, object_event(deep + "sales/" + "v" * 90 + "/_SUCCESS", size=0))
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "name-too-long")
    assert "characters, at most 1024 fit a pipeline parameter" in outcome.message


def test_a_rerun_request_for_a_name_that_cannot_be_carried_is_refused(env: Env) -> None:
    outcome = make_trigger(env).handle_direct(rerun_request("sales/v\x00"))
    assert (outcome.kind, outcome.reason) == (Kind.REJECTED, "invalid-name")
    assert "U+0000" in outcome.message


@pytest.mark.parametrize(
    "name",
    ["", "a", "50% off", "a=b", "=25", "x=3D", "ventes été", "e\u0301", "🙂 q(1)#!", "\u200dx"],
)
def test_labels_round_trip_and_fit_every_sink(name: str) -> None:
    label = names.label(f"sales/{name}")
    assert names.unlabel(label) == f"sales/{name}"
    for sink, (pattern, _) in SINKS.items():
        assert pattern.match(label), f"{label!r} breaks the {sink}"


@pytest.mark.parametrize("text", ["50% off", "a=b", "a=2", "a=ZZ", "=C3"])
def test_text_that_is_not_a_label_is_not_decoded(text: str) -> None:
    with pytest.raises(ValueError, match="is not a DatasetVersion label"):
        names.unlabel(text)
