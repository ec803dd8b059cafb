"""Rendering a pipeline offline into canonical JSON (sorted keys, indent 2): the SDK runs
inside :func:`pipeline_code.offline.offline_session`, pinned to the supported versions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from pipeline_code import offline
from pipeline_code.definition.evaluation import build_evaluation_pipeline
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
    return json.dumps(json.loads(raw), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


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
