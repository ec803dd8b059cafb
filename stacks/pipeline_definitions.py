"""Pipeline definitions, generated offline by `pipeline_code.generate` in its own process.

The SageMaker SDK never sees a CDK token: the definition is generated with `${Placeholders}`
that the pipeline custom resource fills in at deploy time. Generation costs a few seconds
(the SDK's import), so its output is cached under `.build/pipelines/<env>/<inputs-hash>/` and
regenerated only when an input changes: the settings below, any file under `pipeline_code/`,
or the installed SDK version. The checkout's commit is not an input: the definitions are
generated with a placeholder commit and the commit is stamped into a copy under
`<inputs-hash>/commits/<commit>/` (milliseconds), so a new commit regenerates nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from mlops_config import EnvironmentConfig
from mlops_config.trainer import SklearnConfig
from mlops_config.tuning import tuning_settings
from pipeline_code.definition import UNSTAMPED_CODE_COMMIT, stamp_code_commit

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
    """What the generator wrote: one definition file per pipeline (in `definitions`, the copy
    stamped with the commit; `directory` when not given) and the step code to upload."""

    directory: Path
    manifest: dict[str, Any]
    definitions: Path | None = None

    def definition_file(self, pipeline: str) -> Path:
        folder = self.definitions or self.directory
        return folder / self.manifest["pipelines"][pipeline]["file"]

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
        # batch serving only: the scoring pipeline
        **({"scoring": scoring_settings(config)} if config.serving.is_batch else {}),
        # tuning only (settings without it stay as they were): the tuning job in place of Train
        **({"tuning": tuning_settings(p.tuning)} if p.tuning is not None else {}),
        # the scikit-learn trainer only (the XGBoost settings stay as they were)
        **(
            {"sklearn": (p.sklearn or SklearnConfig()).model_dump()}
            if p.trainer == "sklearn"
            else {}
        ),
        **({"custom": p.custom.model_dump()} if p.custom is not None else {}),
    }


def scoring_settings(config: EnvironmentConfig) -> dict[str, Any]:
    """The scoring pipeline's settings: its name and `serving.batch`."""
    return {"pipeline_name": config.scoring_pipeline_name, **config.serving.batch.model_dump()}


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


# Generations of one environment's definitions kept under .build/pipelines/<env>/, and how
# long a generation used (generated or reused) by any process is never pruned.
KEEP_GENERATIONS = 8
IN_USE_SECONDS = 600


def prune_generations(env_dir: Path, current: Path, keep: int = KEEP_GENERATIONS) -> None:
    """Keep `current`, the newest other generations (`keep` in all) and any used in the last
    IN_USE_SECONDS under `env_dir`; other processes' staging folders are left alone. Several are
    kept because the tests synthesize dev in many variants (drift engines, VPC forms, trainers,
    tuning, tracking) in parallel: switching back and forth must not regenerate every time, nor
    delete a generation another worker has just stamped and is about to read."""
    others = [d for d in env_dir.iterdir() if d != current and ".tmp-" not in d.name]
    others.sort(key=_modified, reverse=True)
    now = time.time()
    for stale in others[keep - 1 :]:
        if now - _modified(stale) > IN_USE_SECONDS:
            shutil.rmtree(stale, ignore_errors=True)


def _touch(path: Path) -> None:
    """Mark a reused generation as in use (its modification time), so no pruning removes it."""
    with contextlib.suppress(OSError):  # removed meanwhile: it is regenerated next time
        os.utime(path)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed meanwhile by a concurrent synth
        return 0.0


def generate_pipelines(config: EnvironmentConfig) -> GeneratedPipelines:
    """Generate (or reuse) the pipeline definitions of `config`'s environment, stamped with the
    checkout's commit (`code_commit()`)."""
    [generated] = generate_all_pipelines([config])
    return generated


def generate_all_pipelines(configs: Sequence[EnvironmentConfig]) -> list[GeneratedPipelines]:
    """`generate_pipelines` of each config; the missing definitions are generated by one
    generator process (the SDK's import and its service models are paid once, not per config)."""
    wanted, commits = [], []
    for config in configs:
        settings = pipeline_settings(config)
        commits.append(settings.pop("code_commit"))
        settings["code_commit"] = UNSTAMPED_CODE_COMMIT
        wanted.append((config.name, settings, BUILD_DIR / config.name / _inputs_hash(settings)))
    _generate_missing(wanted)
    return [
        _stamped(GeneratedPipelines(out, json.loads((out / "manifest.json").read_text())), commit)
        for (_, _, out), commit in zip(wanted, commits, strict=True)
    ]


def _stamped(generated: GeneratedPipelines, commit: str) -> GeneratedPipelines:
    """`generated` with `commit` stamped into a copy of each definition (and its SHA-256)."""
    commits = generated.directory / "commits"
    folder = commits / commit
    manifest = json.loads(json.dumps(generated.manifest))
    for entry in manifest["pipelines"].values():
        text = stamp_code_commit((generated.directory / entry["file"]).read_text("utf-8"), commit)
        entry["sha256"] = hashlib.sha256(text.encode()).hexdigest()
        target = folder / entry["file"]
        if not target.is_file() or target.read_text("utf-8") != text:
            folder.mkdir(parents=True, exist_ok=True)
            # concurrent synths (pytest -n) stamp the same bytes: write aside, then rename
            with tempfile.NamedTemporaryFile(
                "w", encoding="utf-8", dir=folder, prefix=f"{entry['file']}.tmp-", delete=False
            ) as partial:
                partial.write(text)
            Path(partial.name).replace(target)
    _touch(generated.directory)
    _touch(folder)
    prune_generations(commits, folder)
    return GeneratedPipelines(generated.directory, manifest, definitions=folder)


def _generate_missing(wanted: list[tuple[str, dict[str, Any], Path]]) -> None:
    """Run the generator once for every (environment, settings, output folder) whose folder
    holds no manifest yet."""
    missing: dict[Path, tuple[str, dict[str, Any]]] = {}
    for env, settings, out in wanted:
        if not (out / "manifest.json").is_file():
            missing.setdefault(out, (env, settings))
    if not missing:
        return
    names = ", ".join(sorted({env for env, _ in missing.values()}))
    print(f"generating pipeline definitions for {names} (inputs changed)...", file=sys.stderr)
    # Private staging folders, then atomic renames: concurrent synths (pytest -n, two
    # terminals) never see or clobber a half-written definition.
    staged: dict[Path, Path] = {}
    pairs: list[str] = []
    for out, (_, settings) in missing.items():
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{out.name}.tmp-", dir=out.parent))
        settings_file = staging / "settings.json"
        settings_file.write_text(json.dumps(settings, indent=2, sort_keys=True))
        pairs += ["--settings", str(settings_file), "--out-dir", str(staging)]
        staged[out] = staging
    result = subprocess.run(
        [sys.executable, "-m", "pipeline_code.generate", *pairs],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        for staging in staged.values():
            shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"pipeline definition generation failed for {names}:\n{result.stderr}")
    for out, staging in staged.items():
        try:
            staging.rename(out)
        except OSError:  # another process finished the same inputs first: same bytes
            shutil.rmtree(staging, ignore_errors=True)
        prune_generations(out.parent, out)
