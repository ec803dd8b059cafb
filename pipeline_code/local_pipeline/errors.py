"""The errors of a local run: each names the step (when there is one) and what is wrong."""

from __future__ import annotations


class LocalPipelineError(Exception):
    """The run cannot start or go on; the message says why."""


class DefinitionError(LocalPipelineError):
    """The definition is malformed, wired wrongly or uses what the local run cannot execute;
    raised before any step runs, with every problem found (one per line)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class StepError(LocalPipelineError):
    """A step could not run or failed; the message is the step's failure reason (and `log`
    the job's log file, when it ran)."""

    def __init__(self, step: str, reason: str, log: object = None) -> None:
        self.step = step
        self.reason = reason
        self.log = log
        super().__init__(f"{step}: {reason}")
