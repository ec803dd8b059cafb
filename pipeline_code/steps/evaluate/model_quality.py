"""Score-one-model mode (the evaluation-only pipeline): one registered package on labelled
data, evaluation.json with `model` and `dataset` sections, and the metrics published to
CloudWatch.

`--model-role production` (the evaluation trigger chose the package the Serving stack serves):
the package must be Approved with no rollback mark, and its metrics go under [ModelPackageGroup]
(what the quality alarm watches) and [ModelPackageGroup, ModelVersion]. `--model-role
candidate` (the default; a package an operator named): any package of the group, published only
under [ModelPackageGroup, CandidateVersion], so scoring a candidate never moves the production
alarm. Either way the artifact is checked against its recorded SHA-256 (model_registry).

Every problem type is scored with its own metrics, section and CloudWatch names (the model's
metadata says which): binary `binary_classification_metrics` (AUC, Accuracy, Precision, Recall,
F1, LogLoss), multi-class `multiclass_classification_metrics` (Accuracy, MacroF1, WeightedF1,
LogLoss), regression `regression_metrics` (RMSE, MAE, MSE, R2); the quality alarm watches the
one named by `pipeline.metric`, in that metric's direction.
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import metrics_multiclass
import metrics_regression
from common.problem_types import MULTICLASS, REGRESSION
from evaluation_contract import (
    CW_DIMENSION_CANDIDATE,
    CW_DIMENSION_GROUP,
    CW_DIMENSION_VERSION,
    CW_METRIC_ROWS,
    CW_METRIC_UNSEEN_CLASS_ROWS,
    CW_MULTICLASS_QUALITY_METRICS,
    CW_QUALITY_METRICS,
    CW_REGRESSION_QUALITY_METRICS,
    DATASET_KEY,
    METRICS_KEY,
    MODEL_KEY,
    PUBLISHED_METRICS_KEY,
    ROLE_CANDIDATE,
    ROLE_PRODUCTION,
)
from evaluation_plots import write_plots
from evaluation_report import write_evaluation
from model_loading import EvaluationError
from model_registry import PACKAGE_NAME_RE, load_registered_model, registry_clients
from paired_bootstrap import bootstrap
from quality_metrics import THRESHOLD, point_metrics, quality_section
from scoring_data import category_names, check_labels, feature_matrix, predict, read_test_set
from typed_comparison import labelled_codes, problem_of

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


#: CloudWatch metric name -> metrics section key, per problem type (binary: the default).
CW_METRICS_BY_PROBLEM = {
    MULTICLASS: CW_MULTICLASS_QUALITY_METRICS,
    REGRESSION: CW_REGRESSION_QUALITY_METRICS,
}


def quality_metric_data(
    metrics: dict[str, Any],
    rows: int,
    group: str,
    version: str,
    role: str,
    names: tuple[tuple[str, str], ...] = CW_QUALITY_METRICS,
    unseen_class_rows: int | None = None,
    metric: str = "auc",
) -> list[dict[str, Any]]:
    """PutMetricData datums: every finite metric once per dimension set of `role`.

    `metrics` is a model-quality section (`binary_classification_metrics` by default) and
    `names` its CloudWatch metric names and keys; `rows` the rows scored; `unseen_class_rows`
    (multi-class) the rows of a class the model never learned. A metric that is not finite
    (e.g. R2 of labels without variance) is left out with a log line, unless it is the
    configured `metric` (what the quality alarm watches): then nothing is published.
    """
    values = [(name, float(metrics[key]["value"]), "None") for name, key in names]
    values.append((CW_METRIC_ROWS, float(rows), "Count"))
    if unseen_class_rows is not None:
        values.append((CW_METRIC_UNSEEN_CLASS_ROWS, float(unseen_class_rows), "Count"))
    bad = [name for name, value, _ in values if not np.isfinite(value)]
    required = {name for name, key in names if key == metric}
    if required & set(bad):
        raise EvaluationError(
            f"metric(s) {bad} are not finite, among them the configured {metric}: CloudWatch "
            "rejects them"
        )
    if bad:
        LOG.warning("not published, not finite (the configured %s is): %s", metric, bad)
        values = [value for value in values if value[0] not in bad]
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
    scored = _score(model, args)
    metrics, y = scored.metrics, scored.y

    published = None
    if namespace:
        version = model.model_package_version
        if not model.model_package_group or version is None:
            raise EvaluationError(
                f"model package {model.model_package_arn} has no group and version: the "
                f"metrics need the {CW_DIMENSION_GROUP} and {CW_DIMENSION_VERSION} dimensions"
            )
        data = quality_metric_data(
            metrics,
            int(y.size),
            model.model_package_group,
            str(version),
            role,
            scored.names,
            scored.counts.get("unseen_class_rows"),
            args.metric,
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
        "problem_type": scored.problem,
        scored.section: metrics,
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
            **scored.counts,
        },
        PUBLISHED_METRICS_KEY: published,
        "bootstrap_samples": args.bootstrap_samples,
        # a probability threshold labels binary rows only
        "threshold": THRESHOLD if scored.point is not None else None,
    }
    output_dir = Path(args.output_dir)
    write_evaluation(output_dir, report)  # strict JSON: an undefined metric (R2) is null
    version_label = model.model_package_version
    label = f"model v{version_label}" if version_label else "model"
    if scored.problem == REGRESSION:
        metrics_regression.write_plots(output_dir, y, scored.p, label)
    elif scored.point is not None:
        write_plots(output_dir, [(label, scored.point)])
    if namespace:
        if cloudwatch_client is None:
            import boto3

            cloudwatch_client = boto3.client("cloudwatch")
        publish_metrics(cloudwatch_client, namespace, data)
    LOG.info(
        "%s (%s): %s on %d rows in %.1f s%s",
        model.model_package_arn,
        scored.problem,
        ", ".join(f"{name} {metrics[key]['value']:.4g}" for name, key in scored.names),
        y.size,
        time.perf_counter() - started,
        f"; published to {namespace}" if namespace else "",
    )
    return report


@dataclass(frozen=True)
class Scored:
    """One model's scores on the labelled data, as its problem type reports them."""

    problem: str
    section: str
    names: tuple[tuple[str, str], ...]
    metrics: dict[str, Any]
    y: np.ndarray
    p: np.ndarray
    counts: dict[str, Any]
    point: dict[str, Any] | None = None


