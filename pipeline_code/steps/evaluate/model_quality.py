"""Score-one-model mode (the evaluation-only pipeline): one registered package (the production
model by default) on labelled data, evaluation.json with `model` and `dataset` sections, and
the metrics published to CloudWatch under the group (and version) dimensions."""

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
    CW_DIMENSION_GROUP,
    CW_DIMENSION_VERSION,
    CW_METRIC_ROWS,
    CW_QUALITY_METRICS,
    DATASET_KEY,
    EVALUATION_FILE,
    LATEST,
    METRICS_KEY,
    MODEL_KEY,
    PUBLISHED_METRICS_KEY,
)
from evaluation_plots import write_plots
from model_loading import EvaluationError
from model_registry import (
    PACKAGE_NAME_RE,
    latest_approved_package,
    load_registered_model,
    registry_clients,
)
from paired_bootstrap import bootstrap
from quality_metrics import THRESHOLD, point_metrics, quality_section
from scoring_data import feature_matrix, predict, read_test_set

LOG = logging.getLogger("evaluate")


def quality_metric_data(
    metrics: dict[str, Any], rows: int, group: str, version: str
) -> list[dict[str, Any]]:
    """PutMetricData datums: every metric once per dimension set, group first.

    `metrics` is a `binary_classification_metrics` section; `rows` the rows scored.
    """
    values = [(name, float(metrics[key]["value"]), "None") for name, key in CW_QUALITY_METRICS]
    values.append((CW_METRIC_ROWS, float(rows), "Count"))
    bad = [name for name, value, _ in values if not np.isfinite(value)]
    if bad:
        raise EvaluationError(f"metric(s) {bad} are not finite: CloudWatch rejects them")
    group_dimension = {"Name": CW_DIMENSION_GROUP, "Value": group}
    dimension_sets = [
        [group_dimension],
        [group_dimension, {"Name": CW_DIMENSION_VERSION, "Value": version}],
    ]
    return [
        {"MetricName": name, "Dimensions": dimensions, "Value": value, "Unit": unit}
        for dimensions in dimension_sets
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
    requested = args.model_package_arn.strip()
    group = args.model_package_group
    if requested in ("", LATEST) and not group:
        raise EvaluationError(
            f"--model-package-arn {requested or LATEST!r} means the production model: pass "
            "--model-package-group (the group whose newest Approved package is in production)"
        )
    if requested not in ("", LATEST) and not PACKAGE_NAME_RE.match(requested):
        raise EvaluationError(
            f"--model-package-arn {requested!r} is not a model package ARN such as "
            "arn:aws:sagemaker:eu-west-1:123456789012:model-package/my-group/3 (or 'latest')"
        )
    started = time.perf_counter()
    columns, y = read_test_set(Path(args.test_dir), args.target, "the model cannot be evaluated")

    sagemaker_client, s3_client = registry_clients(sagemaker_client, s3_client)
    if requested in ("", LATEST):
        package = latest_approved_package(group, sagemaker_client, "production model")
        if package is None:
            raise EvaluationError(
                f"no production model to evaluate: model package group {group!r} has no "
                "Approved model package (approve one, or name a package with "
                "--model-package-arn)"
            )
    else:
        package = requested
    model = load_registered_model(package, sagemaker_client, s3_client, scratch, "evaluated")
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
        data = quality_metric_data(metrics, int(y.size), model.model_package_group, str(version))
        published = {
            "namespace": namespace,
            "dimensions": {
                CW_DIMENSION_GROUP: model.model_package_group,
                CW_DIMENSION_VERSION: str(version),
            },
            "values": {d["MetricName"]: d["Value"] for d in data},
        }
    report = {
        METRICS_KEY: metrics,
        MODEL_KEY: {
            "model_package_arn": model.model_package_arn,
            "model_package_group": model.model_package_group,
            "model_package_version": model.model_package_version,
            "approval_status": model.approval_status,
            "requested": requested or LATEST,
            "model_data_url": model.source,
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
