"""Security properties of one environment's synthesized templates, each a function that returns
its violations (an empty list when the property holds).

Every function reads only the template JSON (stack role -> template), so a test can run it on
the real templates and on a copy with one protection removed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tests.policy_evaluation import Request, as_list, decision, resolve

Templates = dict[str, dict[str, Any]]
IDENTITY_POLICIES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
# What a key is *used* for (everything else in KMS administers it).
KMS_USE = re.compile(
    r"^(\*|kms:\*|kms:(Encrypt|Decrypt|ReEncrypt|GenerateDataKey|CreateGrant|Sign|Verify|"
    r"GenerateMac|VerifyMac|DeriveSharedSecret|GenerateRandom).*)$"
)
ROOT = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:root$")
# Construct ids of the pipelines' roles: what SageMaker Pipelines runs as, and its job roles.
PIPELINE_ROLES = ("PipelinesRole", "ProcessingJobRole", "TrainingJobRole")


def attached_statements(template: Mapping[str, Any], role: str) -> list[dict[str, Any]]:
    """Every statement of the identity policies (AWS::IAM::Policy) attached to the role whose
    logical id is `role`."""
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def role_statements(template: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    """`attached_statements` of the one role whose logical id starts with `kind`."""
    [role] = [
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and k.startswith(kind)
    ]
    return attached_statements(template, role)


def resources(templates: Templates, *types: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(stack role, logical id, resource) of every resource of `types` (all without types)."""
    for role, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            if not types or resource["Type"] in types:
                yield role, logical_id, resource


def identity_statements(templates: Templates) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, statement) of every identity policy statement (policies and inline ones)."""
    for role, logical_id, resource in resources(templates, *IDENTITY_POLICIES, "AWS::IAM::Role"):
        documents = (
            [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
            if resource["Type"] == "AWS::IAM::Role"
            else [resource["Properties"]["PolicyDocument"]]
        )
        for document in documents:
            for statement in as_list(document["Statement"]):
                yield f"{role}/{logical_id}", statement


def condition_keys(statement: dict[str, Any]) -> set[str]:
    return {key for keys in statement.get("Condition", {}).values() for key in keys}


# ---- keys ------------------------------------------------------------------------------


def kms_use_outside_services(templates: Templates) -> list[str]:
    """Every identity policy that allows using a key names the service it goes through."""
    return [
        f"{where}: {action} without kms:ViaService"
        for where, statement in identity_statements(templates)
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
        if KMS_USE.match(action) and "kms:ViaService" not in condition_keys(statement)
    ]


def key_policy_problems(templates: Templates, administrators: set[str]) -> list[str]:
    """Each key: used by the account only through services, by AWS services only for this
    account, administered (never used) by `administrators` (resolved ARNs), grants only for
    AWS resources."""
    problems = []
    for _, logical_id, key in resources(templates, "AWS::KMS::Key"):
        statements = resolve(key["Properties"]["KeyPolicy"])["Statement"]
        if not any(
            s["Effect"] == "Deny" and s["Action"] == "kms:CreateGrant"
            and "kms:GrantIsForAWSResource" in condition_keys(s)
            for s in statements
        ):  # fmt: skip
            problems.append(f"{logical_id}: grants for anything but AWS resources")
        for s in statements:
            if s["Effect"] != "Allow":
                continue
            actions = as_list(s["Action"])
            uses = [a for a in actions if KMS_USE.match(a)]
            principal = s["Principal"]
            if "Service" in principal:
                if not condition_keys(s) & {"aws:SourceAccount", "aws:SourceArn"} and not any(
                    k.startswith("kms:EncryptionContext:") for k in condition_keys(s)
                ):
                    problems.append(f"{logical_id}/{s.get('Sid')}: a service for any account")
            elif uses:
                arns = as_list(principal["AWS"])
                if not (all(ROOT.match(a) for a in arns) and "kms:ViaService" in condition_keys(s)):
                    problems.append(f"{logical_id}/{s.get('Sid')}: {uses} outside services")
            elif set(as_list(principal["AWS"])) != administrators:
                problems.append(
                    f"{logical_id}/{s.get('Sid')}: administered by {principal['AWS']}, "
                    f"not {sorted(administrators)}"
                )
    return problems


# ---- queues, topics, dead letters, asynchronous functions -------------------------------


def unscoped_service_access(templates: Templates) -> list[str]:
    """Every Allow of a queue or topic policy names the sending resource (aws:SourceArn)."""
    return [
        f"{role}/{logical_id}: {statement.get('Sid')} {statement['Principal']}"
        for role, logical_id, policy in resources(
            templates, "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"
        )
        for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"])
        if statement["Effect"] == "Allow" and "aws:SourceArn" not in condition_keys(statement)
    ]


def dead_letter_queues(templates: Templates) -> dict[tuple[str, str], str]:
    """(stack role, queue logical id) -> what it catches, for every dead-letter queue: of a
    queue, a rule target, a schedule, a function's asynchronous failures."""
    found: dict[tuple[str, str], str] = {}

    def add(role: str, arn: Any, what: str) -> None:
        if isinstance(arn, dict) and "Fn::GetAtt" in arn:
            found[(role, arn["Fn::GetAtt"][0])] = what

    for role, logical_id, resource in resources(templates):
        props, kind = resource.get("Properties", {}), resource["Type"]
        if kind == "AWS::SQS::Queue" and "RedrivePolicy" in props:
            add(role, props["RedrivePolicy"]["deadLetterTargetArn"], f"queue {logical_id}")
        elif kind == "AWS::Events::Rule":
            for target in props.get("Targets", []):
                add(role, target.get("DeadLetterConfig", {}).get("Arn"), f"rule {logical_id}")
        elif kind == "AWS::Scheduler::Schedule":
            config = props["Target"].get("DeadLetterConfig", {})
            add(role, config.get("Arn"), f"schedule {logical_id}")
        elif kind == "AWS::Lambda::EventInvokeConfig":
            failure = props.get("DestinationConfig", {}).get("OnFailure", {})
            add(role, failure.get("Destination"), f"async failures of {props['FunctionName']}")
        elif kind == "AWS::Lambda::Function" and "DeadLetterConfig" in props:
            add(role, props["DeadLetterConfig"].get("TargetArn"), f"function {logical_id}")
    return found


