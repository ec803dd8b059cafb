"""How a step's `main()` runs its work: logging set up once, and every way it can fail turned
into exit code 1 with a one-line reason (see `failure`) instead of a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable

from common.failure import report_failure, xgboost_message


def configure_logging(log: logging.Logger) -> None:
    """Timestamped lines on stderr (unless the caller set up logging), `log` at INFO."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)


def run_step(
    step: str,
    log: logging.Logger,
    work: Callable[[], object],
    *,
    failure_file: str,
    expected: tuple[type[BaseException], ...],
    xgboost_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Run `work`; 0 on success, 1 on failure with the reason reported.

    Args:
        step: The step's name, first word of the reason on stderr.
        log: Where tracebacks of XGBoost errors and crashes go.
        work: The step's work.
        failure_file: The failure file SageMaker reads (overridable, see `failure`).
        expected: Bad input or arguments: the error's message is the reason.
        xgboost_errors: XGBoost's errors, reported by their first line only (checked before
            `expected`: XGBoostError is a ValueError).
    """
    try:
        work()
    except xgboost_errors as error:
        log.exception("XGBoost error")
        report_failure(step, f"XGBoost error: {xgboost_message(error)}", failure_file)
        return 1
    except expected as error:
        report_failure(step, str(error), failure_file)
        return 1
    except Exception as error:  # a crash must still leave a reason where the user looks
        log.exception("unexpected error")
        report_failure(step, f"unexpected {type(error).__name__}: {error}", failure_file)
        return 1
    return 0
