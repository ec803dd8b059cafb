"""Where a dataset version lives: its reference (bucket, prefix, ledger key, label), built
only for names that can be carried (dataset_names), and the mapping from an object key to
the version it belongs to."""

from __future__ import annotations

from dataclasses import dataclass

import dataset_completion as completion
import dataset_ledger as ledger_items
import dataset_names as names
from trigger_config import TriggerConfig
from trigger_events import ObjectEvent
from trigger_outcomes import Rejection


@dataclass(frozen=True)
class VersionRef:
    """One dataset version: `s3://<bucket>/<landing_prefix><dataset>/<version>/`."""

    bucket: str
    landing_prefix: str
    dataset: str
    version: str

    @property
    def dataset_version(self) -> str:
        return f"{self.dataset}/{self.version}"

    @property
    def prefix(self) -> str:
        return f"{self.landing_prefix}{self.dataset}/{self.version}/"

    @property
    def input_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def pk(self) -> str:
        return ledger_items.version_key(self.dataset_version)

    @property
    def label(self) -> str:
        """The `DatasetVersion` pipeline parameter (dataset_names.label)."""
        return names.label(self.dataset_version)


def version_ref(
    config: TriggerConfig, dataset: str, version: str, *, key: str | None = None
) -> VersionRef:
    """The version `<dataset>/<version>` of this trigger's bucket; raises Rejection for names
    a run cannot carry (before anything is listed, claimed or started)."""
    names.check_name("dataset", dataset, key=key)
    names.check_name("version", version, key=key)
    ref = VersionRef(config.data_bucket, config.landing_prefix, dataset, version)
    names.check_lengths(ref.dataset_version, ref.input_uri, key=key)
    return ref


def locate_version(event: ObjectEvent, config: TriggerConfig) -> tuple[VersionRef, str]:
    """Split a key into its dataset version and the key relative to the version prefix."""
    if not event.key.startswith(config.landing_prefix):
        raise Rejection(
            "outside-landing-prefix",
            f"key is outside {config.landing_prefix!r}; only data landing there is watched",
            key=event.key,
        )
    if event.key.endswith("/"):
        raise Rejection(
            "folder-placeholder",
            "folder placeholder object (key ends with '/'); it carries no data",
            key=event.key,
        )
    parts = event.key[len(config.landing_prefix) :].split("/", 2)
    if len(parts) < 3 or any(p in ("", ".", "..") for p in parts[:2]) or not parts[2]:
        raise Rejection(
            "outside-version-layout",
            f"key does not follow {config.landing_prefix}<dataset>/<version>/<file>",
            key=event.key,
        )
    ref = version_ref(config, parts[0], parts[1], key=event.key)
    relative = parts[2]
    if event.size == 0 and completion.is_data_key(relative):
        raise Rejection(
            "zero-byte-object",
            "zero-byte data object; it is listed with its version but is probably a failed upload",
            key=event.key,
        )
    return ref, relative