def _alarmed(template: dict[str, Any], metric: str, dimension: str, target: dict[str, Any]) -> bool:
    return any(
        r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("MetricName") == metric
        and {"Name": dimension, "Value": target} in r["Properties"].get("Dimensions", [])
        and r["Properties"].get("AlarmActions")
        for r in template["Resources"].values()
    )


def unalarmed_dead_letter_queues(templates: Templates) -> list[str]:
    return [
        f"{role}/{queue} (dead letters of {what}) has no alarm that notifies"
        for (role, queue), what in sorted(dead_letter_queues(templates).items())
        if not _alarmed(
            templates[role],
            "ApproximateNumberOfMessagesVisible",
            "QueueName",
            {"Fn::GetAtt": [queue, "QueueName"]},
        )
    ]


def open_redrive(templates: Templates) -> list[str]:
    """A dead-letter queue admits as redrive source exactly the queues that use it."""
    problems = []
    queues = {(role, k): r for role, k, r in resources(templates, "AWS::SQS::Queue")}
    for (role, queue), _ in sorted(dead_letter_queues(templates).items()):
        sources = {
            str(r["Properties"].get("QueueName"))
            for (r_role, _k), r in queues.items()
            if r_role == role
            and r["Properties"].get("RedrivePolicy", {}).get("deadLetterTargetArn")
            == {"Fn::GetAtt": [queue, "Arn"]}
        }
        allowed = queues[(role, queue)]["Properties"].get("RedriveAllowPolicy", {})
        permission = allowed.get("redrivePermission")
        if not sources and permission != "denyAll":
            problems.append(f"{role}/{queue}: no queue redrives into it, but {allowed or 'any'}")
        elif sources:
            named = {
                str(resolve(arn)).rsplit(":", 1)[-1] for arn in allowed.get("sourceQueueArns", [])
            }
            if permission != "byQueue" or named != sources:
                problems.append(f"{role}/{queue}: redrive {allowed or 'any'}, sources {sources}")
    return problems


