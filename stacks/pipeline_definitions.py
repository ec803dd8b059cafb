"""Pipeline definitions, generated offline by `pipeline_code.generate` in its own process.

The SageMaker SDK never sees a CDK token: the definition is generated with `${Placeholders}`
that the pipeline custom resource fills in at deploy time. Generation costs a few seconds
(the SDK's import), so its output is cached under `.build/pipelines/<env>/<inputs-hash>/` and
regenerated only when an input changes: the settings below, any file under `pipeline_code/`,
or the installed SDK version.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from mlops_config import EnvironmentConfig

ROOT = Path(__file__).resolve().parent.parent
PIPELINE_CODE = ROOT / "pipeline_code"
BUILD_DIR = ROOT / ".build" / "pipelines"
SDK_PACKAGES = (
    "sagemaker",
    "sagemaker-core",
    "sagemaker-train",
    "sagemaker-mlops",
    "sagemaker-serve",
)


@dataclass(frozen=True)
class GeneratedPipelines:
    """What the generator wrote: one definition file per pipeline and the step code to upload."""

    directory: Path
    manifest: dict[str, Any]

    def definition_file(self, pipeline: str) -> Path:
        return self.directory / self.manifest["pipelines"][pipeline]["file"]

    def definition_sha256(self, pipeline: str) -> str:
        return str(self.manifest["pipelines"][pipeline]["sha256"])

    @property
    def code_dir(self) -> Path:
        return self.directory / "code"

    @property
    def code_prefix(self) -> str:
        return str(self.manifest["code_prefix"])

    @property
    def placeholders(self) -> list[str]:
        return list(self.manifest["placeholders"])

    def job_images(self, *step_types: str) -> list[str]:
        """The ECR images (without tag) of the steps of `step_types` (e.g. "Training",
        "Processing", "QualityCheck") in both definitions, conditions' branches included."""
        from constructs.ecr_images import image_uris_in

        def steps(items: list[dict[str, Any]]) -> Any:
            for step in items:
                yield step
                arguments = step.get("Arguments")
                if isinstance(arguments, dict):
                    for branch in ("IfSteps", "ElseSteps"):
                        yield from steps(arguments.get(branch, []))

        found = {
            uri
            for key in self.manifest["pipelines"]
            for step in steps(json.loads(self.definition_file(key).read_text())["Steps"])
            if step["Type"] in step_types
            for uri in image_uris_in(json.dumps(step))
        }
        return sorted(found)


def pipeline_settings(config: EnvironmentConfig) -> dict[str, Any]:
    """The generator's input: everything the definitions depend on, nothing deploy-time."""
    p = config.pipeline
    return {
        "project": config.project,
        "environment": config.name,
        "region": config.region,
        "pipeline_name": config.pipeline_name,
        "evaluation_pipeline_name": config.evaluation_pipeline_name,
        "model_quality_namespace": config.model_quality_namespace,
        "model_package_group_name": config.model_package_group_name,
        "schema": config.schema.to_dict(),
        "processing_instance_type": p.processing_instance_type,
        "processing_instance_count": p.processing_instance_count,
        "training_instance_type": p.training_instance_type,
        "training_instance_count": p.training_instance_count,
        "use_spot": p.use_spot,
        "max_runtime_seconds": p.max_runtime_seconds,
        "max_wait_seconds": p.max_wait_seconds,
        "hyperparameters": p.hyperparameters.model_dump(),
        "metric": p.metric,
        "metric_floor": p.metric_floor,
        "champion_tolerance": p.champion_tolerance,
        "bootstrap_samples": p.bootstrap_samples,
        "min_positives": p.min_positives,
        "gate_method": p.gate_method,
        "decision_threshold": p.decision_threshold,
        "scale_pos_weight": p.scale_pos_weight,
        "split": config.split.model_dump(),
        "cache_expire_after": p.cache_expire_after,
        "xgboost_framework_version": p.xgboost_framework_version,
        "tags": {},  # extra job tags; project and environment are added by the generator
        # "model-monitor" adds the Model Monitor Baseline step and registers its baselines.
        "monitoring_engine": str(config.monitoring.engine),
        "code_commit": code_commit(),
        # vpc mode only (public settings stay as they were): every job's VpcConfig
        **({"vpc": vpc_counts(config)} if config.network.in_vpc else {}),
    }


def vpc_counts(config: EnvironmentConfig) -> dict[str, int]:
    """How many subnets and security groups the jobs' VpcConfig holds (PrivateNetwork's)."""
    return {
        "subnets": config.network.subnet_count,
        "security_groups": config.network.security_group_count,
    }


def code_commit() -> str:
    """The checkout's commit (with `-dirty` for uncommitted changes): recorded as lineage in
    every model package. `unknown` outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def _inputs_hash(settings: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for package in SDK_PACKAGES:  # the generator copies SDK driver files into the output
        digest.update(f"{package}=={version(package)}".encode())
    for path in sorted(PIPELINE_CODE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(PIPELINE_CODE)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


# Generations of one environment's definitions kept under .build/pipelines/<env>/.
KEEP_GENERATIONS = 8


def prune_generations(env_dir: Path, current: Path, keep: int = KEEP_GENERATIONS) -> None:
    """Keep `current` and the newest other generations (`keep` in all) under `env_dir`; other
    processes' staging folders are left alone. Several are kept because the tests synthesize
    dev in several variants (both drift engines, both VPC forms) in parallel: switching back
    and forth must not regenerate every time, nor delete a generation another test reads."""
    others = [d for d in env_dir.iterdir() if d != current and ".tmp-" not in d.name]
    others.sort(key=_modified, reverse=True)
    for stale in others[keep - 1 :]:
        shutil.rmtree(stale, ignore_errors=True)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed meanwhile by a concurrent synth
        return 0.0


def generate_pipelines(config: EnvironmentConfig) -> GeneratedPipelines:
    """Generate (or reuse) the pipeline definitions of `config`'s environment."""
    settings = pipeline_settings(config)
    env_dir = BUILD_DIR / config.name
    out = env_dir / _inputs_hash(settings)
    manifest_file = out / "manifest.json"
    if not manifest_file.is_file():
        print(
            f"generating pipeline definitions for {config.name} (inputs changed)...",
            file=sys.stderr,
        )
        env_dir.mkdir(parents=True, exist_ok=True)
        # Private staging folder, then an atomic rename: concurrent synths (pytest -n, two
        # terminals) never see or clobber a half-written definition.
        staging = Path(tempfile.mkdtemp(prefix=f"{out.name}.tmp-", dir=env_dir))
        settings_file = staging / "settings.json"
        settings_file.write_text(json.dumps(settings, indent=2, sort_keys=True))
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline_code.generate",
                "--settings",
                str(settings_file),
                "--out-dir",
                str(staging),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(
                f"pipeline definition generation failed for {config.name}:\n{result.stderr}"
            )
        try:
            staging.rename(out)
        except OSError:  # another process finished the same inputs first: same bytes
            shutil.rmtree(staging, ignore_errors=True)
        prune_generations(env_dir, out)
    return GeneratedPipelines(directory=out, manifest=json.loads(manifest_file.read_text()))
