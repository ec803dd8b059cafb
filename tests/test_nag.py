"""cdk-nag is live: a non-compliant construct makes synth fail, an acknowledgement needs a
reason, and the real app synthesizes with zero unacknowledged findings."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from constructs.nag import acknowledge
from tests.conftest import (
    BATCH,
    MLFLOW_EXTERNAL,
    MLFLOW_MANAGED,
    MLFLOW_PROMOTE_TARGET,
    MLFLOW_SELF_HOSTED,
    MODEL_MONITOR,
    PROMOTE_SOURCE,
    PROMOTE_TARGET,
    SERVERLESS,
    SKLEARN_BATCH,
    assembly_dir,
    synthesized,
)

# One worker synthesizes the CDK apps once for all of these (pytest -n with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("cdk")


def _non_compliant_app() -> cdk.App:
    app = cdk.App()
    stack = cdk.Stack(app, "Probe", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    s3.Bucket(stack, "PlainBucket")  # no TLS policy, no logs, no KMS: several findings
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def test_a_non_compliant_bucket_fails_synth() -> None:
    app = _non_compliant_app()
    with pytest.raises(Exception, match="ValidationFailed") as error:
        app.synth()
    assert "AwsSolutions-S1" in str(error.value)  # server access logs
    assert "AwsSolutions-S10" in str(error.value)  # TLS-only policy


def test_acknowledging_every_finding_with_a_reason_lets_synth_pass() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Probe", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    queue = sqs.Queue(stack, "Queue", enforce_ssl=True, encryption=sqs.QueueEncryption.SQS_MANAGED)
    acknowledge(
        queue, "AwsSolutions-SQS3", reason="This probe queue is itself a dead-letter queue."
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    Template.from_stack(stack).resource_count_is("AWS::SQS::Queue", 1)


def test_acknowledgement_without_a_reason_is_refused() -> None:
    stack = cdk.Stack(cdk.App(), "Probe")
    with pytest.raises(ValueError, match="give a real reason"):
        acknowledge(stack, "AwsSolutions-S1", reason="ok")


def test_every_environment_synthesizes_nag_clean(dev: dict, prod: dict) -> None:
    # the fixtures synthesize with the AwsSolutions plugin: reaching here means zero findings
    assert dev and prod


def test_control_tower_rules_are_live() -> None:
    from stacks.policy_validation import ApplicableControlTowerRules

    app = cdk.App()
    stack = cdk.Stack(app, "Probe", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    sqs.Queue(stack, "Plain")  # no dead-letter queue: CT.SQS.PR.1
    cdk.Validations.of(app).add_plugins(ApplicableControlTowerRules())  # type: ignore[arg-type]
    with pytest.raises(Exception, match="ValidationFailed") as error:
        app.synth()
    assert "sqs_dlq_check" in str(error.value)


def test_function_logs_are_kept_a_year(dev: dict) -> None:
    for role in ("training", "serving", "monitoring"):
        for resource in dev[role].to_json()["Resources"].values():
            if resource["Type"] == "AWS::Logs::LogGroup":
                assert resource["Properties"]["RetentionInDays"] >= 365, role


def unused_acknowledgements(assembly: Path) -> list[str]:
    """Acknowledgements (cdk-nag and Control Tower rules) recorded in the assembly's metadata
    that acknowledge no finding of the validation report: stale reasons that would hide a
    future finding at that place."""
    report = json.loads((assembly / "validation-report.json").read_text())
    used = {
        (v["acknowledgedAt"], v["acknowledgedId"])
        for plugin in report["pluginReports"]
        for v in plugin.get("suppressedViolations", [])
    }
    made = {
        (path.lstrip("/"), rule)
        for metadata in assembly.glob("*.metadata.json")
        for path, entries in json.loads(metadata.read_text()).items()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for rule in entry["data"]
    }
    return sorted(f"{path}: {rule}" for path, rule in made - used)


@pytest.mark.parametrize(
    ("env", "overrides"),
    [
        ("dev", "{}"),
        ("staging", "{}"),
        ("prod", "{}"),
        ("dev", MODEL_MONITOR),
        ("dev", SERVERLESS),
        ("dev", PROMOTE_SOURCE),
        ("staging", PROMOTE_TARGET),
        ("dev", BATCH),
        ("dev", SKLEARN_BATCH),
        ("dev", MLFLOW_MANAGED),
        ("dev", MLFLOW_EXTERNAL),
        ("dev", MLFLOW_SELF_HOSTED),
        ("staging", MLFLOW_PROMOTE_TARGET),
    ],
)
def test_no_acknowledgement_is_unused(env: str, overrides: str) -> None:
    synthesized(env, overrides)
    assert unused_acknowledgements(Path(assembly_dir(env, overrides))) == []


def test_an_unused_acknowledgement_is_reported(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Probe", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    queue = sqs.Queue(stack, "Queue", enforce_ssl=True, encryption=sqs.QueueEncryption.SQS_MANAGED)
    acknowledge(
        queue, "AwsSolutions-SQS3", reason="This probe queue is itself a dead-letter queue."
    )
    acknowledge(queue, "AwsSolutions-S1", reason="A bucket rule acknowledged on a queue: unused.")
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    assert unused_acknowledgements(tmp_path) == ["Probe/Queue: AwsSolutions::AwsSolutions-S1"]