def asynchronous_functions(templates: Templates) -> dict[tuple[str, str], str]:
    """(stack role, function logical id) -> its asynchronous caller (a rule or a schedule)."""
    found: dict[tuple[str, str], str] = {}
    for role, logical_id, resource in resources(
        templates, "AWS::Events::Rule", "AWS::Scheduler::Schedule"
    ):
        targets = resource["Properties"].get("Targets") or [resource["Properties"]["Target"]]
        for target in targets:
            arn = target["Arn"]
            if isinstance(arn, dict) and "Fn::GetAtt" in arn:
                function = arn["Fn::GetAtt"][0]
                if templates[role]["Resources"][function]["Type"] == "AWS::Lambda::Function":
                    found[(role, function)] = logical_id
    return found


def silent_asynchronous_functions(templates: Templates) -> list[str]:
    """Every asynchronously invoked function has an on-failure destination and an Errors
    alarm that notifies."""
    problems = []
    for (role, function), caller in sorted(asynchronous_functions(templates).items()):
        configs = [
            r["Properties"]
            for r in templates[role]["Resources"].values()
            if r["Type"] == "AWS::Lambda::EventInvokeConfig"
            and r["Properties"]["FunctionName"] == {"Ref": function}
        ]
        if not any(c.get("DestinationConfig", {}).get("OnFailure") for c in configs):
            problems.append(f"{role}/{function} (invoked by {caller}): no on-failure destination")
        if not _alarmed(templates[role], "Errors", "FunctionName", {"Ref": function}):
            problems.append(f"{role}/{function} (invoked by {caller}): no Errors alarm")
    return problems


# ---- encryption and retention -------------------------------------------------------------

ENCRYPTION_KEY_PROPERTY = {"AWS::SQS::Queue": "KmsMasterKeyId", "AWS::Logs::LogGroup": "KmsKeyId"}


def unencrypted_queues_and_log_groups(templates: Templates) -> list[str]:
    """Every queue and every log group is encrypted with one of the environment's own KMS keys
    (not SQS-managed SSE, not an AWS-managed alias). Finding none to check is a problem too."""
    keys = {logical_id for _, logical_id, _ in resources(templates, "AWS::KMS::Key")}
    checked = list(resources(templates, *ENCRYPTION_KEY_PROPERTY))
    if not keys or not checked:
        return [f"nothing to check: {len(keys)} keys, {len(checked)} queues and log groups"]
    problems = []
    for role, logical_id, resource in checked:
        prop = ENCRYPTION_KEY_PROPERTY[resource["Type"]]
        key = json.dumps(resource["Properties"].get(prop))
        # In its stack a key is {"Fn::GetAtt": ["<Key>", "Arn"]}; across stacks an export
        # named after it (`...:ExportsOutputFnGetAtt<Key>Arn...`).
        if not any(f'"{k}"' in key or f"FnGetAtt{k}Arn" in key for k in keys):
            problems.append(f"{role}/{logical_id}: {prop} {key} is not one of {sorted(keys)}")
    return problems


def unprotected_retained_tables(templates: Templates) -> list[str]:
    """A table kept when its stack goes (DeletionPolicy Retain) also refuses DeleteTable
    (deletion protection) and has point-in-time recovery; a table deleted with its stack has
    no deletion protection (it would make the stack's deletion fail)."""
    problems = []
    for role, logical_id, table in resources(templates, "AWS::DynamoDB::Table"):
        props = table["Properties"]
        protected = props.get("DeletionProtectionEnabled") is True
        recovery = props.get("PointInTimeRecoverySpecification", {})
        if table.get("DeletionPolicy") == "Retain":
            if not protected:
                problems.append(f"{role}/{logical_id}: retained without deletion protection")
            if table.get("UpdateReplacePolicy") != "Retain":
                problems.append(f"{role}/{logical_id}: a replacement would delete it")
            if recovery.get("PointInTimeRecoveryEnabled") is not True:
                problems.append(f"{role}/{logical_id}: retained without point-in-time recovery")
        elif protected:
            problems.append(f"{role}/{logical_id}: deletion protection on a table not retained")
    return problems


