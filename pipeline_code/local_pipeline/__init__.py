"""The local run: an interpreter of the generated SageMaker pipeline definition.

It executes the definition SageMaker would run (`make local-run`): the wiring between steps,
`Get`/`Std:Join`/`Std:JsonGet` and property files, conditions, the Fail message, the model
registration and step caching, with each step's container entrypoint run on this machine under
the container contract (no Docker, no AWS). Modules: `sources` (which definition, placeholder
values), `definition` (parse and wiring checks), `properties`, `expressions`, `parameters`,
`trigger` (the run's start: data, manifest, champion), `bucket` (local S3), `container`
(+ `container_site`, `aws_stand_in`), `jobs`, `processing`, `training`, `control` (Condition,
Fail), `registry`, `caching`, `execution`, `runner`, `report` and `cli`.
"""

from pipeline_code.local_pipeline.errors import DefinitionError, LocalPipelineError, StepError
from pipeline_code.local_pipeline.runner import Run, RunOptions, run

__all__ = ["DefinitionError", "LocalPipelineError", "Run", "RunOptions", "StepError", "run"]
