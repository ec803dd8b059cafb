"""What evaluate.py promises its readers: evaluation.json's file and key names, the gate's
decision values, the registry metadata it prepares, the values of its model arguments, and the
CloudWatch model-quality metric names.

The pipeline definition (pipeline_code.definition.step_code), gate.py and the CLI read these
string constants from this file as text, without importing it: keep them plain
`NAME = "literal"` assignments.
"""

from __future__ import annotations

# evaluation.json layout: the definition generator and gate.py read these names from here.
EVALUATION_FILE = "evaluation.json"
METRICS_KEY = "binary_classification_metrics"
CHAMPION_METRICS_KEY = "champion_binary_classification_metrics"
GATE_KEY = "gate"
GATE_METRIC = "metric"
GATE_CHALLENGER = "challenger"
GATE_CHAMPION = "champion"
GATE_HAS_CHAMPION = "has_champion"
GATE_DELTA = "delta"
GATE_STANDARD_ERROR = "standard_error"
# The one-sided 97.5 % confidence bounds of the delta (together: the two-sided 95 % interval).
GATE_LOWER_BOUND = "lower_97_5"
GATE_UPPER_BOUND = "upper_97_5"
GATE_CHAMPION_ARN = "champion_model_package_arn"
GATE_TEST_ROWS = "test_rows"
# Evaluate decides; the pipeline's ConditionStep registers iff decision == GATE_REGISTER, and the
# Fail step's message is the reason.
GATE_DECISION = "decision"
GATE_REASON = "reason"
GATE_REGISTER = "register"
GATE_DO_NOT_REGISTER = "do-not-register"
CALIBRATION_KEY = "calibration"
CHAMPION_CALIBRATION_KEY = "champion_calibration"
BASELINE_KEY = "baseline"
THRESHOLD_KEY = "decision_threshold"
DATA_SHIFT_KEY = "data_shift"
# What the Register step copies into the model package's CustomerMetadataProperties: strings of
# at most 256 characters, under these keys in evaluation.json's REGISTRY_KEY section.
REGISTRY_KEY = "registry_metadata"
REGISTRY_SPLIT_RULE = "split_rule"
REGISTRY_DECISION_THRESHOLD = "decision_threshold"
REGISTRY_DATA_SHIFT = "data_shift"
REGISTRY_CHAMPION_COMPARISON = "champion_comparison"
# Score-one-model mode: which package was scored, on which data, what went to CloudWatch.
MODEL_KEY = "model"
DATASET_KEY = "dataset"
PUBLISHED_METRICS_KEY = "cloudwatch"
#: `--champion-model-package-arn` value: nothing was served when the run started.
NO_CHAMPION = "none"
#: `--model-role` values: the package the Serving stack serves (its metrics feed the quality
#: alarm), or any other package scored on request (published under CW_DIMENSION_CANDIDATE).
ROLE_PRODUCTION = "production"
ROLE_CANDIDATE = "candidate"

# CloudWatch model-quality metrics (score-one-model mode); alarms and dashboards use these names.
CW_DIMENSION_GROUP = "ModelPackageGroup"
CW_DIMENSION_VERSION = "ModelVersion"
#: A candidate's only dimension set is [ModelPackageGroup, CandidateVersion]: never the
#: group-only set the production quality alarm watches.
CW_DIMENSION_CANDIDATE = "CandidateVersion"
CW_METRIC_AUC = "AUC"
CW_METRIC_ACCURACY = "Accuracy"
CW_METRIC_PRECISION = "Precision"
CW_METRIC_RECALL = "Recall"
CW_METRIC_F1 = "F1"
CW_METRIC_LOG_LOSS = "LogLoss"
CW_METRIC_ROWS = "RowsEvaluated"
# Multi-class: labelled rows of a class the model never learned (scored as wrong).
CW_METRIC_UNSEEN_CLASS_ROWS = "UnseenClassRows"
# The other problem types' metrics (and so the quality alarm's metric names for their gate
# metrics).
CW_METRIC_MACRO_F1 = "MacroF1"
CW_METRIC_WEIGHTED_F1 = "WeightedF1"
CW_METRIC_RMSE = "RMSE"
CW_METRIC_MAE = "MAE"
CW_METRIC_MSE = "MSE"
CW_METRIC_R2 = "R2"
#: CloudWatch metric name -> key in the metrics section (all unit "None").
CW_QUALITY_METRICS = (
    (CW_METRIC_AUC, "auc"),
    (CW_METRIC_ACCURACY, "accuracy"),
    (CW_METRIC_PRECISION, "precision"),
    (CW_METRIC_RECALL, "recall"),
    (CW_METRIC_F1, "f1"),
    (CW_METRIC_LOG_LOSS, "log_loss"),
)
#: The same for a multi-class model (keys of `multiclass_classification_metrics`).
CW_MULTICLASS_QUALITY_METRICS = (
    (CW_METRIC_ACCURACY, "accuracy"),
    (CW_METRIC_MACRO_F1, "macro_f1"),
    (CW_METRIC_WEIGHTED_F1, "weighted_f1"),
    (CW_METRIC_LOG_LOSS, "log_loss"),
)
#: The same for a regression model (keys of `regression_metrics`).
CW_REGRESSION_QUALITY_METRICS = (
    (CW_METRIC_RMSE, "rmse"),
    (CW_METRIC_MAE, "mae"),
    (CW_METRIC_MSE, "mse"),
    (CW_METRIC_R2, "r2"),
)

# Integrity and lineage (training mode): the registry copies these into the package's
# CustomerMetadataProperties, so the values are model-package-metadata-safe strings.
LINEAGE_KEY = "lineage"
#: SHA-256 of the challenger's model.tar.gz as SageMaker stored it (the deployer checks it).
LINEAGE_MODEL_ARTIFACT_SHA256 = "model_artifact_sha256"
#: How the champion was compared: CHAMPION_SCORED, CHAMPION_OWN_FEATURES, CHAMPION_NONE or a
#: "floor only: ..." reason (details under LINEAGE_CHAMPION).
LINEAGE_CHAMPION_COMPARISON = "champion_comparison"
LINEAGE_CHAMPION = "champion"
CHAMPION_SCORED = "scored on the same features"
CHAMPION_OWN_FEATURES = "scored on its own features"
CHAMPION_NONE = "no champion: floor only"