def retained_tables(templates: Templates) -> list[str]:
    return sorted(
        f"{role}/{logical_id}"
        for role, logical_id, table in resources(templates, "AWS::DynamoDB::Table")
        if table.get("DeletionPolicy") == "Retain"
    )


# ---- roles -------------------------------------------------------------------------------


ARN = re.compile(
    r"^arn:(?P<partition>[^:]*):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):"
    r"(?P<resource>.*)$"
)


def resource_scope(resource: Any) -> tuple[str, str]:
    """How much one statement resource covers: ("any", ...) for `*` and for an ARN that matches
    as much (a wildcard partition, service, region or account, or a resource part of only
    `*`, `/` and `:`); ("type", "<service>:<type>") for every resource of one type in the
    account (`model/*`, `scalable-target/*`); ("named", "") otherwise, including this
    template's own resources (`<Bucket>/*`, `<Function>:*`)."""
    text = str(resolve(resource))
    if text == "*":
        return "any", "*"
    # Placeholders such as <AWS::Region> must not split the ARN at their colons.
    match = ARN.match(re.sub(r"<[^<>]*>", lambda p: p[0].replace(":", "."), text))
    if not match:
        return "named", ""
    if any("*" in match[part] for part in ("partition", "service", "region", "account")) or (
        set(match["resource"]) <= set("*/:")
    ):
        return "any", text
    kind = re.fullmatch(r"([A-Za-z-]+)[/:]\*", match["resource"])
    if kind and match["service"] != "s3":  # an S3 ARN's first segment is a bucket name
        return "type", f"{match['service']}:{kind[1]}"
    return "named", ""


def wildcard_resource_problems(
    templates: Templates,
    no_resource_level: dict[str, str | None],
    type_wide: dict[str, str],
) -> list[str]:
    """Allow statements on any resource only for actions IAM cannot scope to a resource
    (`no_resource_level`: action -> the condition key it must carry, or None), and on every
    resource of a type only for the types in `type_wide` (type -> why). Finding no identity
    statement at all is a problem: nothing was checked."""
    statements = list(identity_statements(templates))
    if not statements:
        return ["no identity policy statements: nothing was checked"]
    problems = []
    for where, statement in statements:
        if statement["Effect"] != "Allow":
            continue  # a deny on every resource only takes permissions away
        for resource in as_list(statement["Resource"]):
            scope, what = resource_scope(resource)
            if scope == "type" and what not in type_wide:
                problems.append(f"{where}: every {what} ({resolve(resource)})")
            if scope != "any":
                continue
            for action in as_list(statement["Action"]):
                needed = no_resource_level.get(action, "")
                if action not in no_resource_level:
                    problems.append(f"{where}: {action} on {what}")
                elif needed and needed not in condition_keys(statement):
                    problems.append(f"{where}: {action} without {needed}")
    return problems


def pass_role_problems(templates: Templates) -> list[str]:
    """PassRole only of named roles, and only to a named service."""
    problems = []
    for where, statement in identity_statements(templates):
        actions = as_list(statement["Action"])
        if statement["Effect"] != "Allow" or not {"iam:PassRole", "iam:*", "*"} & set(actions):
            continue
        if "*" in as_list(statement["Resource"]):
            problems.append(f"{where}: PassRole on any role")
        passed_to = statement.get("Condition", {}).get("StringEquals", {})
        if "iam:PassedToService" not in passed_to:
            problems.append(f"{where}: PassRole to any service")
    return problems


