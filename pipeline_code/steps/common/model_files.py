"""The model directory, as the train step writes it and evaluate (and the serving container)
read it: SageMaker packs the training job's model directory into `model.tar.gz`."""

from __future__ import annotations

#: The booster (UBJSON); the serving container loads every top-level file as a model.
MODEL_FILE = "xgboost-model"
#: Metadata lives in a subfolder, where the serving container does not look.
METADATA_DIR = "metadata"
METADATA_FILE = "model-metadata.json"
MODEL_ARCHIVE = "model.tar.gz"
#: pipeline.trainer = sklearn: the fitted estimator (joblib), beside `metadata/`; the metadata's
#: `trainer` says which of the two a model directory holds (absent: xgboost).
SKLEARN_MODEL_FILE = "model.joblib"
SKLEARN_TRAINER = "sklearn"
