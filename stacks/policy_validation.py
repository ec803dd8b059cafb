"""The policy checks a synth runs: cdk-nag's AwsSolutions pack, and optionally the AWS Control
Tower proactive controls (cfn-guard), run only with the rules that can match the templates.

cfn-guard's cost grows with rules x templates, and of the ~240 Control Tower rules only the few
written for a resource type the templates contain can ever report anything: a rule for
`AWS::Redshift::Cluster` finds nothing in an app without one. `ApplicableControlTowerRules`
reads the templates' resource types when the plugin runs (after synthesis, so nothing added late
is missed), keeps the rules whose text names one of them, and runs the real `CfnGuardValidator`
with those: same findings, same report, same acknowledgement ids, a fifth of the time.

CDK's built-in CloudFormation schema validation is not used (`builtin_cloud_formation_validation`
is off where apps are made): it only ever reports warnings, costs about 6 s per process to
start, and cfn-lint checks the same templates against the same schemas in CI and the tests.
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.metadata import version
from pathlib import Path

import aws_cdk as cdk
import jsii
from cdk_nag import AwsSolutionsChecks

from constructs.nag import GUARD

CONTROL_TOWER_RULES = "package/rules/control-tower/cfn-guard/"
RESOURCE_TYPE = re.compile(r"AWS::[A-Za-z0-9]+::[A-Za-z0-9]+")


@dataclass(frozen=True)
class GuardRule:
    text: str
    resource_types: frozenset[str]


@cache
def control_tower_rules() -> dict[str, GuardRule]:
    """The Control Tower rules the validator ships (`ct-s3-pr-1` -> its text and the resource
    types the text names), read from the validator's own package."""
    package = resources.files("cdklabs.cdk_validator_cfnguard") / "_jsii"
    (tarball,) = [p for p in package.iterdir() if p.name.endswith(".jsii.tgz")]
    rules: dict[str, GuardRule] = {}
    with tarball.open("rb") as stream, tarfile.open(fileobj=stream, mode="r:gz") as archive:
        for member in archive:
            if member.name.startswith(CONTROL_TOWER_RULES) and member.name.endswith(".guard"):
                text = archive.extractfile(member).read().decode()  # type: ignore[union-attr]
                name = member.name.rsplit("/", 1)[1].removesuffix(".guard")
                rules[name] = GuardRule(text, frozenset(RESOURCE_TYPE.findall(text)))
    if not rules or not all(rule.resource_types for rule in rules.values()):
        raise RuntimeError(f"unexpected Control Tower rules in {tarball.name}: {len(rules)} read")
    return rules


def applicable_rules(resource_types: set[str]) -> list[str]:
    """The Control Tower rules that name one of `resource_types` (the others cannot match)."""
    return sorted(
        name for name, rule in control_tower_rules().items() if rule.resource_types & resource_types
    )


def template_resource_types(template_paths: list[str]) -> set[str]:
    types: set[str] = set()
    for path in template_paths:
        with open(path, encoding="utf-8") as template:
            resources_ = json.load(template).get("Resources", {})
        types.update(resource["Type"] for resource in resources_.values())
    return types


@jsii.implements(cdk.IPolicyValidationPluginBeta1)  # the interface the wrapped plugin has
class ApplicableControlTowerRules:
    """`CfnGuardValidator(control_tower_rules_enabled=True)` with only the rules that can match."""

    @property
    def name(self) -> str:
        return GUARD  # acknowledgements are namespaced by this name

    @property
    def version(self) -> str:
        return version("cdklabs.cdk-validator-cfnguard")

    @property
    def rule_ids(self) -> list[str] | None:
        return None

    def validate(
        self, context: cdk.IPolicyValidationContextBeta1
    ) -> cdk.PolicyValidationPluginReportBeta1:
        # The rules go in as one folder of files: the validator's own `disabled_rules` passes
        # the whole rule tree when the kept files happen to number its service folders.
        from cdklabs.cdk_validator_cfnguard import CfnGuardValidator  # a 12 MB jsii assembly

        rules = control_tower_rules()
        applicable = applicable_rules(template_resource_types(list(context.template_paths)))
        if not applicable:
            return cdk.PolicyValidationPluginReportBeta1(success=True, violations=[])
        with tempfile.TemporaryDirectory(prefix="control-tower-rules-") as folder:
            for name in applicable:
                Path(folder, f"{name}.guard").write_text(rules[name].text, encoding="utf-8")
            guard = CfnGuardValidator(control_tower_rules_enabled=False, rules=[folder])
            report = guard.validate(context)
        return cdk.PolicyValidationPluginReportBeta1(
            success=report.success,
            violations=[_as_error(violation) for violation in report.violations],
            metadata=report.metadata,
            plugin_version=report.plugin_version,
        )


def _as_error(violation: cdk.PolicyViolationBeta1) -> cdk.PolicyViolationBeta1:
    """The violation with severity `error` where cfn-guard gives none. Without one, CDK counts
    the report a success as soon as any of its findings is acknowledged, and every other
    Control Tower finding would pass synth silently (cdk-nag sets the severity itself)."""
    return cdk.PolicyViolationBeta1(
        rule_name=violation.rule_name,
        description=violation.description,
        violating_resources=violation.violating_resources,
        fix=violation.fix,
        rule_metadata=violation.rule_metadata,
        severity=violation.severity or "error",
    )


def add_policy_checks(app: cdk.App, *, control_tower: bool) -> None:
    """cdk-nag's AwsSolutions pack on `app`; with `control_tower`, the Control Tower rules too.
    Any unacknowledged finding makes `app.synth()` fail."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    if control_tower:
        cdk.Validations.of(app).add_plugins(ApplicableControlTowerRules())  # type: ignore[arg-type]