def broad_job_and_image_access(templates: Templates, *, scoring: bool = False) -> list[str]:
    """No job of any name (the pipelines' are `pipelines-*`, the drift checks' `drift-*`), no
    transform jobs, no models made by the pipeline role, and images only from the
    repositories of named accounts. With `scoring` (batch serving), the pipelines' role alone
    may run transform jobs named `pipelines-*` and create models named so, network isolated;
    the job tagger may tag (only) those transform jobs."""
    problems = []
    for where, statement in identity_statements(templates):
        if statement["Effect"] != "Allow":
            continue
        pipelines_role = any(role in where for role in PIPELINE_ROLES)
        for resource in map(json.dumps, as_list(statement["Resource"])):
            if re.search(r":(processing-job|training-job|transform-job)/\*", resource):
                problems.append(f"{where}: {resource}")
            tagger = "JobTagger" in where
            scoring_jobs = (
                scoring and (pipelines_role or tagger) and "transform-job/pipelines-*" in resource
            )
            if "transform-job" in resource and not scoring_jobs:
                problems.append(f"{where}: transform jobs are not used")
            if ":ecr:" in resource and re.search(r":ecr:[^:]*:\*:", resource):
                problems.append(f"{where}: images of any account ({resource})")
        for action in as_list(statement["Action"]):
            if action in ("sagemaker:CreateModel", "sagemaker:DescribeModel") and pipelines_role:
                isolated = (
                    statement.get("Condition") == {"Bool": {"sagemaker:NetworkIsolation": "true"}}
                    or action == "sagemaker:DescribeModel"
                )
                models = all(
                    str(r).endswith(":model/pipelines-*") for r in as_list(statement["Resource"])
                )
                if not (scoring and isolated and models):
                    problems.append(f"{where}: {action} is not used by the pipelines")
    return problems


LEDGER_CALLS = re.compile(r"\.table\.(\w+)\(")
TABLE_ACTIONS = {
    "get_item": "dynamodb:GetItem",
    "put_item": "dynamodb:PutItem",
    "update_item": "dynamodb:UpdateItem",
    "delete_item": "dynamodb:DeleteItem",
    "query": "dynamodb:Query",
    "scan": "dynamodb:Scan",
    "batch_get_item": "dynamodb:BatchGetItem",
    "batch_write_item": "dynamodb:BatchWriteItem",
}


def ledger_actions_called(handler_dir: Path) -> set[str]:
    """The DynamoDB actions the trigger's code calls on its ledger table."""
    calls = {
        call for path in handler_dir.glob("*.py") for call in LEDGER_CALLS.findall(path.read_text())
    }
    unknown = calls - set(TABLE_ACTIONS)
    if unknown:
        raise AssertionError(f"map the table calls {sorted(unknown)} to IAM actions")
    return {TABLE_ACTIONS[c] for c in calls}


def ledger_actions_granted(templates: Templates) -> dict[str, set[str]]:
    """Trigger role policy -> the DynamoDB actions it allows."""
    granted: dict[str, set[str]] = {}
    for where, statement in identity_statements(templates):
        if "StartTraining" in where and statement["Effect"] == "Allow":
            actions = {a for a in as_list(statement["Action"]) if a.startswith("dynamodb:")}
            granted.setdefault(where, set()).update(actions)
    return granted


# ---- notifications -----------------------------------------------------------------------

FREE_TEXT = re.compile(r"(?i)(failure_?reason|exit_?message|error|message)$")


def data_in_notifications(templates: Templates) -> list[str]:
    """Rules that email the topic send a message of named fields, never the raw event nor a
    free-text field (failure reasons may quote the data)."""
    problems = []
    for role, logical_id, rule in resources(templates, "AWS::Events::Rule"):
        for target in rule["Properties"].get("Targets", []):
            if "NotificationTopic" not in json.dumps(target["Arn"]):
                continue
            transformer = target.get("InputTransformer")
            if transformer is None:
                problems.append(f"{role}/{logical_id}: sends the raw event to the topic")
                continue
            for path in transformer.get("InputPathsMap", {}).values():
                if path in ("$", "$.detail") or FREE_TEXT.search(path.rsplit(".", 1)[-1]):
                    problems.append(f"{role}/{logical_id}: emails {path}")
    return problems


