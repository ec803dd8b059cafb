"""Score-one-model mode (the evaluation-only pipeline): one registered package on labelled
data, evaluation.json with `model` and `dataset` sections, and the metrics published to
CloudWatch.

`--model-role production` (the evaluation trigger chose the package the Serving stack serves):
the package must be Approved with no rollback mark, and its metrics go under [ModelPackageGroup]
(what the quality alarm watches) and [ModelPackageGroup, ModelVersion]. `--model-role
candidate` (the default; a package an operator named): any package of the group, published only
under [ModelPackageGroup, CandidateVersion], so scoring a candidate never moves the production
alarm. Either way the artifact is checked against its recorded SHA-256 (model_registry).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from evaluation_contract import (
    CW_DIMENSION_CANDIDATE,
    CW_DIMENSION_GROUP,
    CW_DIMENSION_VERSION,
    CW_METRIC_ROWS,
    CW_QUALITY_METRICS,
    DATASET_KEY,
    EVALUATION_FILE,
    METRICS_KEY,
    MODEL_KEY,
    PUBLISHED_METRICS_KEY,
    ROLE_CANDIDATE,
    ROLE_PRODUCTION,
)
from evaluation_plots import write_plots
from model_loading import EvaluationError
from model_registry import PACKAGE_NAME_RE, load_registered_model, registry_clients
from paired_bootstrap import bootstrap
from quality_metrics import THRESHOLD, point_metrics, quality_section
from scoring_data import category_names, check_labels, feature_matrix, predict, read_test_set

LOG = logging.getLogger("evaluate")


def dimension_sets(role: str, group: str, version: str) -> list[list[dict[str, str]]]:
    """The dimension sets a `role`'s metrics are published under (module docstring)."""
    group_dimension = {"Name": CW_DIMENSION_GROUP, "Value": group}
    if role == ROLE_PRODUCTION:
        return [
            [group_dimension],
            [group_dimension, {"Name": CW_DIMENSION_VERSION, "Value": version}],
        ]
    return [[group_dimension, {"Name": CW_DIMENSION_CANDIDATE, "Value": version}]]


def quality_metric_data(
    metrics: dict[str, Any], rows: int, group: str, version: str, role: str
) -> list[dict[str, Any]]:
    """PutMetricData datums: every metric once per dimension set of `role`.

    `metrics` is a `binary_classification_metrics` section; `rows` the rows scored.
    """
    values = [(name, float(metrics[key]["value"]), "None") for name, key in CW_QUALITY_METRICS]
    values.append((CW_METRIC_ROWS, float(rows), "Count"))
    bad = [name for name, value, _ in values if not np.isfinite(value)]
    if bad:
        raise EvaluationError(f"metric(s) {bad} are not finite: CloudWatch rejects them")
    return [
        {"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": unit}
        for dimensions in dimension_sets(role, group, version)
        for name, value, unit in values
    ]


def check_namespace(namespace: str) -> None:
    """CloudWatch's rules for a custom namespace (1-255 characters, not AWS/, no leading ':')."""
    if not re.fullmatch(r"[A-Za-z0-9._/#:\- ]{1,255}", namespace) or (
        namespace.startswith((":", "AWS/"))
    ):
        raise EvaluationError(
            f"--metrics-namespace {namespace!r} is not allowed: 1-255 letters, digits or "
            "._/#:- and spaces, not starting with ':' or 'AWS/'"
        )


