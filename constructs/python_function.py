"""A Lambda function from `lambdas/<name>/`, with this project's defaults."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import jsii
from aws_cdk import Aspects, Duration, IAspect, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs

from constructs import Construct, IConstruct
from constructs.key_use import SQS_SEND_KEY_ACTIONS, grant_key_use, without_key
from constructs.nag import IMPORTED_KEY_REASON, NO_VPC_REASON, acknowledge, acknowledge_guard
from constructs.policy_checks import ASYNC_FUNCTION_SKIPS, OUR_FUNCTION_SKIPS, skip_checkov

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
# Modules more than one function runs (one copy in the tree; each package gets its own).
SHARED_DIR = LAMBDAS_DIR / "shared"
STAGING_DIR = LAMBDAS_DIR.parent / ".build" / "lambda-packages"
RUNTIME = lambda_.Runtime.PYTHON_3_13
# AWS-published Powertools for AWS Lambda (Python) v3 layer; bump together with the
# aws-lambda-powertools pin in requirements-dev.txt that the handler tests run against.
POWERTOOLS_LAYER = (
    "arn:{partition}:lambda:{region}:017000801446:layer:"
    "AWSLambdaPowertoolsPythonV3-python313-x86_64:27"
)
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc"]
DEFAULT_TIMEOUT = Duration.seconds(60)
# Asynchronous invocations: Lambda's two retries, then the on-failure destination.
ASYNC_RETRY_ATTEMPTS = 2
ASYNC_MAX_EVENT_AGE = Duration.hours(6)


class PythonFunction(Construct):
    """`lambdas/<folder>/handler.py:lambda_handler` on Python 3.13 with the Powertools layer.

    Its own role (no AWS managed policy) writes only to its own log group, which is
    KMS-encrypted with `encryption_key` and kept `log_retention` (default one year).
    `environment` is added to POWERTOOLS_SERVICE_NAME (= `folder`). Timeout default 60 s,
    memory default 256 MB. No reserved concurrency: callers bound
    it (SQS maximum concurrency), so first deploys work in accounts with a quota of 10.
    `shared_modules`: names of modules in `lambdas/shared/` the package carries beside
    `handler.py` (imported by bare name, as the function's own modules are).
    `on_failure` (an SQS queue encrypted with a KMS key): the function is invoked
    asynchronously (EventBridge, Scheduler), and events that still fail after Lambda's two
    retries, or wait longer than 6 hours, go there with the error. `role_name`: a fixed name
    for the role (default: CDK generates one). Exposes `function` and
    `role`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        folder: str,
        description: str,
        encryption_key: kms.IKey,
        environment: dict[str, str] | None = None,
        timeout: Duration = DEFAULT_TIMEOUT,
        memory_size: int = 256,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR,
        on_failure: sqs.Queue | None = None,
        shared_modules: tuple[str, ...] = (),
        role_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        source = LAMBDAS_DIR / folder
        if not (source / "handler.py").is_file():
            raise FileNotFoundError(f"{source}/handler.py does not exist")
        source = package_source(source, shared_modules)
        stack = Stack.of(self)
        log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=encryption_key,
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{folder} Lambda: {description}"[:1000],
            # a name only where another account's policy names the role (default: CDK's)
            role_name=role_name,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            handler="handler.lambda_handler",
            code=lambda_.Code.from_asset(str(source), exclude=ASSET_EXCLUDES),
            description=description,
            role=self.role,
            log_group=log_group,
            timeout=timeout,
            memory_size=memory_size,
            environment={"POWERTOOLS_SERVICE_NAME": folder, **(environment or {})},
            environment_encryption=encryption_key,
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    self,
                    "Powertools",
                    POWERTOOLS_LAYER.format(partition=stack.partition, region=stack.region),
                )
            ],
        )
        log_group.grant_write(self.role)
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            reason="Python 3.13 is the newest runtime the pinned AWS-published Powertools layer "
            "is built for; runtime and layer move together.",
        )
        skips = dict(OUR_FUNCTION_SKIPS)
        if on_failure is not None:
            self._send_failures_to(on_failure)
            skips.update(ASYNC_FUNCTION_SKIPS)
        for check_id, reason in skips.items():
            skip_checkov(self.function, check_id, reason)
        # at synth, once vpc mode may have placed the function in subnets (FunctionsInSubnets)
        Aspects.of(self).add(_PublicFunctionAcknowledgement(self.function))
        acknowledge_guard(
            log_group, "cloudwatch_log_group_encrypted_check", reason=IMPORTED_KEY_REASON
        )

    def _send_failures_to(self, queue: sqs.Queue) -> None:
        self.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(without_key(queue)),
            retry_attempts=ASYNC_RETRY_ATTEMPTS,
            max_event_age=ASYNC_MAX_EVENT_AGE,
        )
        grant_key_use(queue.encryption_master_key, self.role, SQS_SEND_KEY_ACTIONS, via=["sqs"])


@jsii.implements(IAspect)
class _PublicFunctionAcknowledgement:
    """The Control Tower rule "function in a VPC", acknowledged with the public mode's reason
    for a function that no VPC placement put in subnets."""

    def __init__(self, function: lambda_.Function) -> None:
        self.path = function.node.path

    def visit(self, node: IConstruct) -> None:
        if node.node.path != self.path or not isinstance(node, lambda_.Function):
            return
        resource = node.node.default_child
        if isinstance(resource, lambda_.CfnFunction) and resource.vpc_config is None:
            acknowledge_guard(node, "lambda_inside_vpc_check", reason=NO_VPC_REASON)


def _package_files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def package_source(folder: Path, shared_modules: tuple[str, ...]) -> Path:
    """The folder to package: `folder` itself, or, when it needs shared modules, a copy of it
    with `lambdas/shared/<name>.py` beside its handler, staged under .build/lambda-packages/.

    The copy's name is a digest of what it holds, so concurrent synths (parallel tests) build
    the same folder and a finished one is never rewritten.
    """
    if not shared_modules:
        return folder
    shared = [SHARED_DIR / f"{name}.py" for name in shared_modules]
    missing = [str(path) for path in shared if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"shared Lambda modules do not exist: {', '.join(missing)}")
    clashes = [path.name for path in shared if (folder / path.name).exists()]
    if clashes:
        raise ValueError(f"{folder} has its own {', '.join(clashes)}: it would hide the shared one")
    files = [(path.relative_to(folder), path) for path in _package_files(folder)]
    files += [(Path(path.name), path) for path in shared]
    digest = hashlib.sha256()
    for name, path in sorted(files):
        content = path.read_bytes()
        digest.update(f"{name}\0{len(content)}\0".encode() + content)
    staged = STAGING_DIR / f"{folder.name}-{digest.hexdigest()[:16]}"
    if staged.is_dir():
        return staged
    STAGING_DIR.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=STAGING_DIR))
    for name, path in files:
        (building / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, building / name)
    try:
        os.rename(building, staged)
    except OSError:  # another synth staged the same content first
        shutil.rmtree(building, ignore_errors=True)
    return staged
