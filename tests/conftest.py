"""Shared fixtures: the synthesized app of each environment, built once per session."""

from __future__ import annotations

import os

# XGBoost's OpenMP threads spin while idle; on 2 shared cores that slows training 10x.
# Must be set before xgboost is first imported by any test module.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Before aws_cdk starts its jsii runtime: Node 20 works, its end-of-life banner is noise.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# No app here runs CDK's built-in CloudFormation schema validation (about 6 s to start in
# every process, warnings only): cfn-lint checks the templates (stacks/policy_validation.py).
os.environ.setdefault("CDK_VALIDATION", "false")
import hashlib
import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import pytest

from mlops_config import parse_environment, read_cdk_json_context

if TYPE_CHECKING:  # aws_cdk and the stacks are imported where an app is built: a process that
    # runs only pure-Python tests (a file alone, a mutant's run) never starts jsii (~2.7 CPU-s).
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

HASH = re.compile(r"[0-9a-f]{64}")


def _share_botocore_models() -> None:
    """Parse each botocore model file once per test process, not once per session.

    moto replaces boto3's default session whenever a mock starts, and every new session's
    loader parses the service models again (the SageMaker model alone is ~0.1 s of JSON):
    that was most of each moto test's set-up. Within a session botocore already hands the
    same parsed model to every client (the loader's instance cache), so sharing it across
    sessions changes nothing else.
    """
    import botocore.loaders

    shared: dict[tuple[Any, ...], Any] = {}
    for name in ("load_service_model", "load_data"):
        original = getattr(botocore.loaders.Loader, name)

        def cached(
            self: Any, *args: Any, _original: Any = original, _name: str = name, **kwargs: Any
        ) -> Any:
            key = (_name, tuple(self.search_paths), args, tuple(sorted(kwargs.items())))
            if key not in shared:
                shared[key] = _original(self, *args, **kwargs)
            return shared[key]

        setattr(botocore.loaders.Loader, name, cached)


_share_botocore_models()


def new_app(**kwargs: Any) -> cdk.App:
    """A CDK app with cdk.json's context (feature flags included), as the CLI would build it."""
    import aws_cdk as cdk

    return cdk.App(
        context=read_cdk_json_context(), builtin_cloud_formation_validation=False, **kwargs
    )


def assembly_dir(env: str, overrides: str = "{}") -> str:
    """Where `synthesized(env, overrides)` writes its cloud assembly (this worker's own)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    digest = hashlib.sha256(overrides.encode()).hexdigest()[:8]
    variant = env if overrides == "{}" else f"{env}-{digest}"
    return os.path.join(".build", "test-cdk.out", worker, variant)


def variant_config(env: str, overrides: str = "{}") -> Any:
    """`env`'s configuration with `overrides` (JSON) merged into its block of cdk.json, one
    level deep per section (e.g. '{"monitoring": {"engine": "model-monitor"}}'); a
    `promotion` key sets cdk.json's top-level promotion block instead."""
    import json

    context = read_cdk_json_context()
    block = context["environments"][env]
    for section, values in json.loads(overrides).items():
        if section == "promotion":
            context[section] = values
            continue
        block[section] = {**block.get(section, {}), **values}
    return parse_environment(context, env)


@cache
def _generate_definitions_of_every_synth() -> None:
    """The pipeline definitions of every environment and variant the tests synthesize, in one
    generator process (the SDK's import paid once) before the first synth needs one."""
    from stacks.pipeline_definitions import generate_all_pipelines
    from tests.variants import VARIANTS

    builds = [(env, "{}") for env in read_cdk_json_context()["environments"]]
    generate_all_pipelines([variant_config(*build) for build in [*builds, *VARIANTS.values()]])


@cache
def synthesized(env: str, overrides: str = "{}") -> dict[str, Template]:
    """Synthesize one environment as CI does (cdk-nag and the Control Tower rules) and return
    its templates by stack role (`data`, `training`, ...). Raises on any unacknowledged finding.

    `overrides`: JSON merged into the environment's block of cdk.json (see `variant_config`).
    """
    from aws_cdk.assertions import Template

    from stacks.app_builder import build_environment
    from stacks.policy_validation import add_policy_checks

    _generate_definitions_of_every_synth()
    app = new_app(outdir=assembly_dir(env, overrides))
    stacks = build_environment(app, variant_config(env, overrides))
    add_policy_checks(app, control_tower=True)
    app.synth()
    return {role: Template.from_stack(stack) for role, stack in stacks.items()}


@pytest.fixture(scope="session")
def dev() -> dict[str, Template]:
    return synthesized("dev")


