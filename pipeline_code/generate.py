"""Generate the pipeline definitions offline (run in its own process, not in CDK).

Usage::

    python -m pipeline_code.generate --settings settings.json --out-dir DIR [--steps-dir DIR]

``--settings``/``--out-dir`` may be repeated in pairs: one process generates every pair (the
SDK's import and its parsed service models are paid once; the CDK app generates all the
environments it builds this way), stopping at the first that fails.

Writes, replacing earlier output:

* ``DIR/training.json``: the training pipeline's definition, sorted keys, indent 2, with
  ``${Placeholders}``;
* ``DIR/evaluation.json``: the evaluation-only pipeline's definition, likewise;
* ``DIR/code/<sha256>/...``: every artifact the definitions reference under
  ``s3://${ArtifactBucket}/pipeline-code/`` (each step's code directory, the schema,
  ModelTrainer's drivers);
  copy ``DIR/code/`` to the artifact bucket under ``pipeline-code/``;
* ``DIR/manifest.json``: per pipeline (``training``, ``evaluation``) its pipeline name, file
  name and SHA-256, then the placeholder names, the code prefix and the SDK version::

      {"pipelines": {"training": {"name": .., "file": "training.json", "sha256": ..},
                     "evaluation": {"name": .., "file": "evaluation.json", "sha256": ..}},
       "placeholders": [..], "code_prefix": "pipeline-code/", "sdk_version": "3.27.0"}

Exit codes: 0 success, 2 bad settings or arguments, 1 anything else. One progress line goes to
stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline_code import offline
from pipeline_code.definition import (
    STEPS_DIR,
    PipelineSettings,
    SettingsError,
    installed_sdk_version,
    publish_step_code,
    render_evaluation_definition,
    render_training_definition,
)
from pipeline_code.definition.render import render_scoring_definition
from pipeline_code.definition.scoring import SCORING_PLACEHOLDERS

DEFINITION_FILE = "training.json"
EVALUATION_DEFINITION_FILE = "evaluation.json"
SCORING_DEFINITION_FILE = "scoring.json"
MANIFEST_FILE = "manifest.json"
CODE_DIR = "code"
DEFAULT_STEPS_DIR = STEPS_DIR
_PLACEHOLDER_RE = re.compile(r"\$\{([^}]*)\}")


def placeholders_in(text: str) -> set[str]:
    """Names of all ``${Name}`` placeholders in ``text``."""
    return set(_PLACEHOLDER_RE.findall(text))


def declared_placeholders(settings: PipelineSettings) -> list[str]:
    """The placeholders a definition of ``settings`` may use, sorted."""
    subnets, groups = settings.vpc_placeholders
    scoring = SCORING_PLACEHOLDERS if settings.scoring is not None else ()
    return sorted([*offline.PLACEHOLDERS, *subnets, *groups, *scoring])


def _check_references(definition: str, store: offline.CodeStore, declared: list[str]) -> None:
    undeclared = placeholders_in(definition) - set(declared)
    if undeclared:
        raise offline.OfflineViolationError(
            f"undeclared placeholders in the definition: {', '.join(sorted(undeclared))}"
        )
    referenced = set(re.findall(re.escape(offline.CODE_PREFIX) + r"([0-9a-f]{64})/", definition))
    missing = referenced - {digest for digest, _ in store.published}
    if missing:
        raise offline.OfflineViolationError(
            f"the definition references code that was not written: {', '.join(sorted(missing))}"
        )


def generate(
    settings: PipelineSettings, out_dir: Path, steps_dir: Path = DEFAULT_STEPS_DIR
) -> dict[str, Any]:
    """Write the definitions, their code and the manifest into ``out_dir``; return the manifest.

    Args:
        settings: Validated settings.
        out_dir: Output directory (created). ``code/``, ``training.json``,
            ``evaluation.json`` and ``manifest.json`` inside it are replaced, only once
            everything succeeded.
        steps_dir: Directory with the step folders (prepare/, train/, evaluate/) and
            common/. Default: the package's ``steps/``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    # Everything is built in a staging directory first: a failure leaves earlier output intact.
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=out_dir) as staging_name:
        staging = Path(staging_name)
        store = offline.CodeStore(staging / CODE_DIR)
        code = publish_step_code(settings, steps_dir, store)
        rendered = {
            "training": (
                settings.pipeline_name,
                DEFINITION_FILE,
                render_training_definition(settings, code),
            ),
            "evaluation": (
                settings.evaluation_pipeline_name,
                EVALUATION_DEFINITION_FILE,
                render_evaluation_definition(settings, code),
            ),
        }
        if settings.scoring is not None:
            rendered["scoring"] = (
                settings.scoring.pipeline_name,
                SCORING_DEFINITION_FILE,
                render_scoring_definition(settings, code),
            )
        pipelines = {}
        for key, (name, file_name, definition) in rendered.items():
            _check_references(definition, store, declared_placeholders(settings))
            encoded = definition.encode()
            (staging / file_name).write_bytes(encoded)
            pipelines[key] = {
                "name": name,
                "file": file_name,
                "sha256": hashlib.sha256(encoded).hexdigest(),
            }
        manifest = {
            "pipelines": pipelines,
            "placeholders": declared_placeholders(settings),
            "code_prefix": offline.CODE_PREFIX,
            "sdk_version": installed_sdk_version(),
        }
        (staging / MANIFEST_FILE).write_text(
            json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        shutil.rmtree(out_dir / CODE_DIR, ignore_errors=True)
        for name in (CODE_DIR, DEFINITION_FILE, EVALUATION_DEFINITION_FILE, MANIFEST_FILE):
            os.replace(staging / name, out_dir / name)
        if settings.scoring is not None:
            os.replace(staging / SCORING_DEFINITION_FILE, out_dir / SCORING_DEFINITION_FILE)
    return manifest


@contextlib.contextmanager
def quiet_sdk() -> Iterator[None]:
    """Silence the SDK's INFO/WARNING chatter and UserWarnings (errors still propagate)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_code.generate",
        description="Generate the SageMaker pipeline definitions (training, evaluation) offline.",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        action="append",
        required=True,
        help="settings JSON written by the CDK app (repeatable, one per --out-dir)",
    )
    parser.add_argument(
        "--out-dir", type=Path, action="append", required=True, help="output directory"
    )
    parser.add_argument(
        "--steps-dir",
        type=Path,
        default=DEFAULT_STEPS_DIR,
        help="directory with the step folders and common/ (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if len(args.settings) != len(args.out_dir):
        parser.error("give --settings and --out-dir in pairs")
    for settings_file, out_dir in zip(args.settings, args.out_dir, strict=True):
        code = _generate_one(settings_file, out_dir, args.steps_dir)
        if code:
            return code
    return 0


def _generate_one(settings_file: Path, out_dir: Path, steps_dir: Path) -> int:
    started = time.perf_counter()
    try:
        settings = PipelineSettings.from_json_file(settings_file)
        with quiet_sdk():
            generate(settings, out_dir, steps_dir)
    except (SettingsError, FileNotFoundError) as error:
        print(f"pipeline definition: {error}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as error:
        # OfflineViolationError, a changed evaluation contract, an unpinned SDK version.
        print(f"pipeline definition: {error}", file=sys.stderr)
        return 1
    print(
        f"pipeline definition: {settings.pipeline_name} -> {out_dir / DEFINITION_FILE}, "
        f"{settings.evaluation_pipeline_name} -> {out_dir / EVALUATION_DEFINITION_FILE} "
        f"({time.perf_counter() - started:.1f}s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
