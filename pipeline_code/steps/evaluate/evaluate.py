"""Evaluate step (SageMaker Processing job): challenger vs champion on the same test split.

Scores the newly trained model (the challenger: `--model-dir` holding `model.tar.gz` or
`xgboost-model`) on the test split written by prepare.py, and the model in production (the
champion) on the very same rows. The champion comes from `--champion-model-dir` (a local
directory) or `--champion-model-package-arn` (the package the Serving stack served when the run
started, chosen by the start-training Lambda: the pipeline's ChampionModelPackageArn
parameter, so the step's cache key changes with the champion; `none`: no champion), which must
be an Approved package of `--model-package-group` without a rollback mark whose model.tar.gz
has its recorded SHA-256 (champion_choice, model_registry). No champion means only the metric
floor applies in the gate; so does a champion trained on features the test split lacks (the
reason is in evaluation.json's `lineage` section, with the challenger's model.tar.gz SHA-256
that the registry records).

The champion is compared only on the test rows it never trained on (`comparison_rows`: a row's
split is recorded as a rule that travels with each model). The gate metric's difference comes
with its standard error (DeLong's for AUC, the paired bootstrap's otherwise) and its one-sided
97.5 % confidence bounds, and Evaluate decides the gate (`gate_rule`: `--floor`,
`--tolerance`, `--min-positives`, `--gate-method`, from the deployed configuration): the
pipeline registers iff evaluation.json's gate decision is `register`.

Writes to `--output-dir`: evaluation.json (SageMaker model-quality layout plus `gate`,
`calibration`, `baseline`, `decision_threshold`, `data_shift` and `registry_metadata` sections,
see `evaluation_contract`), roc.png, confusion_matrix.png and reliability.png (when matplotlib
is available; it is in the SageMaker XGBoost 3.0-5 container).

Score-one-model mode (the evaluation-only pipeline): `--model-package-arn ARN` scores that
registered package of `--model-package-group`, as `--model-role production` (the package the
Serving stack serves) or `candidate` (default); there is no challenger, no `--model-dir` and no
gate. evaluation.json has the model's problem type's metrics section (binary, multi-class or
regression, as in training mode) plus `model` and `dataset` sections. With
`--metrics-namespace NS` the metrics are also published to CloudWatch (PutMetricData): binary
AUC, Accuracy, Precision, Recall, F1, LogLoss; multi-class Accuracy, MacroF1, WeightedF1,
LogLoss (and UnseenClassRows, Count); regression RMSE, MAE, MSE, R2 (unit None), and
RowsEvaluated (Count); a production model's with the dimensions [ModelPackageGroup] (what the
quality alarm watches: it stays fixed as versions change) and [ModelPackageGroup,
ModelVersion], a candidate's only with [ModelPackageGroup, CandidateVersion] (model_quality).

Across processing instances (pipeline.processing_instance_count > 1): EvaluateShards runs
this script with `--predictions-output DIR` on every instance (each predicts its share of the
test files, ShardedByS3Key, and stops), then Evaluate with `--predictions-dir DIR` reads those
predictions in row order instead of predicting (`shard_predictions`); the metrics, bootstrap,
gate, plots and report are the single instance's, byte for byte.

On failure: exit code 1, the reason on stderr and in /opt/ml/output/message (the job's
ExitMessage; override with the FAILURE_REASON_FILE environment variable).

Uploaded with its folder (`evaluation_contract`, `model_loading`, `model_registry`,
`champion_choice`, `scoring_data`, `quality_metrics`, `paired_bootstrap`, `delong`, `gate_rule`,
`gate_evidence`, `comparison_rows`, `calibration_metrics`, `data_shift`, `evaluation_report`,
`evaluation_plots`, `comparison`, `model_quality`, `shard_predictions`; for multi-class and
regression models `typed_comparison`, `metrics_multiclass`, `metrics_regression`) and the
shared `common` package as one source directory.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

# The step's modules and `common` are uploaded beside this script: import them from here,
# however Python was started.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common.failure import PROCESSING_FAILURE_FILE
from common.runner import configure_logging, run_step
from comparison import GATE_METRICS, score_challenger
from evaluation_contract import NO_CHAMPION, ROLE_CANDIDATE, ROLE_PRODUCTION
from model_loading import DEFAULT_MODEL_DIR, EvaluationError
from model_quality import score_registered_model
from scoring_data import csv_files
from shard_predictions import Predictions, write_shard

LOG = logging.getLogger("evaluate")

DEFAULT_TEST_DIR = "/opt/ml/processing/test"
DEFAULT_OUTPUT_DIR = "/opt/ml/processing/evaluation"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Score challenger and champion on the test set, or one registered model."
    )
    parser.add_argument(
        "--model-dir", default=None, help=f"challenger model (default {DEFAULT_MODEL_DIR})"
    )
    parser.add_argument("--test-dir", default=DEFAULT_TEST_DIR, help="prepare.py's test split")
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help="evaluation.json, plots")
    parser.add_argument("--target", default="is_fraud", help="target column (is_fraud)")
    parser.add_argument("--metric", default="auc", help=f"gate metric, one of {GATE_METRICS}")
    parser.add_argument(
        "--trainer",
        default="xgboost",
        help="the deployed configuration's pipeline.trainer (xgboost): a scikit-learn model (a "
        "pickle) is loaded only when it is sklearn",
    )
    parser.add_argument("--bootstrap-samples", type=int, default=1000, help="(1000)")
    parser.add_argument("--seed", type=int, default=42, help="bootstrap seed (42)")
    gate = parser.add_argument_group("the gate (the deployed configuration's pipeline.*)")
    gate.add_argument("--floor", type=float, default=0.8, help="metric floor (0.8)")
    gate.add_argument("--tolerance", type=float, default=0.01, help="champion tolerance (0.01)")
    gate.add_argument(
        "--min-positives", type=int, default=100, help="rows of each class needed (100)"
    )
    gate.add_argument(
        "--gate-method", default="delong", help="AUC's standard error: delong or bootstrap"
    )
    champion = parser.add_mutually_exclusive_group()
    champion.add_argument("--champion-model-dir", help="local champion model (optional)")
    champion.add_argument(
        "--champion-model-package-arn",
        help=f"registered champion: the package served when the run started; '{NO_CHAMPION}': "
        "no champion",
    )
    parser.add_argument(
        "--model-package-group",
        help="this environment's registry group: every registered model scored must be in it",
    )
    one = parser.add_argument_group("score one registered model (no challenger, no gate)")
    one.add_argument(
        "--model-package-arn",
        # A bare flag counts as empty: the pipeline's empty default must work even if the
        # empty container argument were dropped.
        nargs="?",
        const="",
        default=None,
        help="model package to score (an empty value is an error: there is no default model)",
    )
    one.add_argument(
        "--model-role",
        default=ROLE_CANDIDATE,
        help=f"'{ROLE_PRODUCTION}': the served package (checked Approved; its metrics feed the "
        f"quality alarm); '{ROLE_CANDIDATE}' (default): published apart",
    )
    one.add_argument(
        "--metrics-namespace",
        default=None,
        help="CloudWatch namespace to publish the metrics to (default: do not publish)",
    )
    one.add_argument("--dataset-version", default=None, help="recorded in evaluation.json")
    one.add_argument("--data-digest", default=None, help="recorded in evaluation.json")
    shards = parser.add_argument_group(
        "across processing instances (EvaluateShards, then Evaluate; shard_predictions)"
    )
    shards.add_argument(
        "--predictions-output",
        default=None,
        help="EvaluateShards: predict this instance's test files with the challenger and the "
        "champion, write the predictions here, and stop (no metrics, no gate)",
    )
    shards.add_argument(
        "--predictions-dir",
        default=None,
        help="Evaluate: read EvaluateShards' predictions from here instead of predicting",
    )
    return parser.parse_args(argv)


def main(
    argv: list[str] | None = None,
    sagemaker_client: Any = None,
    s3_client: Any = None,
    cloudwatch_client: Any = None,
) -> int:
    """Run the step; 0 on success, 1 on failure (reason in the failure file and stderr).

    The clients default to boto3 clients, created only when needed
    (`--champion-model-package-arn`, `--model-package-arn`, `--metrics-namespace`).
    """
    configure_logging(LOG)
    args = parse_args(argv)

    def work() -> None:
        _check_shard_arguments(args)
        with tempfile.TemporaryDirectory(prefix="evaluate-") as scratch:
            if args.predictions_output is not None:
                write_shard(args, Path(scratch), sagemaker_client, s3_client)
                return
            if args.predictions_dir is not None:
                test_dir = Path(args.test_dir)
                args.predictions = Predictions(
                    Path(args.predictions_dir), test_dir, csv_files(test_dir)
                )
            if args.model_package_arn is not None:
                score_registered_model(
                    args, Path(scratch), sagemaker_client, s3_client, cloudwatch_client
                )
            else:
                score_challenger(args, Path(scratch), sagemaker_client, s3_client)

    return run_step(
        "evaluate",
        LOG,
        work,
        failure_file=PROCESSING_FAILURE_FILE,
        expected=(EvaluationError,),
        xgboost_errors=_xgboost_errors(),
    )


def _check_shard_arguments(args: argparse.Namespace) -> None:
    if args.predictions_output is not None and args.predictions_dir is not None:
        raise EvaluationError("--predictions-output and --predictions-dir: one or the other")
    if args.model_package_arn is not None and (args.predictions_output or args.predictions_dir):
        raise EvaluationError(
            "--predictions-output and --predictions-dir score a challenger across processing "
            "instances: not with --model-package-arn"
        )


def _xgboost_errors() -> tuple[type[BaseException], ...]:
    """XGBoost's error, where xgboost is installed (the scikit-learn image, which Evaluate runs
    in for a scikit-learn model, has none)."""
    try:
        import xgboost as xgb
    except ImportError:
        return ()
    return (xgb.core.XGBoostError,)


if __name__ == "__main__":
    sys.exit(main())