def _score(model: Any, args: argparse.Namespace) -> Scored:
    """Score `model` on `--test-dir` with its problem type's metrics and bootstrap spreads."""
    problem, classes = problem_of(model)
    test_dir = Path(args.test_dir)
    n, seed = args.bootstrap_samples, args.seed
    if problem not in CW_METRICS_BY_PROBLEM:
        check_labels(model, test_dir, "evaluated")
        columns, y = read_test_set(
            test_dir, args.target, "the model cannot be evaluated", categories=category_names(model)
        )
        p = predict(model, feature_matrix(model, columns, "evaluated"))
        point = point_metrics(y, p)
        [samples] = bootstrap(y, [p], n, seed)
        counts: dict[str, Any] = {"positives": int(y.sum())}
        return Scored(
            problem, METRICS_KEY, CW_QUALITY_METRICS, quality_section(point, samples), y, p,
            counts, point,
        )  # fmt: skip
    columns, raw_y = read_test_set(
        test_dir, args.target, categories=category_names(model), binary=False
    )
    y, every = labelled_codes(problem, raw_y, test_dir, classes)
    p = predict(model, feature_matrix(model, columns, "evaluated"))
    if problem == MULTICLASS:
        # A label the model never learned (a new class in production) is a class of its own
        # with probability 0: every such row is wrong (its log loss at the clipped floor), as
        # scikit-learn scores labels missing from the predictions, and the run still publishes.
        unseen = every[len(classes) :]
        p = np.pad(p, ((0, 0), (0, len(unseen))))
        point = metrics_multiclass.point_metrics(y, p, every)
        [samples] = metrics_multiclass.bootstrap(y, [p], n, seed)
        section = metrics_multiclass.quality_section(point, samples)
        per_class = np.bincount(y, minlength=len(every))
        counts = {
            "class_counts": dict(zip(every, map(int, per_class), strict=True)),
            "unseen_classes": list(unseen),
            "unseen_class_rows": int(per_class[len(classes) :].sum()),
        }
        if unseen:
            LOG.warning(
                "%d row(s) of class(es) %s the model never learned: scored as wrong",
                counts["unseen_class_rows"],
                list(unseen),
            )
        return Scored(
            problem, metrics_multiclass.SECTION, CW_MULTICLASS_QUALITY_METRICS, section, y, p,
            counts,
        )  # fmt: skip
    point = metrics_regression.point_metrics(y, p)
    [samples] = metrics_regression.bootstrap(y, [p], n, seed)
    section = metrics_regression.quality_section(point, samples)
    return Scored(
        problem, metrics_regression.SECTION, CW_REGRESSION_QUALITY_METRICS, section, y, p, {}
    )
