"""Checkpoints of managed spot training, and resuming from them: the booster is saved every few
rounds (atomically, the newest kept), and a restarted job continues from the latest one with
early stopping that remembers the rounds before the interruption."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import xgboost as xgb

from common.failure import xgboost_message

LOG = logging.getLogger("train")

CHECKPOINT_PREFIX = "xgboost-checkpoint."
CHECKPOINTS_KEPT = 2
DEFAULT_CHECKPOINT_DIR = "/opt/ml/checkpoints"
#: Early stopping minimises the validation log loss: stopping on AUC under a class weight halts
#: after a handful of trees, and log loss is what makes the probabilities calibrated.
EARLY_STOPPING_METRIC = "logloss"
VALIDATION_NAME = "validation"


class CheckpointCallback(xgb.callback.TrainingCallback):
    """Save the booster every `every` rounds (atomically); keep the newest `keep` files."""

    def __init__(self, directory: Path, every: int, keep: int = CHECKPOINTS_KEPT) -> None:
        super().__init__()
        self.directory = directory
        self.every = every
        self.keep = keep

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: Any) -> bool:
        rounds = model.num_boosted_rounds()
        if self.every and rounds % self.every == 0:
            try:
                save_checkpoint(model, self.directory, rounds, self.keep)
            except OSError as error:
                # Checkpoints only speed up a restart; a job without them still trains.
                LOG.warning("cannot write checkpoints to %s (%s): disabled", self.directory, error)
                self.every = 0
        return False


def save_checkpoint(model: xgb.Booster, directory: Path, rounds: int, keep: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{CHECKPOINT_PREFIX}{rounds:06d}"
    partial = path.with_name(path.name + ".partial")
    # Write-then-rename: an interruption never leaves a half-written "latest" checkpoint.
    partial.write_bytes(model.save_raw(raw_format="ubj"))
    os.replace(partial, path)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoint files in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    pattern = re.compile(re.escape(CHECKPOINT_PREFIX) + r"(\d+)$")
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := pattern.match(p.name))]
    return [p for _, p in sorted(found)]


def load_latest_checkpoint(directory: Path) -> xgb.Booster | None:
    for path in reversed(list_checkpoints(directory)):
        try:
            booster = xgb.Booster()
            booster.load_model(bytearray(path.read_bytes()))
            return booster
        except xgb.core.XGBoostError as error:
            LOG.warning(
                "checkpoint %s is unreadable (%s): trying an older one",
                path,
                xgboost_message(error),
            )
    return None


class ResumableEarlyStopping(xgb.callback.EarlyStopping):
    """Early stopping that remembers the best score of the rounds before a resume.

    The stock callback starts its history afresh when training continues from a checkpoint,
    so the first resumed round would count as "best". The checkpointed booster carries the
    best score and iteration as attributes; seed the history with them.
    """

    def before_training(self, model: xgb.Booster) -> xgb.Booster:
        model = super().before_training(model)
        best_score, best_iteration = model.attr("best_score"), model.attr("best_iteration")
        if self.starting_round > 0 and best_score is not None and best_iteration is not None:
            score = float(best_score)
            data = self.data or VALIDATION_NAME
            metric = self.metric_name or EARLY_STOPPING_METRIC
            self.stopping_history = {data: {metric: [score]}}
            self.best_scores = {data: {metric: [score]}}
            self.current_rounds = self.starting_round - 1 - int(best_iteration)
        return model
