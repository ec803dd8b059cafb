"""The pipelines' contract names, defined once: step and parameter names, container paths,
output names and registry metadata keys that the Lambdas, alarms, the CLI and the step scripts
rely on."""

from __future__ import annotations

import re

# Step names: part of the contract with the Lambdas/alarms that read execution steps.
STEP_PREPARE = "Prepare"
STEP_TRAIN = "Train"
STEP_EVALUATE = "Evaluate"
STEP_GATE = "Gate"
STEP_REGISTER = "Register"
STEP_FAIL = "Fail"
STEP_VALIDATE = "Validate"
STEP_BASELINE = "Baseline"
# With pipeline.processing_instance_count > 1 only: prepare.py --shard on every processing
# instance, before Prepare (then the merge, on one instance).
STEP_PREPARE_SHARDS = "PrepareShards"
# With pipeline.processing_instance_count > 1 only: evaluate.py --predictions-output on every
# processing instance, before Evaluate (which then reads the predictions on one instance).
STEP_EVALUATE_SHARDS = "EvaluateShards"

# Pipeline parameter names. The first three have no default: the start-training Lambda must
# pass them, so an execution without a dataset fails to start.
PARAM_INPUT_DATA_URI = "InputDataUri"
PARAM_DATASET_VERSION = "DatasetVersion"
PARAM_DATA_DIGEST = "DataDigest"
PARAM_CODE_COMMIT = "CodeCommit"
PARAM_PROCESSING_INSTANCE_TYPE = "ProcessingInstanceType"
PARAM_PROCESSING_INSTANCE_COUNT = "ProcessingInstanceCount"
PARAM_TRAINING_INSTANCE_TYPE = "TrainingInstanceType"
PARAM_NUM_ROUND = "NumRound"
PARAM_MAX_DEPTH = "MaxDepth"
PARAM_ETA = "Eta"
PARAM_SUBSAMPLE = "Subsample"
PARAM_COLSAMPLE_BYTREE = "ColsampleBytree"
PARAM_MIN_CHILD_WEIGHT = "MinChildWeight"
PARAM_EARLY_STOPPING_ROUNDS = "EarlyStoppingRounds"
# Training pipeline, no default: the package the Serving stack served when the run started
# ("none" if there is none), chosen by the start-training Lambda; Evaluate checks it against
# the registry. As an argument of Evaluate it is in that
# step's cache key, so a cache hit never compares against a champion that has been replaced.
PARAM_CHAMPION_MODEL_PACKAGE_ARN = "ChampionModelPackageArn"
# Evaluation pipeline: the package to score. The evaluation trigger passes the package the
# Serving stack serves unless the operator named one; "" (the default) fails the run.
PARAM_MODEL_PACKAGE_ARN = "ModelPackageArn"
# Evaluation pipeline: "production" (the trigger chose the served package: its metrics feed the
# quality alarm) or "candidate" (the default: any other package, published apart).
PARAM_MODEL_ROLE = "ModelRole"
MODEL_ROLES = ("candidate", "production")

# Every package the pipeline registers awaits a human: there is no parameter for it, and the
# pipelines' role may create packages only with this status (constructs/sagemaker_execution_role).
REGISTERED_APPROVAL_STATUS = "PendingManualApproval"
# Where the data-landing trigger writes each run's version manifest in the artifact bucket:
# `<prefix><DataDigest>.json` (lambdas/start_training/version_manifest.py writes it,
# steps/prepare/verify_inputs.py checks the run's input against it).
VERSION_MANIFEST_PREFIX = "dataset-manifests/"
# Where a pipeline's jobs write in the artifact bucket: s3://<bucket>/pipelines/<pipeline>/<kind>/.
# The kinds are the Train step's models (OutputDataConfig: ModelDataUrl of every package), its
# spot checkpoints, every job's per-execution outputs and the eval-only pipeline's reports. The
# Training stack scopes each job role to its kinds, and the artifact bucket admits only the
# training job role under the models' prefix (constructs/pipeline_job_roles.py).
PIPELINE_OUTPUTS_ROOT = "pipelines"
TRAINING_OUTPUTS = "training"
CHECKPOINTS = "checkpoints"
EXECUTION_OUTPUTS = "executions"
EVALUATION_REPORTS = "reports"
# The sharded Prepare's parts (`<kind>/<execution>/PrepareShards/parts/`): an extra copy of
# the version per execution, needed only until Prepare merged them, so the artifact bucket
# expires this prefix (`shard_parts_expiration_days`).
SHARD_PARTS = "shard-parts"
# EvaluateShards' output below the same kind (`<kind>/<execution>/EvaluateShards/predictions/`):
# the test split's predictions, needed only until Evaluate read them, expired with the parts.
SHARD_PREDICTIONS = "predictions"
#: The key prefix, below Prepare's test output, of the test split's files (`test.csv`, or
#: `test-00000.csv` ... as prepare/split_test_files.py cuts it) and of nothing else in it
#: (not `labels.json`): what EvaluateShards deals out ShardedByS3Key, so each instance gets
#: test files only (SageMaker deals the matched objects by key; another object would take a
#: test file's place on some instance).
TEST_FILES_PREFIX = "test"


