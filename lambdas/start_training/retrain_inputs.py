"""What a retrain runs on: the version as its ledger item recorded it, checked unchanged, with
the version manifest its Prepare step verifies (dataset_trigger's "Retraining")."""

from __future__ import annotations

from typing import Any

import dataset_completion as completion
import version_manifest
from dataset_completion import CompletionError, VersionContents
from dataset_versions import VersionRef, version_ref
from trigger_events import ACTION_RETRAIN_VERSION
from trigger_outcomes import Rejection, logger
from trigger_runs import MAX_PARAMETER_LENGTH, RunStarter


class RetrainInputs(RunStarter):
    """The data a retrain of a started version runs on."""

    def _version_ref(self, dataset_version: Any) -> VersionRef:
        parts = dataset_version.split("/") if isinstance(dataset_version, str) else []
        if (
            len(parts) != 2
            or any(p in ("", ".", "..") for p in parts)
            or len(dataset_version) > MAX_PARAMETER_LENGTH
        ):
            raise Rejection(
                "malformed-retrain-request",
                f"{ACTION_RETRAIN_VERSION} needs 'dataset_version' as '<dataset>/<version>' "
                f"(as under {self.config.landing_prefix}), got {str(dataset_version)[:100]!r}",
            )
        return version_ref(self.config, *parts)

    def _contents_now(
        self, ref: VersionRef, item: dict[str, Any] | None, dataset_version: str
    ) -> VersionContents:
        """The version's objects as they are now; a version no longer complete is refused."""
        listing = completion.list_version(self.s3, ref.bucket, ref.prefix)
        try:
            return self._contents(ref, listing, "retrain", item)
        except CompletionError as error:
            raise Rejection(
                "version-changed",
                f"dataset version {dataset_version} is no longer complete under "
                f"{ref.input_uri} ({error}); land the data as a new version",
            ) from error

    def _check_unchanged(self, dataset_version: str) -> VersionContents | None:
        """Refuse to re-run a version whose objects changed in place since it ran.

        A re-run passes the InputDataUri and DataDigest its ledger item recorded, but the
        pipeline reads the prefix as it is now: with ALLOW_REUPLOAD=false an in-place change
        starts no new generation, so the run would train on bytes the digest does not name.
        The content digest (content identities, no version ids) is compared, so identical
        bytes uploaded again are no change, under SSE-KMS too. Items without a content digest
        are not checked.
        """
        ref = self._version_ref(dataset_version)
        item = self.ledger.get(ref.pk)
        recorded = item.get("content_digest") if item else None
        if not recorded:
            return None
        contents = self._contents_now(ref, item, dataset_version)
        if item and not self._same_content(item, contents):
            raise Rejection(
                "version-changed",
                f"the objects under {ref.input_uri} changed since dataset version "
                f"{dataset_version} ran (content digest {recorded[:12]}... no longer "
                "matches); a re-run would train on data its DataDigest does not name: land "
                "the data as a new version",
            )
        return contents

    def _retrain_data(self, dataset_version: str, digest: str) -> str:
        """The DataDigest a retrain runs with, after checking the version is unchanged.

        Every run's Prepare verifies its input against the version manifest of its DataDigest.
        A version that ran before the trigger wrote manifests (or whose manifest is gone) gets
        one now, of its objects as they are (unchanged since it ran, as far as its ledger item
        can tell), and the retrain runs with that manifest's DataDigest.
        """
        contents = self._check_unchanged(dataset_version)
        if version_manifest.read(
            self.s3, self.config.manifest_bucket, self.config.manifest_prefix, digest
        ):
            return digest
        if contents is None:
            ref = self._version_ref(dataset_version)
            contents = self._contents_now(ref, self.ledger.get(ref.pk), dataset_version)
        self._write_manifest(contents)
        logger.warning(
            "the version has no version manifest of its DataDigest (it ran before manifests "
            "were written, or the manifest is gone): wrote one of its objects as they are now; "
            "the retrain runs with its DataDigest",
            extra={
                "dataset_version": dataset_version,
                "recorded_data_digest": digest,
                "data_digest": contents.data_digest,
            },
        )
        return str(contents.data_digest)
