"""Which definition a run executes, and the local values of its deploy-time placeholders.

By default the environment's generated definition: the one `cdk synth` deploys, from the
`.build/pipelines/<env>/<inputs-hash>/` cache that `stacks/pipeline_definitions.py` keeps,
generated when missing. That module belongs to the CDK layer's folder, which this package must
not import (tests/test_layers.py), so it runs in its own process, as the generator itself does.
With a data file and a target column the definition is generated for the schema inferred from
the data (features typed by their values), everything else as configured; with `--workers N`
for N training instances (the local run then trains with N worker processes), with
`--processors N` for N processing instances (PrepareShards and EvaluateShards then run on N
local hosts).

Otherwise a definition file (`--definition`): its step code is the `code/` folder beside it
unless `--code-dir` says otherwise; its pipeline name comes from a generator `manifest.json`
beside it, else from the file name.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_code import offline
from pipeline_code.local_pipeline.aws_stand_in import ACCOUNT
from pipeline_code.local_pipeline.errors import LocalPipelineError

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = ("training", "evaluation")
MANIFEST_FILE = "manifest.json"
CODE_DIR = "code"
_GENERATE = """
import copy, json, sys
import mlops_config
from stacks.pipeline_definitions import generate_pipelines
from pipeline_code.problem_inference import PROBLEM_TYPES, local_gate
from pipeline_code.definition.setting_rules import BINARY_ONLY_DEFAULTS
try:
    # The local run's schema, gate and instance counts go into cdk.json's context and the
    # environment is parsed again, so every configuration rule (e.g. schema.positive_class
    # refused for a regression target) refuses them with its one-line error naming the key.
    env, schema, counts = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    min_positives = json.loads(sys.argv[4])
    context = copy.deepcopy(mlops_config.read_cdk_json_context())
    overrides, gate = dict(counts), None
    if schema is not None:
        context["schema"] = schema
        configured = mlops_config.load_config(env).pipeline.metric
        # read, not validated: parse_environment below refuses a bad schema with its one line
        problem_type = schema.get("problem_type", "binary")
        gate = local_gate(problem_type, configured) if problem_type in PROBLEM_TYPES else None
        if gate is not None:
            # The configured tolerance and gate method are the other metric's (its units).
            overrides.update(metric=gate[0], metric_floor=gate[1], champion_tolerance=gate[2],
                             gate_method="delong" if gate[0] == "auc" else "bootstrap")
            print(f"note: metric {gate[0]} (floor {gate[1]}, tolerance {gate[2]}): the "
                  f"configured {configured!r} is not a {problem_type} metric", file=sys.stderr)
    if schema is not None and schema.get("problem_type", "binary") != "binary":
        overrides.update(BINARY_ONLY_DEFAULTS)  # cdk.json's binary-only settings are refused
    if min_positives is not None:
        overrides["min_positives"] = min_positives
    trainer = json.loads(sys.argv[5])
    block = context.get("environments", {}).get(env) or {}
    if trainer is not None:
        # the other trainers' configured blocks are refused with this one: drop them
        overrides.update({other: None for other in ("sklearn", "custom") if other != trainer},
                         trainer=trainer)
        weight = {**context.get("defaults", {}).get("pipeline", {}),
                  **block.get("pipeline", {})}.get("scale_pos_weight", 1)
        if trainer != "xgboost" and weight != 1:  # only train.py weights the positives
            overrides["scale_pos_weight"] = 1
            print(f"note: scale_pos_weight 1: the configured {weight!r} is xgboost's only",
                  file=sys.stderr)
        problem = (schema or context["schema"]).get("problem_type", "binary")
        if trainer == "sklearn" and problem == "regression":
            # the default estimator (HistGradientBoostingClassifier) fits classes only
            configured = {**context.get("defaults", {}).get("pipeline", {}),
                          **block.get("pipeline", {})}.get("sklearn")
            overrides["sklearn"] = configured or {
                "estimator": "sklearn.ensemble.HistGradientBoostingRegressor"}
        if trainer == "custom" and not context.get("defaults", {}).get("pipeline", {}).get(
                "custom") and not block.get("pipeline", {}).get("custom"):
            # the worked example; its image is never pulled locally
            settings = mlops_config.load_config(env)
            overrides["custom"] = {
                "image_uri": f"{settings.account}.dkr.ecr.{settings.region}.amazonaws.com/"
                             "custom-trainer-example@sha256:" + "0" * 64,
                "source_dir": "examples/custom_trainer"}
    block = context.get("environments", {}).get(env)
    if overrides and isinstance(block, dict):  # an unknown env is parse_environment's to refuse
        block["pipeline"] = {**block.get("pipeline", {}), **overrides}
        if gate is not None:  # the alarm's floor has no default for another problem type
            block["monitoring"] = {**block.get("monitoring", {}), "quality_metric_floor": gate[1]}
    config = mlops_config.parse_environment(context, env)
