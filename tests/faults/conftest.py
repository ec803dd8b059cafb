"""Fixtures of the fault suite: fake credentials, no caller config, no retry back-off."""

from __future__ import annotations

from pathlib import Path

import botocore.retries.standard
import pytest


@pytest.fixture(autouse=True)
def _offline_aws(aws_credentials: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The caller's ~/.aws files must not change retry modes, endpoints or credentials.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    # botocore's real retry decisions run; only the jittered sleep between attempts and the
    # client-wide retry budget (which clients reused across tests would use up) are taken out.
    monkeypatch.setattr(
        botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0
    )
    monkeypatch.setattr(
        botocore.retries.standard.RetryQuotaChecker,
        "acquire_retry_quota",
        lambda self, context: True,
    )