# ---- who may pass a role ---------------------------------------------------------------

# AWS managed policies the app attaches, none of which grants iam:PassRole (CloudWatch Logs and
# ENI actions only, per their documented contents): any other one must be reviewed here.
MANAGED_WITHOUT_PASS_ROLE = ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole")


def _sub(value: Any) -> Any:
    """`Fn::Sub` strings as the placeholders `resolve` gives (`${AWS::AccountId}` ->
    `<AWS::AccountId>`), so an ARN pattern written either way is matched."""
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        return re.sub(r"\$\{([^}]+)\}", r"<\1>", value["Fn::Sub"])
    if isinstance(value, list):
        return [_sub(v) for v in value]
    if isinstance(value, dict):
        return {k: _sub(v) for k, v in value.items()}
    return value


def principals_statements(templates: Templates) -> dict[str, list[dict[str, Any]]]:
    """`stack/<logical id>` of every role, user and group the app creates -> the statements of
    every identity policy it holds (inline, attached AWS::IAM::Policy and ManagedPolicy), with
    intrinsics resolved to `policy_evaluation` placeholders."""
    held: dict[str, list[dict[str, Any]]] = {}
    for stack, logical_id, resource in resources(templates, *IDENTITY_POLICIES, "AWS::IAM::Role"):
        properties = resource["Properties"]
        if resource["Type"] == "AWS::IAM::Role":
            inline = [p["PolicyDocument"] for p in properties.get("Policies", [])]
            held.setdefault(f"{stack}/{logical_id}", []).extend(
                s for d in inline for s in as_list(d["Statement"])
            )
            continue
        for kind in ("Roles", "Users", "Groups"):
            for holder in properties.get(kind, []):
                name = holder["Ref"] if isinstance(holder, dict) and "Ref" in holder else holder
                held.setdefault(f"{stack}/{name}", []).extend(
                    as_list(properties["PolicyDocument"]["Statement"])
                )
    return {
        who: [
            {k: _sub(resolve(v)) if k in ("Resource", "NotResource") else v for k, v in s.items()}
            for s in statements
        ]
        for who, statements in held.items()
    }


def role_passers(templates: Templates, stack: str, role: str, account: str) -> list[str]:
    """Every principal the app creates that IAM would allow to iam:PassRole the role `role`
    (logical id in `stack`), whichever way a statement names it (GetAtt/Ref in its stack, an
    import of it elsewhere, or an ARN pattern), and every AWS managed policy attached that is
    not known to lack PassRole."""

    names = {f"<{role}>", f"arn:<AWS::Partition>:iam::<AWS::AccountId>:role/{role}"}
    names.add(f"arn:aws:iam::{account}:role/{stack}-{role}-ABCDEF123456")
    for output in templates[stack].get("Outputs", {}).values():
        if resolve(output["Value"]) == f"<{role}>" and "Export" in output:
            names.add(f"<import:{resolve(output['Export']['Name'])}>")
    # passed to the one service that assumes it (a grant conditioned on another is no grant)
    to_sagemaker = {"iam:PassedToService": "sagemaker.amazonaws.com"}
    problems = [
        f"{who}: iam:PassRole on {name}"
        for who, statements in principals_statements(templates).items()
        for name in sorted(names)
        if decision(statements, Request("iam:PassRole", name, who, context=to_sagemaker)) == "allow"
    ]
    for stack_name, logical_id, resource in resources(templates, "AWS::IAM::Role"):
        for arn in resource["Properties"].get("ManagedPolicyArns", []):
            text = json.dumps(arn)
            if not any(f'/{name}"' in text for name in MANAGED_WITHOUT_PASS_ROLE):
                problems.append(f"{stack_name}/{logical_id}: managed policy {text} unreviewed")
    return problems
