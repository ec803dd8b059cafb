"""Step builders both pipelines use: prepare.py as a processing step (Prepare in training,
Validate in evaluation) with the run's version manifest, its outputs, and values read from the
Evaluate step's report; and, across processing instances, PrepareShards before Prepare."""

from __future__ import annotations

from typing import Any

from pipeline_code.definition.context import Context, s3_input, s3_output
from pipeline_code.definition.contract import (
    PREPARE_OUTPUTS,
    PROCESSING_DIR,
    SCHEMA_CONTAINER_PATH,
    SHARD_PARTS,
    STEP_PREPARE,
    STEP_PREPARE_SHARDS,
    VERSION_MANIFEST_PREFIX,
)
from pipeline_code.definition.step_code import shard_parts_dir

MANIFEST_DIR = f"{PROCESSING_DIR}/input/manifest"
PARTS_DIR = f"{PROCESSING_DIR}/input/parts"


def version_manifest_uri(ctx: Context) -> Any:
    """``s3://${ArtifactBucket}/dataset-manifests/<DataDigest>.json``: the exact object versions
    the trigger recorded for this run (content-addressed, so always a short, safe string)."""
    from sagemaker.core.workflow.functions import Join

    return Join(
        on="",
        values=[f"s3://{ctx.bucket}/{VERSION_MANIFEST_PREFIX}", ctx.params.data_digest, ".json"],
    )


def prepare_processing_step(
    ctx: Context,
    *,
    step: str,
    outputs: tuple[str, ...],
    mode_arguments: list[str],
    description: str,
    instance_count: Any = None,
    shards: Any = None,
) -> Any:
    """prepare.py on the dataset version at InputDataUri, network-isolated and cached.

    The schema travels as a file (a ContainerArgument is limited to 256 characters); the data
    digest is an argument so it is in the cache key: new data under an old prefix (a
    re-upload) is never a cache hit. The run's version manifest is an input: prepare.py checks
    the downloaded prefix against it before it reads any data, so the run trains on exactly
    the object versions its DataDigest names, or fails saying what differs.

    ``shards``: the PrepareShards step (:func:`prepare_shards_step`) whose parts this step
    merges instead of reading the version (default None: it reads the version)."""
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = ctx.processor(network_isolation=True, instance_count=instance_count)
    if shards is None:
        data = s3_input("data", ctx.params.input_data_uri, f"{PROCESSING_DIR}/input/data")
        source = ["--input-dir", f"{PROCESSING_DIR}/input/data"]
    else:
        data = s3_input("parts", prepare_output(shards, shard_parts_dir()), PARTS_DIR)
        source = ["--parts-dir", PARTS_DIR]
    step_args = processor.run(
        code=ctx.code.prepare_script,
        inputs=[
            data,
            s3_input("schema", ctx.code.schema_file, f"{PROCESSING_DIR}/input/schema"),
            s3_input("manifest", version_manifest_uri(ctx), MANIFEST_DIR),
        ],
        outputs=[s3_output(ctx, step, name, f"{PROCESSING_DIR}/output/{name}") for name in outputs],
        arguments=[
            *source,
            "--output-dir",
            f"{PROCESSING_DIR}/output",
            "--schema",
            SCHEMA_CONTAINER_PATH,
            *mode_arguments,
            "--data-digest",
            ctx.params.data_digest,
            "--manifest-dir",
            MANIFEST_DIR,
        ],
    )
    return ProcessingStep(
        name=step,
        step_args=step_args,
        description=description,
        cache_config=ctx.cache_config(),
    )


def prepare_shards_step(ctx: Context, *, mode_arguments: list[str]) -> Any:
    """prepare.py --shard on every processing instance (ProcessingInstanceCount, default
    pipeline.processing_instance_count): the version's objects dealt out ShardedByS3Key, each
    instance's parts uploaded to one prefix under instance-unique names, below the pipeline's
    `shard-parts/` (the artifact bucket expires it); Prepare merges them.
    Cached like Prepare: its arguments hold the data digest."""
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = ctx.processor(network_isolation=True)
    step_args = processor.run(
        code=ctx.code.prepare_script,
        inputs=[
            s3_input(
                "data",
                ctx.params.input_data_uri,
                f"{PROCESSING_DIR}/input/data",
                distribution="ShardedByS3Key",
            ),
            s3_input("schema", ctx.code.schema_file, f"{PROCESSING_DIR}/input/schema"),
            s3_input("manifest", version_manifest_uri(ctx), MANIFEST_DIR),
        ],
        outputs=[
            s3_output(
                ctx,
                STEP_PREPARE_SHARDS,
                shard_parts_dir(),
                f"{PROCESSING_DIR}/output/{shard_parts_dir()}",
                ctx.execution_output(STEP_PREPARE_SHARDS, shard_parts_dir(), SHARD_PARTS),
            )
        ],
        arguments=[
            "--input-dir",
            f"{PROCESSING_DIR}/input/data",
            "--output-dir",
            f"{PROCESSING_DIR}/output",
            "--schema",
            SCHEMA_CONTAINER_PATH,
            *mode_arguments,
            "--shard",
            "--data-digest",
            ctx.params.data_digest,
            "--manifest-dir",
            MANIFEST_DIR,
        ],
    )
    return ProcessingStep(
        name=STEP_PREPARE_SHARDS,
        step_args=step_args,
        description="Read, check and split this instance's share of the dataset version's "
        "files (ShardedByS3Key); Prepare merges the parts.",
        cache_config=ctx.cache_config(),
    )


def prepare_steps(ctx: Context, split_arguments: list[str]) -> tuple[Any, Any]:
    """The training pipeline's Prepare, and before it PrepareShards when
    pipeline.processing_instance_count is above 1 (else None): then Prepare merges the parts
    on one instance."""
    if ctx.settings.processing_instance_count == 1:
        return None, prepare_processing_step(
            ctx,
            step=STEP_PREPARE,
            outputs=PREPARE_OUTPUTS,
            mode_arguments=split_arguments,
            description="Validate the dataset version, split it, compute the drift baseline.",
        )
    shards = prepare_shards_step(ctx, mode_arguments=split_arguments)
    return shards, prepare_processing_step(
        ctx,
        step=STEP_PREPARE,
        outputs=PREPARE_OUTPUTS,
        mode_arguments=split_arguments,
        description="Merge PrepareShards' parts: validate the version, split it, compute the "
        "drift baseline.",
        instance_count=1,
        shards=shards,
    )


def prepare_output(prepare: Any, name: str) -> Any:
    return prepare.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri


def gate_value(ctx: Context, evaluate: Any, report: Any, key: str) -> Any:
    from sagemaker.core.workflow.functions import JsonGet

    keys = ctx.code.evaluation_keys
    return JsonGet(
        step_name=evaluate.name, property_file=report, json_path=f"{keys['gate']}.{keys[key]}"
    )


def registry_value(ctx: Context, evaluate: Any, report: Any, key: str) -> Any:
    """A registry metadata value Evaluate prepared (evaluation.json's registry section)."""
    from sagemaker.core.workflow.functions import JsonGet

    keys = ctx.code.evaluation_keys
    return JsonGet(
        step_name=evaluate.name, property_file=report, json_path=f"{keys['registry']}.{keys[key]}"
    )
