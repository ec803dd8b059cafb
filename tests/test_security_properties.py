"""Issue #13's "must not"s, asserted on the synthesized templates of every environment (dev,
staging, prod), the model-monitor variant and dev with every security principal named.

Each property is a checker in tests/security_checks.py (or a request table evaluated against
the bucket policies, tests/policy_evaluation.py) that must find nothing in the real
templates; `test_removing_a_protection_is_caught` removes each protection from a copy of the
templates and expects its checker to object, so neither a refactor nor a `--snapshot-update`
can drop one silently.
"""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest

from constructs.bucket_policies import pipelines_reader_tag_key, writer_tag_key
from mlops_config import EnvironmentConfig
from tests import security_checks as checks
from tests.conftest import (
    BATCH,
    BATCH_VPC,
    MLFLOW_EXTERNAL,
    MLFLOW_MANAGED,
    MLFLOW_PROMOTE_TARGET,
    MLFLOW_SELF_HOSTED,
    MODEL_MONITOR,
    PROMOTE_SOURCE,
    PROMOTE_TARGET,
    PROMOTE_TARGET_BATCH,
    SERVERLESS,
    SKLEARN_BATCH,
    synthesized,
    variant_config,
)
from tests.policy_evaluation import Request, denied

pytestmark = pytest.mark.xdist_group("cdk")

ROOT_DIR = Path(__file__).resolve().parent.parent
KEY_ADMIN = "arn:aws:iam::111111111111:role/key-admins"
BREAK_GLASS = "arn:aws:iam::111111111111:role/break-glass"
PRODUCER = "arn:aws:iam::111111111111:role/data-producer"
NAMED = json.dumps(
    {
        "security": {
            "key_administrators": [KEY_ADMIN],
            "break_glass_principals": [BREAK_GLASS],
            "own_job_log_groups": True,
        },
        "data": {"producer_principals": [PRODUCER]},
    }
)
VARIANTS = {
    "dev": ("dev", "{}"),
    "staging": ("staging", "{}"),
    "prod": ("prod", "{}"),
    "model-monitor": ("dev", MODEL_MONITOR),
    "named-principals": ("dev", NAMED),
    "serverless": ("dev", SERVERLESS),
    "promote-source": ("dev", PROMOTE_SOURCE),
    "promote-target": ("staging", PROMOTE_TARGET),
    "promote-target-batch": ("staging", PROMOTE_TARGET_BATCH),
    "batch": ("dev", BATCH),
    "batch-vpc": ("dev", BATCH_VPC),
    "batch-sklearn": ("dev", SKLEARN_BATCH),
    "mlflow-managed": ("dev", MLFLOW_MANAGED),
    "mlflow-external": ("dev", MLFLOW_EXTERNAL),
    "mlflow-self-hosted": ("dev", MLFLOW_SELF_HOSTED),
    "promote-target-mlflow": ("staging", MLFLOW_PROMOTE_TARGET),
}
ALL = pytest.mark.parametrize("variant", sorted(VARIANTS))


@cache
def _templates(variant: str) -> str:
    return json.dumps({role: t.to_json() for role, t in synthesized(*VARIANTS[variant]).items()})


def templates(variant: str) -> checks.Templates:
    """The variant's templates by stack role (a fresh copy: tests may change it)."""
    return dict(json.loads(_templates(variant)))


def config(variant: str) -> EnvironmentConfig:
    """The variant's configuration, as `synthesized` merges its overrides."""
    return cast(EnvironmentConfig, variant_config(*VARIANTS[variant]))


def administrators(variant: str) -> set[str]:
    c = config(variant)
    if not c.security.key_administrators:
        return {f"arn:aws:iam::{c.account}:root"}
    deployer = f"arn:aws:iam::{c.account}:role/cdk-hnb659fds-cfn-exec-role-{c.account}-{c.region}"
    return {*c.security.key_administrators, deployer}


# ---- buckets: the requests their policies must refuse -----------------------------------

MODEL_KEY = "training/pipelines-x-Train-y/output/model.tar.gz"
OTHER_KEY = "arn:aws:kms:eu-west-1:111111111111:key/00000000-0000-0000-0000-000000000000"