except (mlops_config.ConfigError, ValueError) as error:
    print(error, file=sys.stderr)
    sys.exit(2)
generated = generate_pipelines(config)
print(json.dumps({"directory": str(generated.directory), "manifest": generated.manifest}))
"""


@dataclass(frozen=True)
class DefinitionSource:
    """A definition file, the folder behind its `pipeline-code/` URIs, its pipeline name."""

    file: Path
    code_dir: Path | None
    pipeline_name: str
    code_prefix: str = offline.CODE_PREFIX


def generated(
    env: str,
    pipeline: str,
    schema: dict[str, Any] | None = None,
    workers: int | None = None,
    processors: int | None = None,
    min_positives: int | None = None,
    trainer: str | None = None,
) -> DefinitionSource:
    """The generated definition of `pipeline` (training | evaluation) for `env`; with
    `workers`, for that many training instances (`pipeline.training_instance_count`), with
    `processors` that many processing instances (`pipeline.processing_instance_count`); with
    `min_positives`, for that gate guard; with `trainer`, for that `pipeline.trainer`. A
    `schema` of another problem type than the configured metric's gets that type's local gate
    (`problem_inference.local_gate`)."""
    if pipeline not in PIPELINES:
        raise LocalPipelineError(f"--pipeline {pipeline!r} is not allowed: one of {PIPELINES}")
    counts = {
        key: value
        for key, value in (
            ("training_instance_count", workers),
            ("processing_instance_count", processors),
        )
        if value is not None
    }
    argv = [sys.executable, "-c", _GENERATE, env, json.dumps(schema), json.dumps(counts)]
    argv += [json.dumps(min_positives), json.dumps(trainer)]
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise LocalPipelineError(
            f"cannot generate the pipeline definitions of environment {env!r} (see above)"
        )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    directory, manifest = Path(answer["directory"]), answer["manifest"]
    entry = manifest["pipelines"][pipeline]
    return DefinitionSource(
        directory / entry["file"], directory / CODE_DIR, entry["name"], manifest["code_prefix"]
    )


def from_file(path: Path, code_dir: Path | None = None) -> DefinitionSource:
    """A definition file given by the user."""
    if not path.is_file():
        raise LocalPipelineError(f"--definition {path}: no such file")
    name = path.stem
    prefix = offline.CODE_PREFIX
    manifest_file = path.parent / MANIFEST_FILE
    if manifest_file.is_file():
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        prefix = manifest.get("code_prefix", prefix)
        for entry in manifest.get("pipelines", {}).values():
            if entry.get("file") == path.name:
                name = entry["name"]
    if code_dir is None and (path.parent / CODE_DIR).is_dir():
        code_dir = path.parent / CODE_DIR
    if code_dir is not None and not code_dir.is_dir():
        raise LocalPipelineError(f"--code-dir {code_dir}: no such folder")
    return DefinitionSource(path, code_dir, name, prefix)


@dataclass(frozen=True)
class LocalNames:
    """The local values of the deployment's names: buckets, role, key, registry group."""

    artifact_bucket: str
    data_bucket: str
    region: str
    model_package_group: str
    prefix: str

    def placeholders(self) -> dict[str, str]:
        """What the pipeline custom resource would substitute, for every declared placeholder."""
        values = {
            offline.ARTIFACT_BUCKET: self.artifact_bucket,
            offline.PROCESSING_JOB_ROLE_ARN: f"arn:aws:iam::{ACCOUNT}:role/{self.prefix}-local-run",
            offline.TRAINING_JOB_ROLE_ARN: f"arn:aws:iam::{ACCOUNT}:role/{self.prefix}-local-run",
            offline.KMS_KEY_ARN: f"arn:aws:kms:{self.region}:{ACCOUNT}:key/local-run",
            offline.MODEL_PACKAGE_GROUP_NAME: self.model_package_group,
        }
        missing = set(offline.PLACEHOLDERS) - set(values)
        if missing:
            raise LocalPipelineError(f"no local value for the placeholders {sorted(missing)}")
        return values


def local_names(prefix: str, region: str, group: str) -> LocalNames:
    return LocalNames(f"{prefix}-artifacts", f"{prefix}-data", region, group, prefix)
