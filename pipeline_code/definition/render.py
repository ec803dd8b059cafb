"""Rendering a pipeline offline into canonical JSON (sorted keys, indent 2): the SDK runs
inside :func:`pipeline_code.offline.offline_session`, pinned to the supported versions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipeline_code import offline
from pipeline_code.definition.contract import PARAM_CODE_COMMIT
from pipeline_code.definition.evaluation import build_evaluation_pipeline
from pipeline_code.definition.scoring import build_scoring_pipeline
from pipeline_code.definition.sdk import check_sdk_version
from pipeline_code.definition.settings import PipelineSettings
from pipeline_code.definition.step_code import CodeLocations
from pipeline_code.definition.training import build_training_pipeline

if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.pipeline import Pipeline


def _render(
    settings: PipelineSettings,
    code: CodeLocations,
    build: Callable[[PipelineSettings, CodeLocations, PipelineSession], Pipeline],
) -> str:
    with offline.offline_session(settings.region, code.store) as session:
        check_sdk_version()
        pipeline = build(settings, code, session)
        raw = pipeline.definition()
    offline.check_no_internal_values(raw)
    return _canonical(json.loads(raw))


def _canonical(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# The commit a cached definition is generated with (a valid `code_commit` setting): the CDK
# app stamps the checkout's commit in with `stamp_code_commit`, so a new commit regenerates
# nothing.
UNSTAMPED_CODE_COMMIT = "stamped-at-synth"


def stamp_code_commit(definition_text: str, commit: str) -> str:
    """`definition_text` (generated with `UNSTAMPED_CODE_COMMIT`) with `commit` as the default
    of its `CodeCommit` parameter, byte for byte what generating it with `commit` gives. A
    definition without that parameter (the evaluation pipeline's) comes back unchanged.

    Raises:
        ValueError: The `CodeCommit` default is not `UNSTAMPED_CODE_COMMIT`.
    """
    definition = json.loads(definition_text)
    for parameter in definition.get("Parameters", []):
        if parameter["Name"] != PARAM_CODE_COMMIT:
            continue
        if parameter.get("DefaultValue") != UNSTAMPED_CODE_COMMIT:
            raise ValueError(
                f"{PARAM_CODE_COMMIT} defaults to {parameter.get('DefaultValue')!r}, not the "
                f"placeholder {UNSTAMPED_CODE_COMMIT!r}: the definition was stamped already"
            )
        parameter["DefaultValue"] = commit
    return _canonical(definition)


def render_training_definition(settings: PipelineSettings, code: CodeLocations) -> str:
    """Build and render the definition offline; return canonical JSON (sorted keys, indent 2).

    Raises:
        pipeline_code.offline.OfflineViolationError: The SDK tried to reach AWS, or an
            internal stand-in value leaked into the definition.
    """
    return _render(settings, code, build_training_pipeline)


def render_evaluation_definition(settings: PipelineSettings, code: CodeLocations) -> str:
    """The evaluation-only pipeline's definition, like :func:`render_training_definition`."""
    return _render(settings, code, build_evaluation_pipeline)


def render_scoring_definition(settings: PipelineSettings, code: CodeLocations) -> str:
    """The scoring pipeline's definition (batch serving), like
    :func:`render_training_definition`."""
    return _render(settings, code, build_scoring_pipeline)
