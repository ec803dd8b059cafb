"""The champion of a training run: which model it is, whether it can be compared, and on which
features; plus evaluation.json's `lineage` section (what the registry records about it).

The champion comes from `--champion-model-dir` (a local directory), or from
`--champion-model-package-arn`: the package the Serving stack served when the run started
(chosen by the start-training Lambda; `none`: nothing was served). A registered champion must
belong to `--model-package-group`, be Approved and carry no rollback mark, and its artifact
must have its recorded SHA-256 (model_registry); otherwise the step fails with the reason.

Schema changes: a champion trained on other features than the challenger is scored on its own
features when the test split has every one of them (a feature was added), and otherwise (a
feature was removed or renamed, or an unnamed model's feature count differs) left out: the gate
then applies the floor alone, and evaluation.json and the registry metadata say why. Before,
such a champion failed every run until someone intervened by hand. A champion of another
problem type (or, multi-class, class list) than the challenger is left out the same way
(`comparable_champion`): one rule for Evaluate on one instance and for EvaluateShards.
"""

from __future__ import annotations

import argparse
import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.problem_types import BINARY, MULTICLASS
from evaluation_contract import (
    CHAMPION_NONE,
    CHAMPION_OWN_FEATURES,
    CHAMPION_SCORED,
    LINEAGE_CHAMPION,
    LINEAGE_CHAMPION_COMPARISON,
    LINEAGE_MODEL_ARTIFACT_SHA256,
    NO_CHAMPION,
)
from model_loading import EvaluationError, LoadedModel, load_model_dir
from model_registry import PACKAGE_NAME_RE, load_registered_model, registry_clients
from scoring_data import model_matrix

LOG = logging.getLogger("evaluate")
FLOOR_ONLY = "floor only: "
ANOTHER_PROBLEM = FLOOR_ONLY + "champion of another problem type"
_LISTED = 10
# CustomerMetadataProperties values: `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`, 1-256 characters.
_METADATA_PUNCTUATION = frozenset("_.:/=+-@")
_METADATA_LENGTH = 256


def metadata_safe(text: str) -> str:
    """`text` as a CustomerMetadataProperties value: other characters become spaces."""
    kept = "".join(
        char if unicodedata.category(char)[0] in "LNZ" or char in _METADATA_PUNCTUATION else " "
        for char in text
    )
    return " ".join(kept.split())[:_METADATA_LENGTH] or "-"


@dataclass
class ChampionChoice:
    """The champion as the comparison uses it.

    Attributes:
        model: the champion to score, or None (no champion, or one that cannot be compared).
        matrix: the test features in the champion's own order (None without a model).
        comparison: how it was compared, as the registry records it (metadata-safe).
        details: evaluation.json's `lineage.champion`.
    """

    model: LoadedModel | None
    matrix: np.ndarray | None
    comparison: str
    details: dict[str, Any] = field(default_factory=dict)


def problem_of(model: LoadedModel) -> tuple[str, tuple[str, ...]]:
    """The model's problem type and (multi-class) class list, from its metadata."""
    labels = model.metadata.get("labels") or {}
    problem = labels.get("problem_type", BINARY) if isinstance(labels, dict) else BINARY
    classes = labels.get("classes") if isinstance(labels, dict) else None
    return str(problem), tuple(classes or ())


def comparable_champion(champion: LoadedModel, challenger: LoadedModel) -> str | None:
    """Why `champion` cannot be compared with `challenger` (another problem type, or another
    multi-class class list: its scores mean something else), or None when it can."""
    ours, theirs = problem_of(challenger), problem_of(champion)
    if ours[0] == theirs[0] and (ours[0] != MULTICLASS or ours[1] == theirs[1]):
        return None
    named = [f"{kind} {list(classes)}" if classes else kind for kind, classes in (theirs, ours)]
    return f"the champion predicts {named[0]}, the challenger {named[1]}: not comparable"


def load_champion(
    args: argparse.Namespace, scratch: Path, sagemaker_client: Any, s3_client: Any
) -> LoadedModel | None:
    """The champion the arguments name (checked as the docstring says), or None."""
    if args.champion_model_dir:
        # A local directory is this run's own file: as trusted as the challenger's output.
        return load_model_dir(
            Path(args.champion_model_dir), scratch, "champion", verified=True, trainer=args.trainer
        )
    requested = (args.champion_model_package_arn or "").strip()
    if not requested or requested.lower() == NO_CHAMPION:
        LOG.info("nothing was served when the run started: only the metric floor applies")
        return None
    if not PACKAGE_NAME_RE.match(requested):
        raise EvaluationError(
            f"--champion-model-package-arn {requested!r} is not a model package ARN such as "
            f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/my-group/3 "
            f"(or {NO_CHAMPION!r})"
        )
    if not args.model_package_group:
        raise EvaluationError(
            "--champion-model-package-arn needs --model-package-group: the champion must be a "
            "package of this environment's group"
        )
    sagemaker_client, s3_client = registry_clients(sagemaker_client, s3_client)
    return load_registered_model(
        requested,
        sagemaker_client,
        s3_client,
        scratch,
        "champion",
        group=args.model_package_group,
        deployable=True,
        trainer=args.trainer,
    )