def bucket_expectations(c: EnvironmentConfig) -> list[tuple[str, str, Request, bool]]:
    """(what, bucket, request, refused?) for every rule the bucket policies must enforce."""
    tag = writer_tag_key(c.project)
    role = f"arn:aws:iam::{c.account}:role/{c.prefix}"
    processing = (f"{role}-training-ProcessingJobRole", {tag: "pipeline-outputs"})
    trainer = (f"{role}-training-TrainingJobRole", {tag: "models"})
    pipelines = (f"{role}-training-PipelinesRole", {pipelines_reader_tag_key(c.project): "true"})
    copier = (f"{role}-training-CustomCDKBucketDeployment", {tag: "step-code"})
    model = f"pipelines/{c.pipeline_name}/{MODEL_KEY}"
    outputs = f"pipelines/{c.pipeline_name}/executions/e/Prepare/train/a.csv"
    someone = (f"arn:aws:iam::{c.account}:role/Administrator", {})
    root = (f"arn:aws:iam::{c.account}:root", {})
    keeper = (c.security.break_glass_principals or (root[0],))[0], {}

    def req(action: str, bucket: str, key: str, who: tuple[str, Any], **context: str) -> Request:
        return Request(action, f"<{bucket}>/{key}", who[0], who[1], context)

    sse = "s3:x-amz-server-side-encryption"
    rows: list[tuple[str, str, Request, bool]] = []
    for bucket, key in (("DataBucket", "DataKey"), ("ArtifactBucket", "ArtifactKey")):
        put = "capture/endpoint/data.jsonl" if bucket == "DataBucket" else "monitoring/r.html"
        rows += [
            (f"{bucket}: upload with another KMS key", bucket,
             req("s3:PutObject", bucket, put, someone, **{f"{sse}-aws-kms-key-id": OTHER_KEY}),
             True),
            (f"{bucket}: upload naming its own key", bucket,
             req("s3:PutObject", bucket, put, someone, **{f"{sse}-aws-kms-key-id": f"<{key}>"}),
             False),
            (f"{bucket}: upload with the default encryption", bucket,
             req("s3:PutObject", bucket, put, someone), False),
            (f"{bucket}: upload with SSE-S3", bucket,
             req("s3:PutObject", bucket, put, someone, **{sse: "AES256"}), True),
            (f"{bucket}: upload with a customer-provided key", bucket,
             req("s3:PutObject", bucket, put, someone, **{f"{sse}-customer-algorithm": "AES256"}),
             True),
        ]  # fmt: skip
    for bucket in ("DataBucket", "ArtifactBucket", "AccessLogBucket"):
        rows += [
            (f"{bucket}: a version deleted by {who[0]}", bucket,
             req("s3:DeleteObjectVersion", bucket, "x/y", who), who != keeper)
            for who in (someone, processing, trainer, keeper, *([root] if root != keeper else []))
        ]  # fmt: skip
    a = "ArtifactBucket"
    rows += [
        ("a served model deleted", a, req("s3:DeleteObject", a, model, trainer), True),
        ("a served model deleted by break glass", a, req("s3:DeleteObject", a, model, keeper),
         False),
        ("a model written by the training job role", a, req("s3:PutObject", a, model, trainer),
         False),
        ("a model overwritten by the processing job role", a,
         req("s3:PutObject", a, model, processing), True),
        ("a model overwritten by the pipelines' role", a,
         req("s3:PutObject", a, model, pipelines), True),
        ("a model overwritten by the step-code copier", a,
         req("s3:PutObject", a, model, copier), True),
        ("a model written by another principal", a, req("s3:PutObject", a, model, someone), True),
        ("a model written by break glass", a, req("s3:PutObject", a, model, keeper), False),
        ("job outputs written by the processing job role", a,
         req("s3:PutObject", a, outputs, processing), False),
        ("job outputs written by the training job role", a,
         req("s3:PutObject", a, outputs, trainer), False),  # its IAM policy refuses it
        ("job outputs written by the pipelines' role", a,
         req("s3:PutObject", a, outputs, pipelines), True),
        ("job outputs written by another principal", a,
         req("s3:PutObject", a, outputs, someone), True),
        ("step code written by the processing job role", a,
         req("s3:PutObject", a, "pipeline-code/abc/prepare.py", processing), True),
        ("step code written by the training job role", a,
         req("s3:PutObject", a, "pipeline-code/abc/prepare.py", trainer), True),
        ("step code written by its copier", a,
         req("s3:PutObject", a, "pipeline-code/abc/prepare.py", copier), False),
        ("step code deleted by its copier", a,
         req("s3:DeleteObject", a, "pipeline-code/abc/prepare.py", copier), True),
        ("a manifest written without If-None-Match", a,
         req("s3:PutObject", a, "dataset-manifests/d.json", someone), True),
        ("a manifest written with If-None-Match", a,
         req("s3:PutObject", a, "dataset-manifests/d.json", someone, **{"s3:if-none-match": "*"}),
         False),
        ("a manifest deleted", a, req("s3:DeleteObject", a, "dataset-manifests/d.json", someone),
         True),
    ]  # fmt: skip
    d = "DataBucket"
    for prefix in ("landing/", "ground-truth/"):
        if c.data.producer_principals:
            producer = (c.data.producer_principals[0], {})
            rows += [
                (f"a producer writes {prefix}", d, req("s3:PutObject", d, f"{prefix}x", producer),
                 False),
                (f"another principal writes {prefix}", d,
                 req("s3:PutObject", d, f"{prefix}x", someone), True),
                (f"another principal deletes in {prefix}", d,
                 req("s3:DeleteObject", d, f"{prefix}x", someone), True),
            ]  # fmt: skip
        else:  # documented default: any principal of the account with IAM permission
            rows.append(
                (f"any principal writes {prefix}", d, req("s3:PutObject", d, f"{prefix}x", someone),
                 False)
            )  # fmt: skip
    return rows


