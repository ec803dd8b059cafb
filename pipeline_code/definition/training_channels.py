"""The training job's input channels, and the Prepare argument that shapes them.

One instance (the default): `train` and `validation`, Prepare's folders, FullyReplicated; the
training data record travels inside `train` (exactly the definition this app always emitted).

Several instances (`training_instance_count` N > 1): Prepare writes the train split as N shard
files (`--train-shards N`, under `train/shards/`) and
    train         `<train>/shards`, ShardedByS3Key: each instance receives its own shard files
    validation    the whole validation split on every instance (FullyReplicated): each host
                  evaluates the same rows, so the early-stopping metric is the same everywhere,
                  and the master chooses the threshold and calibration on all of it
    train_record  `<train>/training_data.json`, FullyReplicated: the record the model's
                  metadata carries (inside the sharded channel it would reach one host only)
"""

from __future__ import annotations

from typing import Any

#: Prepare's folder of train shards (pipeline_code/steps/prepare/train_shards.py: SHARDS_DIR).
TRAIN_SHARDS_DIR = "shards"
#: Prepare's training data record (pipeline_code/steps/common/training_data.py).
TRAINING_DATA_FILE = "training_data.json"
#: train.py reads the record from SM_CHANNEL_TRAIN_RECORD when this channel exists.
TRAIN_RECORD_CHANNEL = "train_record"
CONTENT_TYPE = "text/csv"


def train_shard_arguments(instance_count: int) -> list[str]:
    """prepare.py's arguments for `instance_count` training instances: one shard each."""
    return ["--train-shards", str(instance_count)] if instance_count > 1 else []


def training_channels(train_output: Any, validation_output: Any, instance_count: int) -> list[Any]:
    """The `InputData` channels of a training job on `instance_count` instances, from
    Prepare's `train` and `validation` output URIs."""
    from sagemaker.core.shapes import S3DataSource
    from sagemaker.core.training.configs import InputData
    from sagemaker.core.workflow.functions import Join

    if instance_count == 1:
        return [
            InputData(channel_name=name, data_source=uri, content_type=CONTENT_TYPE)
            for name, uri in (("train", train_output), ("validation", validation_output))
        ]

    def s3(uri: Any, distribution: str) -> Any:
        return S3DataSource(
            s3_data_type="S3Prefix", s3_uri=uri, s3_data_distribution_type=distribution
        )

    return [
        InputData(
            channel_name="train",
            data_source=s3(Join(on="/", values=[train_output, TRAIN_SHARDS_DIR]), "ShardedByS3Key"),
            content_type=CONTENT_TYPE,
        ),
        InputData(
            channel_name="validation",
            data_source=s3(validation_output, "FullyReplicated"),
            content_type=CONTENT_TYPE,
        ),
        InputData(
            channel_name=TRAIN_RECORD_CHANNEL,
            data_source=s3(
                Join(on="/", values=[train_output, TRAINING_DATA_FILE]), "FullyReplicated"
            ),
            content_type="application/json",
        ),
    ]