@pytest.fixture(scope="session")
def prod() -> dict[str, Template]:
    return synthesized("prod")


MODEL_MONITOR = '{"monitoring": {"engine": "model-monitor"}}'
# Serverless Inference, with provisioned concurrency (every ServerlessConfig property set).
SERVERLESS = (
    '{"serving": {"mode": "serverless", "memory_size_mb": 3072, "max_concurrency": 10, '
    '"provisioned_concurrency": 2}}'
)


# promote mode with the default chain (dev trains; staging, then prod receive): dev sends,
# staging receives and sends (the targets' retrain settings cleared: they train nothing).
PROMOTE_SOURCE = '{"promotion": {"mode": "promote"}}'
PROMOTE_TARGET = '{"promotion": {"mode": "promote"}, "trigger": {"retrain_schedule": null}}'
# A promotion target that scores in batch: the received copies score its score/ versions.
PROMOTE_TARGET_BATCH = (
    '{"promotion": {"mode": "promote"}, "trigger": {"retrain_schedule": null}, '
    '"serving": {"mode": "batch"}}'
)
PROMOTE_VPC_TARGET = (
    '{"promotion": {"mode": "promote"}, "trigger": {"retrain_schedule": null}, '
    '"network": {"mode": "vpc", "create_vpc": true}}'
)


# Batch scoring, with every serving.batch key set.
BATCH = (
    '{"serving": {"mode": "batch", "batch": {"instance_type": "ml.c5.xlarge", "instance_count": 2, '
    '"id_column": "txn_id", "max_payload_mb": 20, "max_concurrent_transforms": 4}}}'
)


# Batch scoring of a scikit-learn model (pipeline.trainer sklearn, #15).
SKLEARN_BATCH = '{"pipeline": {"trainer": "sklearn"}, "serving": {"mode": "batch"}}'

# Batch scoring in a created VPC.
BATCH_VPC = '{"serving": {"mode": "batch"}, "network": {"mode": "vpc", "create_vpc": true}}'

# tracking.mlflow: a managed tracking server of the Data stack (every key set), or an existing one.
MLFLOW_MANAGED = (
    '{"tracking": {"mlflow": "managed", "server_size": "Medium", "mlflow_version": "3.0"}}'
)
MLFLOW_EXTERNAL = (
    '{"tracking": {"mlflow": "external", "server_arn": '
    '"arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/team-mlflow"}}'
)
# A self-hosted MLflow server at an https URL, its credentials in Secrets Manager.
MLFLOW_SELF_HOSTED = (
    '{"tracking": {"mlflow": "external", "server_uri": "https://mlflow.example.com", '
    '"credentials_secret_arn": '
    '"arn:aws:secretsmanager:eu-west-1:111111111111:secret:team/mlflow-a1B2c3"}}'
)
# A promotion target (staging) tracking its eval-only pipeline on a managed server.
MLFLOW_PROMOTE_TARGET = (
    '{"promotion": {"mode": "promote"}, "trigger": {"retrain_schedule": null}, '
    '"tracking": {"mlflow": "managed"}}'
)


@pytest.fixture(scope="session")
def model_monitor() -> dict[str, Template]:
    """dev with `monitoring.engine` model-monitor."""
    return synthesized("dev", MODEL_MONITOR)


@pytest.fixture(scope="session")
def serverless() -> dict[str, Template]:
    """dev with `serving.mode` serverless."""
    return synthesized("dev", SERVERLESS)


@pytest.fixture(scope="session")
def batch() -> dict[str, Template]:
    """dev with `serving.mode` batch."""
    return synthesized("dev", BATCH)


def normalized(template: Mapping[str, Any]) -> dict[str, Any]:
    """Template JSON with asset hashes replaced, so snapshots only change with real changes."""
    import json

    return json.loads(HASH.sub("HASH", json.dumps(template, sort_keys=True)))


@pytest.fixture()
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and region for moto/Stubber tests: never the caller's."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make `--dist loadgroup` group again: pytest-xdist 3.8 marks a grouped test by suffixing
    `item._nodeid` with `@<group>`, but pytest 9.2 keeps a node's id in `item._id`, so the
    suffix was never seen and every CDK test file synthesized the apps on both workers. Put
    the suffix where pytest reads it (once: a fixed xdist would have put it there already)."""
    from _pytest.nodeid import coerce_node_id

    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                         for m in item.iter_markers("xdist_group")})  # fmt: skip
        suffix = f"@{'_'.join(groups)}"
        if groups and not item.nodeid.endswith(suffix):
            item._id = coerce_node_id(item.nodeid + suffix)
