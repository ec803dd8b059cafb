"""The record of the data a model was trained on, as it travels: Prepare writes it beside the
train split (`train/training_data.json`), Train copies it into the model's metadata
(`metadata/model-metadata.json`, key `training_data`), and Evaluate reads it from both models to
know which rows the champion trained on and how far the new data moved from its data.

    split_rule    the split's record (`common.stable_split`): method, key, seed, fractions
    version_rows  rows of the dataset version (labelled rows only)
    splits        rows, positives and negatives per split
    reference     profile of the training split: rows, positives and, per feature, the
                  `common.feature_profile` profile
    labels        what the target's 1 and 0 stand for (`common.labels.label_mapping`)
    feature_types the schema's type per feature, in order: Train encodes the `category` ones
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The file Prepare writes into the train split's folder (the train channel), next to train.csv.
TRAINING_DATA_FILE = "training_data.json"
#: The key of the record in the model's metadata.
METADATA_KEY = "training_data"
KEYS = ("split_rule", "version_rows", "splits", "reference")


def record(
    split_rule: dict[str, Any],
    version_rows: int,
    splits: dict[str, Any],
    reference: dict[str, Any],
    labels: dict[str, Any] | None = None,
    feature_types: dict[str, str] | None = None,
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "split_rule": split_rule,
        "version_rows": int(version_rows),
        "splits": splits,
        "reference": reference,
    }
    if labels:
        content["labels"] = labels
    if feature_types:
        content["feature_types"] = feature_types
    return content


def read_record(directory: Path) -> dict[str, Any] | None:
    """The record in a train channel folder, or None when there is none (a channel not written
    by Prepare). A record that is not a JSON object with the keys above is an error."""
    path = directory / TRAINING_DATA_FILE
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{TRAINING_DATA_FILE} is not readable JSON: {error}") from error
    if not isinstance(content, dict) or any(key not in content for key in KEYS):
        raise ValueError(f"{TRAINING_DATA_FILE} must be an object with {', '.join(KEYS)}")
    return content
