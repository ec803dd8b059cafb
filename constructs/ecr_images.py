"""SageMaker's own images: their URIs in a region (from the SageMaker SDK's image table) and
pull permissions pinned to the repositories of the AWS accounts that publish them."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from mlops_config.trainer import SklearnConfig

if TYPE_CHECKING:
    from mlops_config import EnvironmentConfig

IMAGE_URI = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]*?)(?::[\w.-]+|@sha256:[0-9a-f]{64})?(?=$|[\"\s])"
)
PULL_ACTIONS = (
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
)


@cache
def _image_table(framework: str) -> dict[str, Any]:
    """sagemaker-core's `image_uri_config/<framework>.json`, read as a file: importing the SDK
    in the CDK app would cost seconds per synth."""
    spec = importlib.util.find_spec("sagemaker")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the sagemaker package is not installed: run `make install`")
    table = Path(next(iter(spec.submodule_search_locations))) / (
        f"core/image_uri_config/{framework}.json"
    )
    return dict(json.loads(table.read_text()))


def sagemaker_image_uri(
    framework: str, region: str, *, version: str = "", scope: str | None = None
) -> str:
    """The URI (without tag) of SageMaker's `framework` image `version` for `scope`
    (`training`, `inference`, or None for tables without scopes) in `region`."""
    table = _image_table(framework)
    versions = (table[scope] if scope else table)["versions"]
    if version not in versions:
        raise ValueError(f"SageMaker has no {framework} image {version!r}: one of {list(versions)}")
    entry = versions[version]
    registries = entry["registries"]
    if region not in registries:
        raise ValueError(f"SageMaker publishes no {framework} image in {region}")
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{registries[region]}.dkr.ecr.{region}.{domain}/{entry['repository']}"


def image_uris_in(text: str) -> list[str]:
    """The distinct ECR image URIs (without tag) written in `text`, e.g. a pipeline
    definition, sorted."""
    return sorted(
        {
            f"{m['account']}.dkr.ecr.{m['region']}.amazonaws.com/{m['repository']}"
            for m in IMAGE_URI.finditer(text)
        }
    )


def repository_arn(stack: Stack, image_uri: str) -> str:
    """The ECR repository ARN of `image_uri` (its publishing account and region)."""
    match = IMAGE_URI.fullmatch(image_uri) or IMAGE_URI.match(image_uri)
    if match is None:
        raise ValueError(f"{image_uri!r} is not an ECR image URI")
    return (
        f"arn:{stack.partition}:ecr:{match['region']}:{match['account']}:"
        f"repository/{match['repository']}"
    )


def grant_image_pulls(role: iam.IRole, image_uris: Sequence[str]) -> list[str]:
    """Let `role` pull `image_uris` (and get an ECR token, which has no resource-level
    permissions); returns the repository ARNs."""
    if not image_uris:
        raise ValueError("name the images the role pulls: no image URIs given")
    stack = Stack.of(role)
    repositories = sorted({repository_arn(stack, uri) for uri in image_uris})
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=list(PULL_ACTIONS), resources=repositories)
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
    )
    return repositories


def served_image_uris(config: EnvironmentConfig) -> list[str]:
    """The inference images a served package may name, which the endpoint (in batch mode, the
    scoring models) pulls: XGBoost's (the xgboost and custom trainers) and scikit-learn's,
    whatever `pipeline.trainer` is now: a package approved or served under the other trainer
    must still deploy and scale out after a switch. Both are SageMaker's read-only
    repositories (one per framework, every version's tag), so pulls stay pinned to those two."""
    p = config.pipeline
    sklearn = (p.sklearn or SklearnConfig()).framework_version
    return [
        sagemaker_image_uri(
            "xgboost", config.region, version=p.xgboost_framework_version, scope="inference"
        ),
        sagemaker_image_uri("sklearn", config.region, version=sklearn, scope="inference"),
    ]