def publish_metrics(cloudwatch_client: Any, namespace: str, data: list[dict[str, Any]]) -> None:
    """One PutMetricData call (well below its 1,000-datum limit)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        cloudwatch_client.put_metric_data(Namespace=namespace, MetricData=data)
    except (ClientError, BotoCoreError) as error:
        raise EvaluationError(
            f"cannot publish the model-quality metrics to CloudWatch namespace {namespace!r}: "
            f"{error}"
        ) from error


def score_registered_model(
    args: argparse.Namespace,
    scratch: Path,
    sagemaker_client: Any = None,
    s3_client: Any = None,
    cloudwatch_client: Any = None,
) -> dict[str, Any]:
    """Score one registered package (no challenger, no gate); write evaluation.json, plots,
    and publish the metrics when `--metrics-namespace` is given. Returns the JSON."""
    if args.model_dir or args.champion_model_dir:
        raise EvaluationError(
            "--model-package-arn scores one registered model: do not pass --model-dir or "
            "--champion-model-dir with it"
        )
    if args.bootstrap_samples < 1:
        raise EvaluationError(f"--bootstrap-samples {args.bootstrap_samples}: at least 1")
    namespace = args.metrics_namespace
    if namespace:
        check_namespace(namespace)
    role = args.model_role
    if role not in (ROLE_PRODUCTION, ROLE_CANDIDATE):
        raise EvaluationError(
            f"--model-role {role!r} is not allowed: {ROLE_PRODUCTION} or {ROLE_CANDIDATE}"
        )
    requested = args.model_package_arn.strip()
    if not requested:
        raise EvaluationError(
            "--model-package-arn is empty: no model to evaluate (the evaluation trigger passes "
            "the package the Serving stack serves; started by hand, name a package)"
        )
    if not PACKAGE_NAME_RE.match(requested):
        raise EvaluationError(
            f"--model-package-arn {requested!r} is not a model package ARN such as "
            "arn:aws:sagemaker:eu-west-1:123456789012:model-package/my-group/3"
        )
    group = args.model_package_group
    if not group:
        raise EvaluationError(
            "--model-package-arn needs --model-package-group: the package must be one of this "
            "environment's group"
        )
    started = time.perf_counter()

    sagemaker_client, s3_client = registry_clients(sagemaker_client, s3_client)
    model = load_registered_model(
        requested,
        sagemaker_client,
        s3_client,
        scratch,
        "production model" if role == ROLE_PRODUCTION else "candidate",
        group=group,
        deployable=role == ROLE_PRODUCTION,
        trainer=args.trainer,
    )
    labels = model.metadata.get("labels") or {}
    problem = labels.get("problem_type", "binary") if isinstance(labels, dict) else "binary"
    if problem != "binary":
        raise EvaluationError(
            f"model package {model.model_package_arn} is a {problem} model: the eval-only "
            "pipeline scores binary models only so far (its metrics and the quality alarm's "
            "are binary_classification_metrics)"
        )
    check_labels(model, Path(args.test_dir), "evaluated")
    columns, y = read_test_set(
        Path(args.test_dir),
        args.target,
        "the model cannot be evaluated",
        categories=category_names(model),
    )
    p = predict(model, feature_matrix(model, columns, "evaluated"))
    point = point_metrics(y, p)
    [samples] = bootstrap(y, [p], args.bootstrap_samples, args.seed)
    metrics = quality_section(point, samples)

    published = None
    if namespace:
        version = model.model_package_version
        if not model.model_package_group or version is None:
            raise EvaluationError(
                f"model package {model.model_package_arn} has no group and version: the "
                f"metrics need the {CW_DIMENSION_GROUP} and {CW_DIMENSION_VERSION} dimensions"
            )
        data = quality_metric_data(
            metrics, int(y.size), model.model_package_group, str(version), role
        )
        published = {
            "namespace": namespace,
            "dimension_sets": [
                {d["Name"]: d["Value"] for d in dimensions}
                for dimensions in dimension_sets(role, model.model_package_group, str(version))
            ],
            "values": {d["MetricName"]: d["Value"] for d in data},
        }
    report = {
        METRICS_KEY: metrics,
        MODEL_KEY: {
            "model_package_arn": model.model_package_arn,
            "model_package_group": model.model_package_group,
            "model_package_version": model.model_package_version,
            "approval_status": model.approval_status,
            "role": role,
            "model_data_url": model.source,
            "artifact_sha256": model.artifact_sha256,
            "integrity": model.integrity,
        },
        DATASET_KEY: {
            "dataset_version": args.dataset_version,
            "data_digest": args.data_digest,
            "rows": int(y.size),
            "positives": int(y.sum()),
        },
        PUBLISHED_METRICS_KEY: published,
        "bootstrap_samples": args.bootstrap_samples,
        "threshold": THRESHOLD,
    }
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    version_label = model.model_package_version
    write_plots(output_dir, [(f"model v{version_label}" if version_label else "model", point)])
    if namespace:
        if cloudwatch_client is None:
            import boto3

            cloudwatch_client = boto3.client("cloudwatch")
        publish_metrics(cloudwatch_client, namespace, data)
    LOG.info(
        "%s: AUC %.4f, F1 %.4f on %d rows in %.1f s%s",
        model.model_package_arn,
        point["auc"],
        point["f1"],
        y.size,
        time.perf_counter() - started,
        f"; published to {namespace}" if namespace else "",
    )
    return report
