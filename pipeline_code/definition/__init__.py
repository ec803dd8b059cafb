"""The pipelines, built with the SageMaker Python SDK v3 and rendered offline.

Training: Prepare (Processing) -> Train (Training) -> Evaluate (Processing) -> Gate (Condition)
-> Register (model package, gate passed) | Fail (message with the numbers, gate failed), plus
the Baseline step with the Model Monitor engine (:mod:`.training`). Evaluation only: Validate ->
Evaluate, never registering anything (:mod:`.evaluation`).

Everything account-specific is a ``${Placeholder}`` (see :mod:`pipeline_code.offline`); step
code is addressed by content hash (:mod:`.step_code`), so an unchanged step keeps its cache key
when another step's code changes. The settings (:mod:`.settings`) and the contract names
(:mod:`.contract`) are importable without the SDK; the SDK is imported only inside the
builders, after :func:`pipeline_code.offline.configure_environment`.

The package's modules: ``contract`` (names), ``settings`` (validation), ``step_code``
(publishing, names read from evaluate's contract module), ``parameters``, ``context``
(processors, S3 inputs and outputs), ``shared_steps``, ``training``, ``registration``,
``evaluation``, ``render`` and ``sdk`` (the pinned SDK versions).
"""

from pipeline_code.definition.contract import (
    BASELINE_METADATA_KEY,
    BASELINE_STATISTICS_FILE,
    MODEL_MONITOR_BASELINE_FILE,
    MONITORING_ENGINE_EVIDENTLY,
    MONITORING_ENGINE_MODEL_MONITOR,
    MONITORING_ENGINES,
    PARAM_CHAMPION_MODEL_PACKAGE_ARN,
    PARAM_CODE_COMMIT,
    PARAM_DATA_DIGEST,
    PARAM_DATASET_VERSION,
    PARAM_INPUT_DATA_URI,
    PARAM_MODEL_PACKAGE_ARN,
    PARAM_MODEL_ROLE,
    STEP_BASELINE,
    STEP_EVALUATE,
    STEP_FAIL,
    STEP_GATE,
    STEP_PREPARE,
    STEP_REGISTER,
    STEP_TRAIN,
    STEP_VALIDATE,
)
from pipeline_code.definition.render import (
    UNSTAMPED_CODE_COMMIT,
    render_evaluation_definition,
    render_training_definition,
    stamp_code_commit,
)
from pipeline_code.definition.sdk import (
    SUPPORTED_SDK_VERSION,
    check_sdk_version,
    installed_sdk_version,
)
from pipeline_code.definition.settings import Hyperparameters, PipelineSettings, SettingsError
from pipeline_code.definition.step_code import (
    EVALUATION_CONTRACT,
    STEPS_DIR,
    CodeLocations,
    evaluation_keys,
    model_quality_metrics,
    publish_step_code,
    read_string_constants,
)

__all__ = [
    "BASELINE_METADATA_KEY",
    "EVALUATION_CONTRACT",
    "BASELINE_STATISTICS_FILE",
    "MODEL_MONITOR_BASELINE_FILE",
    "MONITORING_ENGINES",
    "MONITORING_ENGINE_EVIDENTLY",
    "MONITORING_ENGINE_MODEL_MONITOR",
    "PARAM_CHAMPION_MODEL_PACKAGE_ARN",
    "PARAM_CODE_COMMIT",
    "PARAM_DATASET_VERSION",
    "PARAM_DATA_DIGEST",
    "PARAM_INPUT_DATA_URI",
    "PARAM_MODEL_PACKAGE_ARN",
    "PARAM_MODEL_ROLE",
    "STEPS_DIR",
    "STEP_BASELINE",
    "STEP_EVALUATE",
    "STEP_FAIL",
    "STEP_GATE",
    "STEP_PREPARE",
    "STEP_REGISTER",
    "STEP_TRAIN",
    "STEP_VALIDATE",
    "SUPPORTED_SDK_VERSION",
    "CodeLocations",
    "Hyperparameters",
    "PipelineSettings",
    "SettingsError",
    "check_sdk_version",
    "evaluation_keys",
    "installed_sdk_version",
    "model_quality_metrics",
    "publish_step_code",
    "read_string_constants",
    "render_evaluation_definition",
    "render_training_definition",
    "stamp_code_commit",
    "UNSTAMPED_CODE_COMMIT",
]