def bucket_policy_violations(t: checks.Templates, c: EnvironmentConfig) -> list[str]:
    policies = {
        r["Properties"]["Bucket"]["Ref"]: r["Properties"]["PolicyDocument"]
        for r in t["data"]["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy"
    }
    return [
        f"{what}: {'allowed' if refuse else 'refused'}"
        for what, bucket, request, refuse in bucket_expectations(c)
        if denied(policies[bucket], request) != refuse
    ]


def writer_tag_problems(t: checks.Templates, c: EnvironmentConfig) -> list[str]:
    """Exactly the processing job role writes pipeline outputs, the training job role models,
    BucketDeployment's role step code, and the pipelines' role alone carries the reader tag (vpc
    mode: it reads property files from outside): no other role carries these tags."""
    keys = {writer_tag_key(c.project): "writer", pipelines_reader_tag_key(c.project): "reader"}
    tagged = sorted(
        (role, logical_id, keys[tag["Key"]], tag["Value"])
        for role, logical_id, r in checks.resources(t, "AWS::IAM::Role")
        for tag in r["Properties"].get("Tags", [])
        if tag["Key"] in keys
    )
    names = {
        "ProcessingJobRole": "the processing job role",
        "TrainingJobRole": "the training job role",
        "PipelinesRole": "the pipelines' role",
        "CustomCDKBucketDeployment": "the copier",
        "PromotionReceiver": "the promotion receiver",
    }
    kinds = [
        (role, next((n for p, n in names.items() if lid.startswith(p)), lid), key, value)
        for role, lid, key, value in tagged
    ]
    # a promotion target trains nothing: its receiver writes its models
    models = "the training job role" if c.promotion.trains else "the promotion receiver"
    expected = [
        ("training", "the processing job role", "writer", "pipeline-outputs"),
        ("training", models, "writer", "models"),
        ("training", "the copier", "writer", "step-code"),
        ("training", "the pipelines' role", "reader", "true"),
    ]
    return [] if sorted(kinds) == sorted(expected) else [f"writer and reader tags on {tagged}"]


# ---- the properties, on every variant -----------------------------------------------------


@ALL
def test_keys_are_used_only_through_their_services(variant: str) -> None:
    assert checks.kms_use_outside_services(templates(variant)) == []


@ALL
def test_keys_are_administered_by_the_named_principals_only(variant: str) -> None:
    assert checks.key_policy_problems(templates(variant), administrators(variant)) == []


@ALL
def test_each_data_class_is_encrypted_with_its_own_key(variant: str) -> None:
    t = templates(variant)
    data = t["data"]["Resources"]

    def key_of(resource: dict[str, Any], *path: str) -> str:
        value: Any = resource["Properties"]
        for part in path:
            value = value[part][0] if isinstance(value[part], list) else value[part]
        text = json.dumps(value)
        (key,) = [k for k in ("DataKey", "ArtifactKey", "OperationsKey") if k in text]
        return key

    encryption = ("BucketEncryption", "ServerSideEncryptionConfiguration")
    assert key_of(data["DataBucket"], *encryption) == "DataKey"
    assert key_of(data["ArtifactBucket"], *encryption) == "ArtifactKey"
    for ledger in ("DatasetLedger", "EvaluationLedger"):
        assert key_of(data[ledger], "SSESpecification") == "DataKey"
    assert key_of(data["NotificationTopic"], "KmsMasterKeyId") == "OperationsKey"
    for kind, prop in (
        ("AWS::SQS::Queue", "KmsMasterKeyId"),
        ("AWS::Logs::LogGroup", "KmsKeyId"),
        ("AWS::Lambda::Function", "KmsKeyArn"),
    ):
        for role, logical_id, resource in checks.resources(t, kind):
            if prop in resource["Properties"]:
                assert key_of(resource, prop) == "OperationsKey", f"{role}/{logical_id}"
    for _, _, pipeline in checks.resources(t, "Custom::SageMakerPipeline"):
        assert key_of(pipeline, "Substitutions", "KmsKeyArn") == "ArtifactKey"
    for _, _, endpoint_config in checks.resources(t, "AWS::SageMaker::EndpointConfig"):
        if variant == "serverless":  # no volume and no capture: nothing of ours to encrypt
            assert {"KmsKeyId", "DataCaptureConfig"}.isdisjoint(endpoint_config["Properties"])
            continue
        assert key_of(endpoint_config, "KmsKeyId") == "ArtifactKey"
        assert key_of(endpoint_config, "DataCaptureConfig", "KmsKeyId") == "DataKey"


@ALL
def test_every_queue_and_log_group_is_encrypted_with_an_environment_key(variant: str) -> None:
    assert checks.unencrypted_queues_and_log_groups(templates(variant)) == []


@ALL
def test_retained_tables_refuse_deletion(variant: str) -> None:
    t = templates(variant)
    c = config(variant)
    ledgers = [
        "DatasetLedger",
        "EvaluationLedger",
        *(["ScoringLedger"] if c.serving.is_batch else []),
    ]
    retained = [f"data/{ledger}" for ledger in ledgers] if c.retain else []
    assert sorted(checks.retained_tables(t)) == retained
    assert checks.unprotected_retained_tables(t) == []


@ALL
def test_bucket_policies_refuse_what_they_must(variant: str) -> None:
    assert bucket_policy_violations(templates(variant), config(variant)) == []


@ALL
def test_only_the_one_writer_of_models_and_of_step_code_is_tagged_as_such(variant: str) -> None:
    assert writer_tag_problems(templates(variant), config(variant)) == []


@ALL
def test_every_queue_and_topic_policy_names_its_source(variant: str) -> None:
    assert checks.unscoped_service_access(templates(variant)) == []


@ALL
def test_every_dead_letter_queue_alarms(variant: str) -> None:
    t = templates(variant)
    # trigger x2, job tagger, deployer x2, drift (evidently, on schedule or, in batch serving,
    # per scoring run; none with model-monitor, or with serverless serving, which captures
    # nothing); staging adds the schedule's; batch adds the scoring trigger's, the predictions
    # marker's and the scoring-model cleanup's; promote mode: the sender's, and a target's
    # receiver x2 in place of the landing trigger
    batch = config(variant).serving.is_batch
    no_drift = variant in ("model-monitor", "serverless")
    expected = 5 + (not no_drift) + (variant == "staging") + 3 * batch
    expected += {
        "promote-source": 1,
        "promote-target": 2,
        "promote-target-batch": 2,
        "promote-target-mlflow": 2,
    }.get(variant, 0)
    expected += config(variant).tracking.enabled  # the run tracker's
    assert len(checks.dead_letter_queues(t)) == expected
    assert checks.unalarmed_dead_letter_queues(t) == []


@ALL
def test_dead_letter_queues_admit_only_their_source_queue(variant: str) -> None:
    assert checks.open_redrive(templates(variant)) == []


@ALL
def test_every_asynchronously_invoked_function_reports_its_failures(variant: str) -> None:
    t = templates(variant)
    invoked = sorted(f for (_, f) in checks.asynchronous_functions(t))
    tracker = ["RunTrackerFunc"] if config(variant).tracking.enabled else []
    assert [f[:14] for f in invoked] == sorted(
        [
            *(
                ["JobTaggerFunct"]
                if variant in ("model-monitor", "serverless")
                else ["DriftStarterFu", "JobTaggerFunct", "PredictionsMar", "ScoringModelCl"]
                if config(variant).serving.is_batch
                else ["DriftStarterFu", "JobTaggerFunct"]
            ),
            *tracker,
        ]
    )
    assert checks.silent_asynchronous_functions(t) == []


@ALL
def test_pass_role_names_the_role_and_the_service(variant: str) -> None:
    assert checks.pass_role_problems(templates(variant)) == []


@ALL
def test_roles_are_no_broader_than_the_code(variant: str) -> None:
    t = templates(variant)
    assert checks.broad_job_and_image_access(t, scoring=config(variant).serving.is_batch) == []
    sagemaker = [
        s
        for where, s in checks.identity_statements(t)
        if any(role in where for role in checks.PIPELINE_ROLES)
    ]
    actions = {a for s in sagemaker if s["Effect"] == "Allow" for a in checks.as_list(s["Action"])}
    assert not {a for a in actions if a.startswith("s3:Delete")}
    called = checks.ledger_actions_called(ROOT_DIR / "lambdas" / "start_training")
    # (in a VPC each function also has a network-interface policy, with no table action)
    granted = {where: a for where, a in checks.ledger_actions_granted(t).items() if a}
    # one trigger per ledger: landing/ (none in a promotion target), ground-truth/ and (batch
    # serving) score/
    triggers = 2 + config(variant).serving.is_batch - variant.startswith("promote-target")
    assert len(granted) == triggers and all(actions == called for actions in granted.values())


@ALL
def test_no_email_carries_a_failure_reason_or_a_raw_event(variant: str) -> None:
    assert checks.data_in_notifications(templates(variant)) == []


def test_sagemaker_job_log_groups_are_owned_only_where_configured() -> None:
    def job_groups(variant: str) -> list[dict[str, Any]]:
        return [
            r["Properties"]
            for _, _, r in checks.resources(templates(variant), "AWS::Logs::LogGroup")
            if r["Properties"].get("LogGroupName", "").endswith("Jobs")
        ]

    assert job_groups("dev") == []  # shared by every SageMaker job of the account
    owned = job_groups("named-principals")
    assert sorted(g["LogGroupName"] for g in owned) == [
        "/aws/sagemaker/ProcessingJobs",
        "/aws/sagemaker/TrainingJobs",
    ]
    assert all(g["RetentionInDays"] == 365 and "OperationsKey" in json.dumps(g) for g in owned)


# ---- step code ----------------------------------------------------------------------------

UNPICKLERS = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "_pickle"}


