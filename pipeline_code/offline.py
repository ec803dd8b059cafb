"""Run the SageMaker Python SDK v3 fully offline and deterministically.

The SDK makes hidden AWS calls while it builds a pipeline definition (telemetry, role look-ups,
default-bucket checks, config files, code uploads). This module switches every one of them off
and replaces S3 uploads with a content-addressed local store, so a definition can be generated
on a laptop without credentials and is byte-identical from run to run:

* :func:`configure_environment` sets the variables the SDK reads at import time. It must run
  before anything imports ``sagemaker``.
* :class:`CodeStore` is the stand-in for S3: ``<root>/<sha256>/<name>`` on disk is
  ``s3://${ArtifactBucket}/pipeline-code/<sha256>/<name>`` in the definition.
* :func:`offline_session` yields a ``PipelineSession`` whose uploads go to a :class:`CodeStore`,
  whose AWS clients refuse to send any request, and with telemetry replaced by a no-op.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

# Placeholders are substituted at deploy time (custom resource / Fn::Sub). Names only: the
# definition spells them "${Name}".
ARTIFACT_BUCKET = "ArtifactBucket"
# The job roles: processing and check jobs run as one, training jobs as the other (the role
# SageMaker Pipelines itself runs as is the pipeline's RoleArn, outside the definition).
PROCESSING_JOB_ROLE_ARN = "ProcessingJobRoleArn"
TRAINING_JOB_ROLE_ARN = "TrainingJobRoleArn"
KMS_KEY_ARN = "KmsKeyArn"
MODEL_PACKAGE_GROUP_NAME = "ModelPackageGroupName"
PLACEHOLDERS: tuple[str, ...] = (
    ARTIFACT_BUCKET,
    KMS_KEY_ARN,
    MODEL_PACKAGE_GROUP_NAME,
    PROCESSING_JOB_ROLE_ARN,
    TRAINING_JOB_ROLE_ARN,
)
# batch serving's scoring pipeline only: the role its models run as, and the data bucket's key
# (the predictions are written under the data bucket's predictions/ prefix).
SCORING_MODEL_ROLE_ARN = "ScoringModelRoleArn"
DATA_KMS_KEY_ARN = "DataKmsKeyArn"
SCORING_PLACEHOLDERS: tuple[str, ...] = (DATA_KMS_KEY_ARN, SCORING_MODEL_ROLE_ARN)

CODE_PREFIX = "pipeline-code/"

# vpc mode: the jobs' subnets and security groups, ${VpcSubnet1}.. and ${VpcSecurityGroup1}..,
# filled in from the environment's network (created subnets are only known at deploy time).
VPC_SUBNET = "VpcSubnet"
VPC_SECURITY_GROUP = "VpcSecurityGroup"


def vpc_placeholders(subnets: int, security_groups: int) -> tuple[list[str], list[str]]:
    """Names of the subnet and security-group placeholders of a VpcConfig, numbered from 1."""
    return (
        [f"{VPC_SUBNET}{i}" for i in range(1, subnets + 1)],
        [f"{VPC_SECURITY_GROUP}{i}" for i in range(1, security_groups + 1)],
    )


# The SDK only accepts ARN-shaped roles without an IAM look-up; this one is used where the SDK
# validates the role and is replaced by a job role placeholder before anything is emitted.
_ARN_SHAPED_ROLE = "arn:aws:iam::000000000000:role/offline-placeholder"

# Files the SDK would upload that are build by-products, never code the container needs.
_IGNORED_PARTS = frozenset({"__pycache__", ".DS_Store"})
_IGNORED_SUFFIXES = (".pyc", ".pyo")

_SDK_ENVIRONMENT = {
    # v3 ModelTrainer otherwise checks the role with iam:SimulatePrincipalPolicy.
    "SAGEMAKER_VALIDATE_ROLE": "false",
    # config.yaml under /etc/xdg/sagemaker or ~/.config/sagemaker would silently inject
    # defaults (tags, KMS keys, VPCs) that differ between machines.
    "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": os.devnull,
    "SAGEMAKER_USER_CONFIG_OVERRIDE": os.devnull,
    # Credential resolution must never probe the EC2/ECS metadata endpoints.
    "AWS_EC2_METADATA_DISABLED": "true",
}


class OfflineViolationError(RuntimeError):
    """An AWS request was attempted while generating a definition offline."""


def placeholder(name: str) -> str:
    """Return the ``${Name}`` spelling of a declared placeholder (raises on unknown names)."""
    declared = (*PLACEHOLDERS, *SCORING_PLACEHOLDERS)
    if name not in declared:
        raise ValueError(f"unknown placeholder {name!r}; declared: {', '.join(declared)}")
    return "${" + name + "}"


def configure_environment(region: str | None = None) -> None:
    """Set the environment the SDK reads at import time; call before importing ``sagemaker``.

    Args:
        region: AWS region to expose as ``AWS_DEFAULT_REGION`` when none is set (v3 raises
            ``NoRegionError`` at import without one). Default: keep the caller's region, else
            ``us-east-1``. Region-specific values in the definition never come from here: they
            come from the region passed to :func:`offline_session` and to ``image_uris``.
    """
    os.environ.update(_SDK_ENVIRONMENT)
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        os.environ["AWS_DEFAULT_REGION"] = region or "us-east-1"


def _is_shipped(relative: PurePosixPath) -> bool:
    return not (
        _IGNORED_PARTS.intersection(relative.parts) or relative.name.endswith(_IGNORED_SUFFIXES)
    )


@dataclass
class CodeStore:
    """Content-addressed local stand-in for the artifact bucket's ``pipeline-code/`` prefix.

    ``root/<sha256>/<relative path>`` on disk corresponds to
    ``s3://${ArtifactBucket}/pipeline-code/<sha256>/<relative path>``; the deploy step copies
    ``root`` into the bucket under ``pipeline-code/``. A single file is addressed by the SHA-256
    of its bytes, a directory by the SHA-256 of its sorted (relative path, file digest) list, so
    changing one file changes only the URIs that contain it.

    Attributes:
        root: Local directory that mirrors ``pipeline-code/`` (created on first write).
        published: Every ``(sha256, relative path)`` written so far, in write order.
    """

    root: Path
    published: list[tuple[str, str]] = field(default_factory=list)

    def uri(self, digest: str, name: str = "") -> str:
        """Return the placeholder S3 URI of ``name`` under ``digest`` (a prefix if no name)."""
        return f"s3://{placeholder(ARTIFACT_BUCKET)}/{CODE_PREFIX}{digest}/{name}"

    def put_bytes(self, name: str, data: bytes) -> str:
        """Store ``data`` as ``<sha256(data)>/<name>`` and return its S3 URI."""
        digest = hashlib.sha256(data).hexdigest()
        self._write(digest, PurePosixPath(name), data)
        return self.uri(digest, name)

    def put_file(self, path: Path) -> str:
        """Store one file under the hash of its bytes and return its S3 URI."""
        return self.put_bytes(path.name, path.read_bytes())

    def put_dir(self, path: Path) -> str:
        """Store a directory tree (minus caches) and return its S3 prefix, ending in ``/``."""
        return self.put_tree({"": path})

    def put_tree(self, layout: Mapping[str, Path]) -> str:
        """Store several directories (minus caches) as one tree; return its S3 prefix.

        Args:
            layout: Folder of the tree (``""`` for its root) -> the local directory that fills
                it, e.g. ``{"": steps / "train", "common": steps / "common"}``.

        Raises:
            ValueError: Nothing to publish, or two directories provide the same file.
        """
        files: dict[PurePosixPath, Path] = {}
        for folder, directory in layout.items():
            for file in directory.rglob("*"):
                relative = PurePosixPath(folder, file.relative_to(directory).as_posix())
                if not file.is_file() or not _is_shipped(relative):
                    continue
                if relative in files:
                    raise ValueError(f"{relative} comes from both {files[relative]} and {file}")
                files[relative] = file
        if not files:
            raise ValueError(f"nothing to publish in {', '.join(map(str, layout.values()))}")
        tree = hashlib.sha256()
        contents = []
        for relative, file in sorted(files.items()):
            data = file.read_bytes()
            contents.append((relative, data))
            tree.update(f"{relative}\0{hashlib.sha256(data).hexdigest()}\n".encode())
        digest = tree.hexdigest()
        for relative, data in contents:
            self._write(digest, relative, data)
        return self.uri(digest)

    def _write(self, digest: str, relative: PurePosixPath, data: bytes) -> None:
        target = self.root / digest / Path(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self.published.append((digest, relative.as_posix()))


@dataclass
class AwsCallGuard:
    """botocore ``before-send`` handler that refuses every request and remembers it.

    The SDK swallows some errors (for example around its staging-bucket check), so the
    attempts are recorded as well as raised; :meth:`check` turns any attempt into an error.
    """

    attempts: list[str] = field(default_factory=list)

    def __call__(self, request: Any, **_: Any) -> None:
        attempt = f"{request.method} {request.url}"
        self.attempts.append(attempt)
        raise OfflineViolationError(
            f"AWS request attempted while generating a pipeline definition offline: {attempt}"
        )

    def check(self) -> None:
        """Raise :class:`OfflineViolationError` if any request was attempted."""
        if self.attempts:
            raise OfflineViolationError(
                "the SageMaker SDK tried to call AWS while generating the definition: "
                + "; ".join(self.attempts)
            )


@contextlib.contextmanager
def _swapped(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


# One botocore loader per data path for every session the SDK creates in this process. The SDK
# builds a new boto3 session for the pipeline session, for each processor's local session and
# for image look-ups (about 20 clients per definition); each new session parsed the service
# models again (the SageMaker model alone is megabytes of JSON): most of a render's CPU.
_LOADERS: dict[str | None, Any] = {}


def _shared_loader(search_path_string: str | None = None) -> Any:
    from botocore.loaders import create_loader

    if search_path_string not in _LOADERS:
        _LOADERS[search_path_string] = create_loader(search_path_string)
    return _LOADERS[search_path_string]


def _no_telemetry(*_: Any, **__: Any) -> None:
    return None


def _no_studio_project_config(*_: Any, **__: Any) -> None:
    # SageMaker Studio tags read .sagemaker-code-config from the working directory upwards,
    # which would make the definition depend on where the generator runs.
    return None


@contextlib.contextmanager
def offline_session(region: str, store: CodeStore) -> Iterator[PipelineSession]:
    """Yield a ``PipelineSession`` that never reaches AWS; restore global state on exit.

    Inside the context: uploads (``upload_data``, ``upload_string_as_file_body``) land in
    ``store`` and return placeholder URIs; ``expand_role`` returns roles unchanged (no IAM);
    the default bucket is the ``${ArtifactBucket}`` placeholder; telemetry is a no-op; any AWS
    request raises :class:`OfflineViolationError` (and the context re-raises it on exit even
    if the SDK swallowed it).

    Args:
        region: Region of the boto session (drives nothing network-related).
        store: Where SDK uploads are written.
    """
    configure_environment(region)
    import boto3
    import botocore.session
    from sagemaker.core import _studio
    from sagemaker.core.telemetry import telemetry_logging
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    class _OfflinePipelineSession(PipelineSession):
        def upload_data(  # type: ignore[override]
            self,
            path: str,
            bucket: str | None = None,
            key_prefix: str = "data",
            callback: Any = None,
            extra_args: Any = None,
        ) -> str:
            local = Path(path)
            return store.put_dir(local) if local.is_dir() else store.put_file(local)

        def upload_string_as_file_body(  # type: ignore[override]
            self, body: str, bucket: str, key: str, kms_key: str | None = None
        ) -> str:
            return store.put_bytes(PurePosixPath(key).name, body.encode())

        def expand_role(self, role: str) -> str:  # type: ignore[override]
            return role

    guard = AwsCallGuard()
    with contextlib.ExitStack() as stack:
        stack.enter_context(_swapped(botocore.session, "create_loader", _shared_loader))
        # Static fake credentials: the credential chain never runs, so nothing probes metadata
        # endpoints or refreshes SSO tokens.
        boto_session = boto3.Session(
            aws_access_key_id="offline",
            aws_secret_access_key="offline",
            region_name=region,
        )
        boto_session.events.register("before-send", guard)
        stack.enter_context(_swapped(boto3, "DEFAULT_SESSION", boto_session))
        stack.enter_context(_swapped(telemetry_logging, "_send_telemetry_request", _no_telemetry))
        stack.enter_context(_swapped(_studio, "_find_config", _no_studio_project_config))
        session = _OfflinePipelineSession(
            boto_session=boto_session,
            default_bucket=placeholder(ARTIFACT_BUCKET),
        )
        # default_bucket() would call HeadBucket/CreateBucket even for an explicit bucket.
        session._default_bucket = placeholder(ARTIFACT_BUCKET)
        yield session
    guard.check()


def arn_shaped_role() -> str:
    """An ARN-shaped role for SDK constructors that reject non-ARN roles without calling IAM.

    Callers must overwrite it with a job role placeholder before the request is captured (or
    use it only where no role reaches the definition); :func:`check_no_internal_values` catches
    a forgotten overwrite.
    """
    return _ARN_SHAPED_ROLE


def check_no_internal_values(definition: str) -> None:
    """Raise if a value only meant for SDK internals leaked into the definition."""
    if _ARN_SHAPED_ROLE in definition:
        raise OfflineViolationError(
            f"the stand-in role {_ARN_SHAPED_ROLE} leaked into the definition; "
            f"every role must be {placeholder(PROCESSING_JOB_ROLE_ARN)} or "
            f"{placeholder(TRAINING_JOB_ROLE_ARN)}"
        )
