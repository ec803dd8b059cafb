"""Pipeline executions: recent runs with their step states, starting a run through the
pipeline's trigger Lambda, and waiting for a run to finish.

Both pipelines of an environment work the same way (`--pipeline training|evaluation`): the
training pipeline through the start-training Lambda on versions under `landing/`, the
evaluation pipeline through the evaluation trigger (the same code) on labelled versions under
`ground-truth/`; the evaluation trigger also takes `model_package_arn` (score that package
instead of the production model).

Runs are started only through the trigger Lambda (`lambda:InvokeFunction`,
RequestResponse), never with StartPipelineExecution directly: its ledger is the single record
of which dataset version ran as which execution, and its exactly-once rules and concurrency cap
apply to manual starts too.

* `start --latest` sends `{"action": "retrain-latest", "reason": "manual", "request_id": ...}`:
  a new run on the newest started dataset version (of `--dataset`, if given). The request id
  makes a retried command start one run, not two.
* `start DATASET/VERSION` re-announces the version's completion marker (`_SUCCESS` or
  `manifest.json`) as the S3 "Object Created" event the Lambda already handles: a version whose
  marker event was lost starts now; a version that already ran is reported with its execution
  (a marker never runs a version twice; land changed data as a new version). In quiet-period
  mode a version without a marker gets a quiet-period check instead.
* `start DATASET/VERSION --rerun` sends `{"action": "retrain-version", "dataset_version": ...,
  "reason": "manual", "request_id": ...}`: a new run of a version that already ran, on the
  parameters its ledger item recorded (InputDataUri, DatasetVersion, DataDigest). The request
  id makes a retried command start one run; a version that never ran is refused by the Lambda.
"""

from cli.aws import CliError
from cli.runs.executions import (
    EVALUATION_FUNCTION_OUTPUT,
    FAILED,
    FUNCTION_OUTPUT,
    RUNNING,
    Execution,
    Pipeline,
    Step,
    check_execution,
    execution_arn_pipeline,
    parameters,
    recent,
    steps,
    wait,
)
from cli.runs.starting import (
    ACTION_QUIET_CHECK,
    ACTION_RETRAIN,
    ACTION_RETRAIN_VERSION,
    COMPLETION_MODE_QUIET,
    DEFERRED,
    DUPLICATE,
    MANUAL_REASON,
    OBJECT_CREATED,
    PENDING,
    S3_SOURCE,
    STARTED,
    StartResult,
    invoke_start,
    parse_dataset_version,
    rerun_request,
    retrain_request,
    version_request,
)

__all__ = [
    "ACTION_QUIET_CHECK",
    "ACTION_RETRAIN",
    "ACTION_RETRAIN_VERSION",
    "COMPLETION_MODE_QUIET",
    "DEFERRED",
    "DUPLICATE",
    "EVALUATION_FUNCTION_OUTPUT",
    "FAILED",
    "FUNCTION_OUTPUT",
    "MANUAL_REASON",
    "OBJECT_CREATED",
    "PENDING",
    "RUNNING",
    "S3_SOURCE",
    "STARTED",
    "CliError",
    "Execution",
    "Pipeline",
    "StartResult",
    "Step",
    "check_execution",
    "execution_arn_pipeline",
    "invoke_start",
    "parameters",
    "parse_dataset_version",
    "recent",
    "rerun_request",
    "retrain_request",
    "steps",
    "version_request",
    "wait",
]
