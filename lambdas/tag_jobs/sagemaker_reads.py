"""SageMaker reads of the job tagger: a resource's tags and a pipeline execution's parameter,
every page followed (ListTags, ListPipelineParametersForExecution)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def current_tags(sagemaker: Any, arn: str) -> dict[str, str]:
    """All tags of a SageMaker resource (ListTags, every page)."""
    return {
        tag["Key"]: tag.get("Value", "")
        for page in _pages(sagemaker.list_tags, ResourceArn=arn)
        for tag in page.get("Tags", [])
    }


def pipeline_parameter(sagemaker: Any, execution_arn: str, name: str) -> str | None:
    """The value of parameter `name` of a pipeline execution, stripped; None when missing or
    empty (ListPipelineParametersForExecution, every page)."""
    pages = _pages(
        sagemaker.list_pipeline_parameters_for_execution, PipelineExecutionArn=execution_arn
    )
    for page in pages:
        for parameter in page.get("PipelineParameters", []):
            if parameter.get("Name") == name:
                value = str(parameter.get("Value") or "").strip()
                return value or None
    return None


def _pages(operation: Any, **request: Any) -> Iterator[dict[str, Any]]:
    """Follow NextToken; stops if the service ever hands back a token it already gave."""
    seen: set[str] = set()
    while True:
        page: dict[str, Any] = operation(**request)
        yield page
        token = page.get("NextToken")
        if not token or token in seen:
            return
        seen.add(token)
        request["NextToken"] = token
