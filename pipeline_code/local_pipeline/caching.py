"""Step caching as SageMaker Pipelines does it, with a local index.

A step whose CacheConfig is Enabled is a cache hit when an earlier successful execution of the
same pipeline ran the same step with the same values of its cache key attributes (after
resolution, so code URIs and data URIs count) within ExpireAfter; its properties are then the
earlier run's, so its outputs (and the steps reading them) are the earlier run's too. The key
attributes are AWS's documented defaults: Processing AppSpecification, Environment,
ProcessingInputs; Training AlgorithmSpecification, CheckpointConfig, DebugHookConfig,
DebugRuleConfigurations, Environment, HyperParameters, InputDataConfig. Locally an entry also
needs the outputs it recorded to still be in the local bucket.

Index: `<cache>/<pipeline>/<step>/<key>.json`, the newest success for each key.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline_code.local_pipeline.bucket import LocalS3, S3UriError

KEY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": (
        "AlgorithmSpecification",
        "CheckpointConfig",
        "DebugHookConfig",
        "DebugRuleConfigurations",
        "Environment",
        "HyperParameters",
        "InputDataConfig",
    ),
}
_DURATION = re.compile(
    r"^P?(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$",
    re.IGNORECASE,
)
_SECONDS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)


def expire_after_seconds(text: str) -> float:
    """An ISO 8601 duration (`P30D`, `PT1H`, `30d`, `T16m`) in seconds; ValueError otherwise."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"ExpireAfter {text!r} is not an ISO 8601 duration such as P30D or PT1H")
    return float(sum(int(v) * s for v, s in zip(match.groups(), _SECONDS, strict=True) if v))


def enabled(cache_config: dict[str, Any] | None) -> bool:
    return bool(cache_config and cache_config.get("Enabled"))


def cache_key(pipeline: str, step: str, step_type: str, request: dict[str, Any]) -> str:
    attributes = {name: request.get(name) for name in KEY_ATTRIBUTES.get(step_type, ())}
    text = json.dumps([pipeline, step, step_type, attributes], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    key: str
    execution_id: str
    finished_at: float
    properties: dict[str, Any]
    outputs: list[str]


class CacheIndex:
    """The local index of cacheable step runs under `folder`."""

    def __init__(self, folder: Path, s3: LocalS3) -> None:
        self.folder = folder
        self.s3 = s3

    def _file(self, pipeline: str, step: str, key: str) -> Path:
        return self.folder / pipeline / step / f"{key}.json"

    def lookup(
        self, pipeline: str, step: str, key: str, cache_config: dict[str, Any]
    ) -> CacheEntry | None:
        """The earlier run to reuse, or None (none, expired, or its outputs are gone)."""
        file = self._file(pipeline, step, key)
        if not file.is_file():
            return None
        entry = CacheEntry(**json.loads(file.read_text(encoding="utf-8")))
        expire = cache_config.get("ExpireAfter")
        if expire and time.time() - entry.finished_at > expire_after_seconds(expire):
            return None
        if not all(self._present(uri) for uri in entry.outputs):
            return None
        return entry

    def _present(self, uri: str) -> bool:
        try:
            return self.s3.object_exists(uri) or bool(self.s3.objects(uri))
        except S3UriError:
            return False

    def record(self, pipeline: str, step: str, entry: CacheEntry) -> None:
        file = self._file(pipeline, step, entry.key)
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_suffix(".partial")
        partial.write_text(json.dumps(asdict(entry), sort_keys=True), encoding="utf-8")
        partial.replace(file)
