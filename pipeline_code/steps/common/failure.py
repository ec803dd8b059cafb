"""How a failed step reports why: the reason on stderr and in the file SageMaker shows as the
job's message (a Processing job's ExitMessage, a Training job's FailureReason), at most 1 KB."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

#: Overrides the failure file (the local run and the tests point it elsewhere).
FAILURE_FILE_ENV = "FAILURE_REASON_FILE"
FAILURE_MESSAGE_MAX_BYTES = 1024
# A Processing job reports the first 1 KB of this file as ExitMessage (DescribeProcessingJob).
PROCESSING_FAILURE_FILE = "/opt/ml/output/message"
# A Training job reports the first 1 KB of this file as FailureReason (DescribeTrainingJob).
TRAINING_FAILURE_FILE = "/opt/ml/output/failure"


def report_failure(step: str, message: str, default_file: str) -> None:
    """Write the reason to stderr and to the file SageMaker shows as the job's message."""
    print(f"{step} failed: {message}", file=sys.stderr, flush=True)
    path = Path(os.environ.get(FAILURE_FILE_ENV, default_file))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = message.encode("utf-8")[:FAILURE_MESSAGE_MAX_BYTES]
        path.write_text(encoded.decode("utf-8", errors="ignore"), encoding="utf-8")
    except OSError as error:
        print(f"{step}: could not write the failure reason to {path}: {error}", file=sys.stderr)


def xgboost_message(error: BaseException, limit: int = 300) -> str:
    """The first line of an error (at most `limit` characters), without the timestamp and
    source location XGBoost puts before it; XGBoost's native stack trace follows that line
    and would fill the 1 KB failure reason."""
    lines = str(error).strip().splitlines()
    if not lines:
        return type(error).__name__
    line = re.sub(r"^\[[\d:]+\]\s*(\S+:\d+:\s*)?", "", lines[0])
    return line if len(line) <= limit else line[: limit - 3] + "..."