def unpickling(source: str, name: str) -> list[str]:
    """Imports of unpickling modules and calls that unpickle (`read_pickle`,
    `allow_pickle=True`) in one Python module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [
                node.module or ""]  # fmt: skip
            found += [f"{name}: imports {m}" for m in modules if m.split(".")[0] in UNPICKLERS]
        if isinstance(node, ast.Attribute) and node.attr == "read_pickle":
            found.append(f"{name}: read_pickle")
        if isinstance(node, ast.keyword) and node.arg == "allow_pickle":
            found.append(f"{name}: allow_pickle")
    return found


def step_code_unpickling() -> list[str]:
    roots = [ROOT_DIR / "pipeline_code" / "steps", ROOT_DIR / "pipeline_code" / "monitoring"]
    return [
        problem
        for root in roots
        for path in sorted(root.rglob("*.py"))
        for problem in unpickling(path.read_text(), str(path.relative_to(ROOT_DIR)))
    ]


#: The one exception, pipeline.trainer = sklearn, whose model has no format but joblib's
#: pickle: the trainer writes it, Evaluate loads it only from this run's training output or a
#: registry-verified archive (test_train_sklearn), the endpoint only from its own archive.
SKLEARN_MODEL_PICKLES = [
    "pipeline_code/steps/evaluate/model_loading.py: imports joblib",
    "pipeline_code/steps/train/inference.py: imports joblib",
    "pipeline_code/steps/train_sklearn/train_sklearn.py: imports joblib",
]


def test_no_step_code_unpickles_anything_but_the_scikit_learn_model() -> None:
    assert step_code_unpickling() == SKLEARN_MODEL_PICKLES


def unpickling_calls(source: str, name: str) -> list[str]:
    """`<file>: <module>.<call> in <function>` for each call of an unpickling module's function
    (`joblib.load(...)`), and the functions that call `_sklearn_model` (Evaluate's one
    unpickling function)."""
    found = []
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, ast.FunctionDef):
            continue
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            call = node.func
            if (
                isinstance(call, ast.Attribute)
                and isinstance(call.value, ast.Name)
                and call.value.id in UNPICKLERS
                and call.attr in {"load", "loads", "Unpickler"}
            ):
                found.append(f"{name}: {call.value.id}.{call.attr} in {function.name}")
            if isinstance(call, ast.Name) and call.id == "_sklearn_model":
                found.append(f"{name}: _sklearn_model in {function.name}")
    return found


def test_the_scikit_learn_model_is_unpickled_at_two_call_sites_only() -> None:
    """Evaluate's one `joblib.load` is in `_sklearn_model`, reached only from `load_model_dir`,
    whose `trainer` (keyword-only, no default) must be sklearn (test_evaluate_pickle_refusal
    runs it); the endpoint's is its own archive's `model_fn`."""
    roots = [ROOT_DIR / "pipeline_code" / "steps", ROOT_DIR / "pipeline_code" / "monitoring"]
    calls = [
        call
        for root in roots
        for path in sorted(root.rglob("*.py"))
        for call in unpickling_calls(path.read_text(), str(path.relative_to(ROOT_DIR)))
    ]
    assert calls == [
        "pipeline_code/steps/evaluate/model_loading.py: _sklearn_model in load_model_dir",
        "pipeline_code/steps/evaluate/model_loading.py: joblib.load in _sklearn_model",
        "pipeline_code/steps/train/inference.py: joblib.load in model_fn",
    ]
    loader = next(
        node
        for node in ast.walk(ast.parse(Path(ROOT_DIR, calls[0].split(":")[0]).read_text()))
        if isinstance(node, ast.FunctionDef) and node.name == "load_model_dir"
    )
    keyword_only = {
        a.arg: d for a, d in zip(loader.args.kwonlyargs, loader.args.kw_defaults, strict=True)
    }
    assert keyword_only == {"verified": None, "trainer": None}


@pytest.mark.parametrize(
    "source",
    ["def f():\n    import joblib\n    joblib.load('m')", "def f():\n    pickle.loads(b'')"],
)
def test_the_call_scan_finds_unpickling_calls(source: str) -> None:
    assert unpickling_calls(source, "probe.py")


@pytest.mark.parametrize(
    "source",
    [
        "import pickle",
        "from joblib import load",
        "import pandas as pd\npd.read_pickle('m')",
        "import numpy as np\nnp.load('m', allow_pickle=True)",
    ],
)
def test_the_pickle_scan_finds_unpickling(source: str) -> None:
    assert unpickling(source, "probe.py")


# ---- each protection, removed, is caught ----------------------------------------------------


def _statements(t: checks.Templates, where: str) -> list[dict[str, Any]]:
    return list(_document(t, where)["Statement"])


def _find(t: checks.Templates, role: str, prefix: str, kind: str | None = None) -> str:
    """`role/<logical id>` of the one resource (of `kind`) whose id starts with `prefix`."""
    (logical_id,) = [
        k
        for k, r in t[role]["Resources"].items()
        if k.startswith(prefix) and (kind is None or r["Type"] == kind)
    ]
    return f"{role}/{logical_id}"


def _properties(t: checks.Templates, where: str) -> dict[str, Any]:
    role, logical_id = where.split("/")
    props: dict[str, Any] = t[role]["Resources"][logical_id]["Properties"]
    return props


def _drop_sid(t: checks.Templates, where: str, sid: str) -> None:
    statements = _statements(t, where)
    kept = [s for s in statements if s.get("Sid") != sid]
    assert len(kept) == len(statements) - 1, sid
    _document(t, where)["Statement"] = kept


def _document(t: checks.Templates, where: str) -> dict[str, Any]:
    role, logical_id = where.split("/")
    props = t[role]["Resources"][logical_id]["Properties"]
    document: dict[str, Any] = props.get("PolicyDocument") or props["KeyPolicy"]
    return document


def _edit(t: checks.Templates, where: str, match: Callable[[dict[str, Any]], bool],
          change: Callable[[dict[str, Any]], Any]) -> None:  # fmt: skip
    hits = [s for s in _statements(t, where) if match(s)]
    assert hits, where
    for statement in hits:
        change(statement)


def _delete(t: checks.Templates, where: str) -> None:
    role, logical_id = where.split("/")
    del t[role]["Resources"][logical_id]


def _kms(s: dict[str, Any]) -> bool:
    return any(str(a).startswith("kms:") for a in checks.as_list(s["Action"]))


MUTATIONS: dict[
    str, tuple[Callable[[checks.Templates], Any], Callable[[checks.Templates], list[str]]]
] = {
    "kms-use-without-via-service": (
        lambda t: _edit(
            t,
            _find(t, "training", "TriggerStartTrainingRoleDefaultPolicy"),
            _kms,
            lambda s: s.pop("Condition"),
        ),
        checks.kms_use_outside_services,
    ),
    "key-used-directly-by-the-account": (
        lambda t: _edit(
            t,
            "data/DataKey",
            lambda s: s.get("Sid") == "UseOnlyThroughServices",
            lambda s: s.pop("Condition"),
        ),
        lambda t: checks.key_policy_problems(t, administrators("dev")),
    ),
    "key-administered-by-anyone": (
        lambda t: _edit(
            t,
            "data/ArtifactKey",
            lambda s: s.get("Sid") == "KeyAdministration",
            lambda s: s.update(Principal={"AWS": "*"}),
        ),
        lambda t: checks.key_policy_problems(t, administrators("dev")),
    ),
    "key-publishers-of-any-account": (
        lambda t: _edit(
            t,
            "data/OperationsKey",
            lambda s: s.get("Sid") == "AllowServicePublishers",
            lambda s: s.pop("Condition"),
        ),
        lambda t: checks.key_policy_problems(t, administrators("dev")),
    ),
    "queue-admits-any-rule-of-the-account": (
        lambda t: _edit(
            t,
            _find(t, "training", "TriggerEventsPolicy"),
            lambda s: s["Effect"] == "Allow",
            lambda s: s.update(Condition={"StringEquals": {"aws:SourceAccount": "1"}}),
        ),
        checks.unscoped_service_access,
    ),
    "topic-admits-any-rule": (
        lambda t: _edit(
            t,
            _find(t, "data", "NotificationTopicPolicy"),
            lambda s: s.get("Sid") == "RulesOfThisEnvironmentPublish",
            lambda s: s.pop("Condition"),
        ),
        checks.unscoped_service_access,
    ),
    "dead-letter-alarm-removed": (
        lambda t: _delete(t, _find(t, "training", "JobTaggerDeadLettersNotEmpty")),
        checks.unalarmed_dead_letter_queues,
    ),
    "dead-letter-queue-open-to-any-source": (
        lambda t: _properties(
            t, _find(t, "training", "TriggerDeadLetters", "AWS::SQS::Queue")
        ).update(RedriveAllowPolicy={"redrivePermission": "allowAll"}),
        checks.open_redrive,
    ),
    "async-function-without-failure-destination": (
        lambda t: _delete(t, _find(t, "training", "JobTaggerFunctionEventInvokeConfig")),
        checks.silent_asynchronous_functions,
    ),
    "async-function-without-errors-alarm": (
        lambda t: _delete(t, _find(t, "training", "JobTaggerErrorsAlarm")),
        checks.silent_asynchronous_functions,
    ),
    "queue-with-sqs-managed-encryption": (
        lambda t: _properties(t, _find(t, "training", "TriggerEvents", "AWS::SQS::Queue")).update(
            KmsMasterKeyId=None, SqsManagedSseEnabled=True
        ),
        checks.unencrypted_queues_and_log_groups,
    ),
    "dead-letter-queue-with-the-aws-managed-key": (
        lambda t: _properties(
            t, _find(t, "serving", "DeployerDeadLetters", "AWS::SQS::Queue")
        ).update(KmsMasterKeyId="alias/aws/sqs"),
        checks.unencrypted_queues_and_log_groups,
    ),
    "log-group-without-a-key": (
        lambda t: _properties(
            t, _find(t, "monitoring", "DriftStarterLogs", "AWS::Logs::LogGroup")
        ).pop("KmsKeyId"),
        checks.unencrypted_queues_and_log_groups,
    ),
    "no-queues-or-log-groups-to-check": (
        lambda t: [
            template["Resources"].pop(logical_id)
            for role, logical_id, _ in list(
                checks.resources(t, "AWS::SQS::Queue", "AWS::Logs::LogGroup")
            )
            for template in [t[role]]
        ],
        checks.unencrypted_queues_and_log_groups,
    ),
    "pass-role-to-any-service": (
        lambda t: _edit(
            t,
            _find(t, "training", "PipelineHandlerRoleDefaultPolicy"),
            lambda s: s["Action"] == "iam:PassRole",
            lambda s: s.pop("Condition"),
        ),
        checks.pass_role_problems,
    ),
    "jobs-of-any-name": (
        lambda t: _edit(
            t,
            _find(t, "training", "PipelinesRoleDefaultPolicy"),
            lambda s: "sagemaker:CreateTrainingJob" in s["Action"],
            lambda s: s.update(Resource="arn:aws:sagemaker:eu-west-1:1:training-job/*"),
        ),
        checks.broad_job_and_image_access,
    ),
    "images-of-any-account": (
        lambda t: _edit(
            t,
            _find(t, "training", "ProcessingJobRoleDefaultPolicy"),
            lambda s: "ecr:BatchGetImage" in s["Action"],
            lambda s: s.update(Resource="arn:aws:ecr:eu-west-1:*:repository/sagemaker-*"),
        ),
        checks.broad_job_and_image_access,
    ),
    "failure-reason-emailed": (
        lambda t: [
            tgt["InputTransformer"]["InputPathsMap"].update(reason="$.detail.FailureReason")
            for _, _, r in checks.resources(t, "AWS::Events::Rule")
            for tgt in r["Properties"].get("Targets", [])
            if "InputTransformer" in tgt and "NotificationTopic" in json.dumps(tgt["Arn"])
        ],
        checks.data_in_notifications,
    ),
    **{
        f"bucket-policy-without-{sid}": (
            lambda t, sid=sid, bucket=bucket: _drop_sid(t, _find(t, "data", bucket), sid),
            lambda t: bucket_policy_violations(t, config("dev")),
        )
        for bucket, sid in (
            ("DataBucketPolicy", "DenyOtherKmsKeys"),
            ("ArtifactsBucketPolicy", "DenyOtherEncryption"),
            ("ArtifactsBucketPolicy", "DenyCustomerProvidedKeys"),
            ("AccessLogBucketPolicy", "DenyDeletingVersions"),
            ("ArtifactsBucketPolicy", "ModelsNeverDeleted"),
            ("ArtifactsBucketPolicy", "ModelsOneWriter"),
            ("ArtifactsBucketPolicy", "PipelineOutputsOnlyByJobRoles"),
            ("ArtifactsBucketPolicy", "StepCodeOneWriter"),
            ("ArtifactsBucketPolicy", "StepCodeNeverDeleted"),
            ("ArtifactsBucketPolicy", "DatasetManifestsNeverReplaced"),
            ("ArtifactsBucketPolicy", "DatasetManifestsNeverDeleted"),
        )
    },
    "model-writer-tag-on-the-processing-job-role": (
        lambda t: [
            tag.update(Value="models")
            for tag in _properties(t, _find(t, "training", "ProcessingJobRole", "AWS::IAM::Role"))[
                "Tags"
            ]
            if tag["Key"] == writer_tag_key("mlops-loop")
        ],
        lambda t: writer_tag_problems(t, config("dev")),
    ),
    "writer-tag-on-another-role": (
        lambda t: (
            _properties(t, _find(t, "training", "TriggerStartTrainingRole", "AWS::IAM::Role"))
            .setdefault("Tags", [])
            .append({"Key": writer_tag_key("mlops-loop"), "Value": "pipeline-outputs"})
        ),
        lambda t: writer_tag_problems(t, config("dev")),
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_removing_a_protection_is_caught(mutation: str) -> None:
    remove, check = MUTATIONS[mutation]
    t = copy.deepcopy(templates("dev"))
    assert check(t) == []
    remove(t)
    assert check(t) != []


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("DeletionProtectionEnabled", False),
        ("DeletionProtectionEnabled", None),
        ("UpdateReplacePolicy", "Delete"),
        ("PointInTimeRecoverySpecification", {"PointInTimeRecoveryEnabled": False}),
    ],
)
def test_a_retained_table_losing_a_protection_is_caught(change: str, value: Any) -> None:
    t = copy.deepcopy(templates("prod"))
    assert checks.unprotected_retained_tables(t) == []
    table = t["data"]["Resources"]["DatasetLedger"]
    where = table if change == "UpdateReplacePolicy" else table["Properties"]
    if value is None:
        del where[change]
    else:
        where[change] = value
    assert checks.unprotected_retained_tables(t) != []


def test_a_protected_table_that_is_not_retained_is_caught() -> None:
    t = copy.deepcopy(templates("dev"))
    assert checks.retained_tables(t) == [] and checks.unprotected_retained_tables(t) == []
    t["data"]["Resources"]["EvaluationLedger"]["Properties"]["DeletionProtectionEnabled"] = True
    assert checks.unprotected_retained_tables(t) == [
        "data/EvaluationLedger: deletion protection on a table not retained"
    ]


def test_landing_data_by_anyone_but_the_producers_is_caught_once_they_are_named() -> None:
    t = copy.deepcopy(templates("named-principals"))
    assert bucket_policy_violations(t, config("named-principals")) == []
    _drop_sid(t, _find(t, "data", "DataBucketPolicy"), "OnlyProducersLandData")
    assert bucket_policy_violations(t, config("named-principals")) != []


def test_a_pickle_import_in_step_code_is_caught(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import pickle\n")
    assert unpickling(probe.read_text(), "probe.py") == ["probe.py: imports pickle"]


# ---- the managed tracking server's role: only SageMaker, for that server -----------------
# Its trust policy can check only aws:SourceAccount: no AWS document states that SageMaker sends
# aws:SourceArn when it assumes a tracking server's role (README, security). So whoever may pass
# the role to SageMaker could hand it to another server or job, and with it the artifact bucket's
# exception for mlflow/ outside the VPC endpoint: no principal the app creates may pass it.
SERVER_ROLE_VARIANTS = ("mlflow-managed", "mlflow-vpc-created")  # the managed server's


@cache
def _variant_templates(name: str) -> str:
    from tests import variants

    built = synthesized(*variants.VARIANTS[name])
    return json.dumps({role: t.to_json() for role, t in built.items()})


def _account(name: str) -> str:
    from tests import variants

    return cast(EnvironmentConfig, variant_config(*variants.VARIANTS[name])).account


def _server_role(t: checks.Templates) -> str:
    [server] = [
        r
        for r in t["data"]["Resources"].values()
        if r["Type"] == "AWS::SageMaker::MlflowTrackingServer"
    ]
    role: str = server["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    return role


@pytest.mark.parametrize("variant", SERVER_ROLE_VARIANTS)
def test_no_principal_of_the_app_may_pass_the_tracking_servers_role(variant: str) -> None:
    t = json.loads(_variant_templates(variant))
    assert checks.role_passers(t, "data", _server_role(t), _account(variant)) == []


@pytest.mark.parametrize(
    ("resource", "caught_as"),
    [
        ({"Fn::GetAtt": ["<server role>", "Arn"]}, {"<{role}>"}),
        ("*", {"<{role}>", "arn:<AWS::Partition>:iam::<AWS::AccountId>:role/{role}", "literal"}),
        (
            {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"},
            {"arn:<AWS::Partition>:iam::<AWS::AccountId>:role/{role}"},
        ),
        ("arn:aws:iam::111111111111:role/data-*", {"literal"}),
    ],
)
def test_a_grant_to_pass_the_tracking_servers_role_is_caught(
    resource: Any, caught_as: set[str]
) -> None:
    t = json.loads(_variant_templates("mlflow-managed"))
    role = _server_role(t)
    resource = json.loads(json.dumps(resource).replace("<server role>", role))
    # the tracker's own role (in the training stack) gains a PassRole to SageMaker
    [policy] = [
        r
        for k, r in t["training"]["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and k.startswith("RunTrackerFunctionRoleDefaultPolicy")
    ]
    [tracker_role] = [r["Ref"] for r in policy["Properties"]["Roles"]]
    policy["Properties"]["PolicyDocument"]["Statement"].append(
        {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": resource,
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        }
    )
    account = _account("mlflow-managed")
    literal = f"arn:aws:iam::{account}:role/data-{role}-ABCDEF123456"
    names = {literal if n == "literal" else n.format(role=role) for n in caught_as}
    assert checks.role_passers(t, "data", role, account) == [
        f"training/{tracker_role}: iam:PassRole on {name}" for name in sorted(names)
    ]


def test_an_unreviewed_managed_policy_is_caught() -> None:
    t = json.loads(_variant_templates("mlflow-managed"))
    [role] = [r for r in t["data"]["Resources"].values() if r["Type"] == "AWS::IAM::Role"][:1]
    role["Properties"]["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"]
    assert checks.role_passers(t, "data", _server_role(t), _account("mlflow-managed")) != []
