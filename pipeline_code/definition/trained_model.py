"""What Evaluate and Register read of the step that produced the challenger: its model archive,
the training job that wrote it (lineage) and any other registry metadata that step adds.

A training step and a tuning step (the best trial of the tuning job) answer the same three
questions, so nothing after Train knows which of the two ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrainedModel:
    """The challenger as the steps after Train see it.

    Attributes:
        step: The pipeline step that trained it (TrainingStep or TuningStep).
        artifacts: S3 URI of its model.tar.gz (a pipeline property or Join).
        training_job_name: The training job that wrote the archive (a pipeline property).
        metadata: Extra registry metadata (CustomerMetadataProperties) about how it was trained.
    """

    step: Any
    artifacts: Any
    training_job_name: Any
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of_training_step(cls, step: Any) -> TrainedModel:
        return cls(
            step=step,
            artifacts=step.properties.ModelArtifacts.S3ModelArtifacts,
            training_job_name=step.properties.TrainingJobName,
        )