def _listed(names: list[str]) -> str:
    more = len(names) - _LISTED
    return ", ".join(names[:_LISTED]) + (f" and {more} more" if more > 0 else "")


def champion_features(
    champion: LoadedModel, columns: dict[str, np.ndarray], challenger_names: list[str] | None
) -> tuple[np.ndarray | None, str, str | None]:
    """(matrix or None, comparison, reason) for scoring `champion` on the test columns."""
    available = list(columns)
    if champion.feature_names is None:
        expected = champion.booster.num_features()
        if expected != len(available):
            reason = (
                f"the champion has no feature names and expects {expected} features; the test "
                f"split has {len(available)}"
            )
            return None, FLOOR_ONLY + "champion features differ from the data", reason
        LOG.warning("champion model has no feature names: using the test set's column order")
        return np.column_stack([columns[n] for n in available]), CHAMPION_SCORED, None
    names = list(champion.feature_names)
    missing = [n for n in names if n not in columns]
    if missing:
        reason = (
            f"the champion was trained on {len(names)} features, {len(missing)} of which the "
            f"test split lacks ({_listed(missing)}): it cannot be scored on these rows"
        )
        return None, FLOOR_ONLY + "champion features missing from the data", reason
    try:
        matrix = model_matrix(champion, columns, names)
    except EvaluationError as error:
        return None, FLOOR_ONLY + "champion features differ from the data", str(error)
    if challenger_names is not None and sorted(names) != sorted(challenger_names):
        return matrix, CHAMPION_OWN_FEATURES, None
    return matrix, CHAMPION_SCORED, None


def choose_champion(
    args: argparse.Namespace,
    columns: dict[str, np.ndarray],
    challenger: LoadedModel,
    scratch: Path,
    sagemaker_client: Any = None,
    s3_client: Any = None,
) -> ChampionChoice:
    """Load, check and align the champion (module docstring); raises EvaluationError."""
    champion = load_champion(args, scratch, sagemaker_client, s3_client)
    return align_champion(champion, columns, challenger)


def align_champion(
    champion: LoadedModel | None, columns: dict[str, np.ndarray], challenger: LoadedModel
) -> ChampionChoice:
    """The loaded `champion` checked against the challenger and aligned to the test columns."""
    if champion is None:
        return ChampionChoice(None, None, CHAMPION_NONE, {"comparison": CHAMPION_NONE})
    mismatch = comparable_champion(champion, challenger)
    if mismatch is None:
        matrix, comparison, reason = champion_features(champion, columns, challenger.feature_names)
    else:
        matrix, comparison, reason = None, ANOTHER_PROBLEM, mismatch
    classes = (champion.positive_class, challenger.positive_class)
    if matrix is not None and None not in classes and classes[0] != classes[1]:
        matrix, comparison = None, FLOOR_ONLY + "champion class 1 differs"
        reason = (
            f"the champion's class 1 is {champion.positive_class!r}, the challenger's "
            f"{challenger.positive_class!r} (schema.positive_class changed): their "
            "probabilities are of different events and cannot be compared"
        )
    details = {
        "model_package_arn": champion.model_package_arn,
        "model_package_version": champion.model_package_version,
        "source": champion.source,
        "artifact_sha256": champion.artifact_sha256,
        "integrity": champion.integrity,
        "feature_names": champion.feature_names,
        "comparison": comparison,
        "reason": reason,
    }
    if matrix is None:
        LOG.warning("champion left out, %s: %s", comparison, reason)
        return ChampionChoice(None, None, metadata_safe(comparison), details)
    return ChampionChoice(champion, matrix, metadata_safe(comparison), details)


def lineage_section(challenger: LoadedModel, choice: ChampionChoice) -> dict[str, Any]:
    """evaluation.json's `lineage`: the challenger's artifact SHA-256 (None for an unpacked
    local directory) and how the champion was compared."""
    return {
        LINEAGE_MODEL_ARTIFACT_SHA256: challenger.artifact_sha256,
        LINEAGE_CHAMPION_COMPARISON: choice.comparison,
        LINEAGE_CHAMPION: choice.details,
    }