def pipeline_output_prefix(pipeline_name: str, kind: str) -> str:
    """`pipelines/<pipeline_name>/<kind>/`: the key prefix of one kind of a pipeline's outputs."""
    return f"{PIPELINE_OUTPUTS_ROOT}/{pipeline_name}/{kind}/"


def shard_parts_expiration_days(cache_expire_after: str) -> int:
    """Days the shard parts are kept: longer than the step cache (`cache_expire_after`, P<n>D,
    PT<n>H or P<n>DT<n>H), one day more as S3 expires an object at the midnight UTC after its
    age is reached; a PrepareShards cache hit passes the original execution's output URI on,
    so a hit on a run within the cache's lifetime finds its parts. Unverified: that a cache
    hit is never itself the source of a later hit (then the parts could be older); should it
    be, the merge names the expired parts and the fix (`shard_merge.expired_hint`)."""
    days = re.fullmatch(r"P(?:(\d+)D)?(?:T(\d+)H)?", cache_expire_after)
    if days is None or not any(days.groups()):
        raise ValueError(
            f"cache_expire_after {cache_expire_after!r} is not P<n>D, PT<n>H or P<n>DT<n>H"
        )
    hours = int(days.group(1) or 0) * 24 + int(days.group(2) or 0)
    return -(-hours // 24) + 1


# The problem types and the gate metrics of each (steps/common/problem_types.py holds the
# table the step code uses; a test pins that they agree).
PROBLEM_TYPES = ("binary", "multiclass", "regression")
DEFAULT_PROBLEM_TYPE = "binary"
PROBLEM_METRICS = {
    "binary": ("auc", "f1", "accuracy", "precision", "recall"),
    "multiclass": ("accuracy", "macro_f1", "weighted_f1", "log_loss"),
    "regression": ("rmse", "mae", "mse", "r2"),
}
# Metrics in [0, 1] (so is their floor); r2's floor is at most 1, the errors' ceiling >= 0.
UNIT_INTERVAL = frozenset(
    {"auc", "f1", "accuracy", "precision", "recall", "macro_f1", "weighted_f1"}
)
FEATURE_TYPES = ("float", "int", "bool", "category")
SEED = 42

# Container paths of the step scripts' inputs and outputs (the scripts' defaults).
PROCESSING_DIR = "/opt/ml/processing"
SCHEMA_FILE_NAME = "schema.json"
SCHEMA_CONTAINER_PATH = f"{PROCESSING_DIR}/input/schema/{SCHEMA_FILE_NAME}"
PREPARE_OUTPUTS = ("train", "validation", "test", "baseline", "report")
EVALUATION_OUTPUT = "evaluation"
VALIDATE_OUTPUTS = ("test", "report")
BASELINE_STATISTICS_FILE = "statistics.json"
# prepare.py's header-less copy of baseline.csv (features in schema order): Model Monitor names
# the columns of header-less CSV _c0, _c1, ..., like the endpoint's captured CSV requests.
MODEL_MONITOR_BASELINE_FILE = "features.csv"
# Where the Baseline step's statistics.json and constraints.json go (per execution).
BASELINE_RESULTS_OUTPUT = "results"

# What a model package names below its pipeline's prefix, as S3 key patterns: the model (and,
# in a promotion target, the copies with their files) under training/, and per execution
# Evaluate's report, Prepare's baseline folder and the Baseline step's results. Never Prepare's
# splits nor checkpoints: the next environment of a promotion chain may read these alone
# (constructs/promotion_sender.py; lambdas/receive_model/object_copy.py mirrors them).
PACKAGE_FILE_PATTERNS = (
    f"{TRAINING_OUTPUTS}/*",
    f"{EXECUTION_OUTPUTS}/*/{STEP_EVALUATE}/{EVALUATION_OUTPUT}/*",
    f"{EXECUTION_OUTPUTS}/*/{STEP_PREPARE}/baseline/*",
    f"{EXECUTION_OUTPUTS}/*/{STEP_BASELINE}/{BASELINE_RESULTS_OUTPUT}/*",
)

# Drift monitoring: "evidently" (drift_check.py on a schedule, reads Prepare's baseline folder)
# or "model-monitor" (SageMaker Model Monitor, for accounts that still have it).
MONITORING_ENGINE_EVIDENTLY = "evidently"
MONITORING_ENGINE_MODEL_MONITOR = "model-monitor"
MONITORING_ENGINES = (MONITORING_ENGINE_EVIDENTLY, MONITORING_ENGINE_MODEL_MONITOR)
# Model package CustomerMetadataProperties key: Prepare's baseline folder (the drift job's
# reference); lambdas/start_drift_job reads it first.
BASELINE_METADATA_KEY = "baseline_s3_uri"
PROPERTY_FILE_EVALUATION = "EvaluationReport"
