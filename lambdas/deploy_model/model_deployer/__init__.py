"""Deploy approved model packages by updating the Serving stack, and request rollbacks.

The endpoint belongs to the Serving stack (CloudFormation), which takes the model package as its
`ModelPackageArn` parameter (empty = no endpoint). Deploying a package means one `UpdateStack`
with the previous template and that parameter changed, so the endpoint stays owned by
CloudFormation and its blue/green guardrails and rollback apply to every deploy. A stack built
with the model-monitor engine also takes the package's data-quality baselines
(`DataQualityStatisticsUri`, `DataQualityConstraintsUri`), set in the same update.

Three events lead here:

* `aws.sagemaker` / "SageMaker Model Package State Change" of this environment's Model Package
  Group: deploys the package once it is Approved (`DEPLOY_ON=approval`) or, in addition, promoted
  (`DEPLOY_ON=promotion`: its ModelLifeCycle is Stage "Production", StageStatus "Approved").
* `mlops.serving` / "Rollback Requested" on the environment's operator event bus (put by
  `request_rollback`): deploys the given package, or by default the previous deployable one.
* `aws.cloudformation` / "CloudFormation Stack Status Change" to UPDATE_ROLLBACK_COMPLETE of
  the Serving stack: the package whose deployment rolled back is set Rejected with the reason
  (`rollbacks`), so nothing redeploys it or takes it as champion until an approver re-approves.

"Which package is serving" has one answer, `served_package` (THE rule: the stack's parameter
while the stack is settled, UNSETTLED while it changes, NONE without an endpoint); the CLI and
the other handlers use the same function. Every deploy is an UpdateStack through the Serving
stack's dedicated CloudFormation service role (`CFN_SERVICE_ROLE_ARN`), after the package's
model artifact was hashed and matched against the SHA-256 the pipeline recorded
(`integrity`, metadata key `model_artifact_sha256`).

Events are at-least-once, may arrive late and may be stale, so every decision is re-checked
against the registry (DescribeModelPackage) and the stack (DescribeStacks): a package that is
already deployed, no longer approved, rolled back, or older than an approved package now
serving is never (re)deployed by an approval event. Those cases, foreign and malformed events
return an ignored `Outcome` with a reason; a model artifact that fails verification returns a
refused `Outcome` (not retried). Raised: AWS failures (`DeployError`), a stack busy with another
operation (`StackBusyError`, retry later) or waiting for an operator (`StackNeedsOperatorError`).

Modules: `config` (the Lambda environment), `events` (the events, rollback requests, ignore
reasons), `registry` (Model Registry reads, what is deployable), `served_package` (THE rule),
`serving_stack` (the stack's update), `rollbacks` (rolled-back deployments), `integrity` (the
artifact hash), `deploy` (the rules above, per event), `errors` (what failures raise and how
they are counted). Functions take boto3 clients as arguments; `handler.py` builds them with
`CLIENT_CONFIG`.
"""

from __future__ import annotations

from served_package import (
    MODEL_PACKAGE_PARAMETER,
    NotAServingStackError,
    ServedPackage,
    ServingState,
    read_served_package,
    served_package,
)

from .config import CLIENT_CONFIG, ConfigError, DeployerConfig
from .deploy import Outcome, handle_event
from .errors import (
    DeployError,
    FailureKind,
    StackBusyError,
    StackNeedsOperatorError,
    failure_kind,
)
from .events import IgnoreReason, PackageStateChange, RollbackRequest, parse_event, request_rollback
from .integrity import MODEL_ARTIFACT_SHA256_KEY, IntegrityError, verify_model_artifact
from .registry import PROMOTED_LIFE_CYCLE, deployable_refusal, find_previous_deployable, is_promoted
from .rollbacks import ROLLED_BACK_PREFIX, deploy_token, rolled_back_note

__all__ = [
    "CLIENT_CONFIG",
    "MODEL_ARTIFACT_SHA256_KEY",
    "MODEL_PACKAGE_PARAMETER",
    "PROMOTED_LIFE_CYCLE",
    "ROLLED_BACK_PREFIX",
    "ConfigError",
    "DeployError",
    "DeployerConfig",
    "FailureKind",
    "IgnoreReason",
    "IntegrityError",
    "NotAServingStackError",
    "Outcome",
    "PackageStateChange",
    "RollbackRequest",
    "ServedPackage",
    "ServingState",
    "StackBusyError",
    "StackNeedsOperatorError",
    "deploy_token",
    "deployable_refusal",
    "failure_kind",
    "find_previous_deployable",
    "handle_event",
    "is_promoted",
    "parse_event",
    "read_served_package",
    "request_rollback",
    "rolled_back_note",
    "served_package",
    "verify_model_artifact",
]
