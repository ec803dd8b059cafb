"""Step code: publishing it content-addressed, and the names the definition reads from it.

Each step's code directory (its folder plus the shared ``common/``) is addressed by its content
hash, so an unchanged step keeps its cache key when another step's code changes. The
evaluation.json and CloudWatch names are read from evaluate's contract module as text (never
imported: the generator must not pay for pandas and xgboost).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlops_config.trainer import LOOP_FOLDER
from pipeline_code import offline
from pipeline_code.definition.contract import SCHEMA_FILE_NAME
from pipeline_code.definition.setting_rules import SettingsError
from pipeline_code.definition.settings import PipelineSettings
from pipeline_code.steps import COMMON, SCORING_STEPS, STEPS, STEPS_DIR, TRAINER_STEPS

# evaluation_contract.py's constants the definition reads (one source of truth).
EVALUATE_CONSTANTS = {
    "file": "EVALUATION_FILE",
    "gate": "GATE_KEY",
    "challenger": "GATE_CHALLENGER",
    "decision": "GATE_DECISION",
    "reason": "GATE_REASON",
    "register": "GATE_REGISTER",
    "registry": "REGISTRY_KEY",
    "split_rule": "REGISTRY_SPLIT_RULE",
    "decision_threshold": "REGISTRY_DECISION_THRESHOLD",
    "data_shift": "REGISTRY_DATA_SHIFT",
    "champion_comparison": "REGISTRY_CHAMPION_COMPARISON",
}

# evaluate's CloudWatch names (score-one-model mode), for alarms and dashboards.
MODEL_QUALITY_CONSTANTS = {
    "auc": "CW_METRIC_AUC",
    "accuracy": "CW_METRIC_ACCURACY",
    "precision": "CW_METRIC_PRECISION",
    "recall": "CW_METRIC_RECALL",
    "f1": "CW_METRIC_F1",
    "log_loss": "CW_METRIC_LOG_LOSS",
    "macro_f1": "CW_METRIC_MACRO_F1",
    "weighted_f1": "CW_METRIC_WEIGHTED_F1",
    "rmse": "CW_METRIC_RMSE",
    "mae": "CW_METRIC_MAE",
    "mse": "CW_METRIC_MSE",
    "r2": "CW_METRIC_R2",
    "rows": "CW_METRIC_ROWS",
    "group_dimension": "CW_DIMENSION_GROUP",
    "version_dimension": "CW_DIMENSION_VERSION",
}

#: evaluate's module of string constants (evaluation.json, CloudWatch names): read, never run.
EVALUATION_CONTRACT = STEPS_DIR / "evaluate" / "evaluation_contract.py"
SHARD_PARTS = STEPS_DIR / "prepare" / "shard_parts.py"
#: The root `pipeline.custom.source_dir` is relative to.
REPOSITORY = STEPS_DIR.parents[1]


@dataclass(frozen=True)
class CodeLocations:
    """Where each step's code lives (placeholder S3 URIs) and where SDK uploads go.

    Each step's code is a directory: its folder under ``steps/`` with ``common/`` beside the
    entry script, addressed by the hash of both.

    Attributes:
        prepare_script: URI of prepare.py in its code directory; the processing step mounts the
            whole directory at /opt/ml/processing/input/code/ and runs prepare.py from there.
        train_source_dir: URI prefix (ending in ``/``) of the directory holding train.py.
        evaluate_script: URI of evaluate.py in its code directory (mounted like prepare's).
        schema_file: URI of the feature schema JSON given to prepare.py.
        store: Receives what the SDK uploads while rendering (ModelTrainer's drivers).
        evaluation_keys: evaluation.json's file and gate key names, read from evaluate's
            contract module (see :func:`evaluation_keys`).
        score_script: URI of score.py in its code directory (batch serving's scoring
            pipeline; "" when the settings have no scoring pipeline, which publishes nothing).
        train_sklearn_source_dir: URI prefix of the directory holding train_sklearn.py, with
            train/'s modules in its `train/` folder (the scikit-learn trainer; "" otherwise).
        custom_source_dir: URI prefix of `pipeline.custom.source_dir`'s copy (the custom
            trainer; "" otherwise).
    """

    prepare_script: str
    train_source_dir: str
    evaluate_script: str
    schema_file: str
    store: offline.CodeStore
    evaluation_keys: Mapping[str, str]
    score_script: str = ""
    train_sklearn_source_dir: str = ""
    custom_source_dir: str = ""


def read_string_constants(path: Path) -> dict[str, str]:
    """Module-level ``NAME = "literal"`` assignments of a Python file, without importing it.

    Reading evaluate's key names this way keeps one source of truth without paying for its
    imports (pandas, xgboost) in the generator.
    """
    constants: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if (
                isinstance(target, ast.Name)
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
            ):
                constants[target.id] = value.value
    return constants


def evaluation_keys(contract_file: Path = EVALUATION_CONTRACT) -> dict[str, str]:
    """evaluation.json's file name and gate key names, as evaluate's contract module defines them.

    Returns a mapping from the keys of :data:`EVALUATE_CONSTANTS` to their values.

    Raises:
        ValueError: the contract module no longer defines one of the constants.
    """
    constants = read_string_constants(contract_file)
    missing = sorted(name for name in EVALUATE_CONSTANTS.values() if name not in constants)
    if missing:
        raise ValueError(
            f"{contract_file} does not define {', '.join(missing)}: the pipeline's gate "
            "reads evaluation.json through these constants"
        )
    return {key: constants[name] for key, name in EVALUATE_CONSTANTS.items()}


def model_quality_metrics(contract_file: Path = EVALUATION_CONTRACT) -> dict[str, str]:
    """CloudWatch metric and dimension names the evaluation pipeline publishes (as evaluate's
    contract module defines them).

    Returns a mapping from the keys of :data:`MODEL_QUALITY_CONSTANTS` to names, e.g.
    ``{"auc": "AUC", ..., "rows": "RowsEvaluated", "group_dimension": "ModelPackageGroup",
    "version_dimension": "ModelVersion"}``. The namespace is
    :attr:`PipelineSettings.model_quality_namespace`. Alarms should use only the
    ``group_dimension`` (the version changes with every promotion).

    Raises:
        ValueError: the contract module no longer defines one of the constants.
    """
    constants = read_string_constants(contract_file)
    missing = sorted(n for n in MODEL_QUALITY_CONSTANTS.values() if n not in constants)
    if missing:
        raise ValueError(f"{contract_file} does not define {', '.join(missing)}")
    return {key: constants[name] for key, name in MODEL_QUALITY_CONSTANTS.items()}


def publish_step_code(
    settings: PipelineSettings, steps_dir: Path, store: offline.CodeStore
) -> CodeLocations:
    """Copy each step's code and the schema into ``store``, one content hash per step.

    A step's code directory is its folder with ``common/`` inside it, so changing one step's
    files leaves the other steps' URIs (and cache keys) as they were; changing ``common/``
    changes every step's.

    Args:
        settings: Provides the schema.
        steps_dir: Directory with the step folders (prepare/, train/, evaluate/, each with its
            entry script of the same name) and common/.
        store: Content-addressed destination.
    """
    # The scoring step only where there is a scoring pipeline: the other modes' code store
    # (and so their templates) stay as they were.
    steps = (*STEPS, *SCORING_STEPS) if settings.scoring is not None else STEPS
    folders = {step: steps_dir / step for step in steps}
    required = [folder / f"{step}.py" for step, folder in folders.items()]
    required.append(steps_dir / COMMON / "__init__.py")
    missing = [str(path) for path in required if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"step scripts not found: {', '.join(missing)}")
    code = {
        step: store.put_tree({"": folder, COMMON: steps_dir / COMMON})
        for step, folder in folders.items()
    }
    if settings.sklearn is not None:
        (sklearn_step,) = TRAINER_STEPS
        code[sklearn_step] = store.put_tree(
            {"": steps_dir / sklearn_step, COMMON: steps_dir / COMMON, "train": folders["train"]}
        )
    if settings.custom is not None:
        source = REPOSITORY / settings.custom.source_dir
        if not (source / settings.custom.entry_script).is_file():
            raise FileNotFoundError(
                f"settings.custom: no {settings.custom.entry_script} in {source} "
                "(pipeline.custom.source_dir is relative to the repository root)"
            )
        if has_category_features(settings.schema):
            code["custom"], code["evaluate"] = custom_category_trees(
                source, folders, steps_dir, store
            )
        else:
            code["custom"] = store.put_tree({"": source})
    schema = json.dumps(settings.schema, sort_keys=True, separators=(",", ":")) + "\n"
    return CodeLocations(
        prepare_script=code["prepare"] + "prepare.py",
        train_source_dir=code["train"],
        evaluate_script=code["evaluate"] + "evaluate.py",
        schema_file=store.put_bytes(SCHEMA_FILE_NAME, schema.encode()),
        store=store,
        evaluation_keys=evaluation_keys(steps_dir / EVALUATION_CONTRACT.relative_to(STEPS_DIR)),
        score_script=code["score"] + "score.py" if "score" in code else "",
        train_sklearn_source_dir=code.get("train_sklearn", ""),
        custom_source_dir=code.get("custom", ""),
    )


def has_category_features(schema: Mapping[str, object]) -> bool:
    """Whether the schema has a `category` feature (the one test the definition uses)."""
    features = schema.get("features")
    return isinstance(features, list) and any(f.get("type") == "category" for f in features)


def custom_category_trees(
    source: Path, folders: Mapping[str, Path], steps_dir: Path, store: offline.CodeStore
) -> tuple[str, str]:
    """(custom, evaluate) code trees of a custom trainer with category features: the user's
    folder with the loop's serving code in `mlops_loop/`, and Evaluate's folder with `train/`
    (the inference.py an archive's code/ must equal byte for byte)."""
    if (source / LOOP_FOLDER).exists():
        raise SettingsError(
            f"settings.custom: {source / LOOP_FOLDER} is a folder of yours, but with category "
            "features the loop ships its serving code there: rename your folder"
        )
    common = steps_dir / COMMON
    custom = store.put_tree(
        {"": source, LOOP_FOLDER: folders["train"], f"{LOOP_FOLDER}/{COMMON}": common}
    )
    evaluate = store.put_tree({"": folders["evaluate"], COMMON: common, "train": folders["train"]})
    return custom, evaluate


def shard_parts_dir(module: Path = SHARD_PARTS) -> str:
    """The folder below `--output-dir` where `prepare.py --shard` writes its parts (its
    `PARTS_DIR`): the PrepareShards output uploads that folder and is named after it."""
    return read_string_constants(module)["PARTS_DIR"]
