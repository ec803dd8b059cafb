"""Deploy approved model packages by updating the Serving stack, and request rollbacks.

The endpoint belongs to the Serving stack (CloudFormation), which takes the model package as its
`ModelPackageArn` parameter (empty = no endpoint). Deploying a package means one `UpdateStack`
with the previous template and that parameter changed, so the endpoint stays owned by
CloudFormation and its blue/green guardrails and rollback apply to every deploy. A stack built
with the model-monitor engine also takes the package's data-quality baselines
(`DataQualityStatisticsUri`, `DataQualityConstraintsUri`), set in the same update.

Two events lead here:

* `aws.sagemaker` / "SageMaker Model Package State Change" of this environment's Model Package
  Group: deploys the package once it is Approved (`DEPLOY_ON=approval`) or, in addition, promoted
  (`DEPLOY_ON=promotion`: its ModelLifeCycle is Stage "Production", StageStatus "Approved").
* `mlops.serving` / "Rollback Requested" (put by `request_rollback`): deploys the given package,
  or by default the latest deployable package older than the one now serving.

Events are at-least-once, may arrive late and may be stale, so every decision is re-checked
against the registry (DescribeModelPackage) and the stack (DescribeStacks): a package that is
already deployed, no longer approved, or older than an approved package now serving is never
(re)deployed by an approval event. Those cases, foreign and malformed events return an ignored
`Outcome` with a reason; nothing raises except AWS failures (`DeployError`) and a stack that is
busy with another operation (`StackBusyError`, retry later).

Modules: `config` (the Lambda environment), `events` (the two events, rollback requests, ignore
reasons), `registry` (Model Registry reads), `serving_stack` (the stack's parameter and its
update), `deploy` (the rules above, per event), `errors` (what failures raise). Functions take
boto3 clients as arguments; `handler.py` builds them with `CLIENT_CONFIG`.
"""

from __future__ import annotations

from .config import CLIENT_CONFIG, ConfigError, DeployerConfig
from .deploy import Outcome, handle_event
from .errors import DeployError, StackBusyError
from .events import IgnoreReason, PackageStateChange, RollbackRequest, parse_event, request_rollback
from .registry import PROMOTED_LIFE_CYCLE, find_previous_approved, is_promoted
from .serving_stack import current_model_package_arn

__all__ = [
    "CLIENT_CONFIG",
    "PROMOTED_LIFE_CYCLE",
    "ConfigError",
    "DeployError",
    "DeployerConfig",
    "IgnoreReason",
    "Outcome",
    "PackageStateChange",
    "RollbackRequest",
    "StackBusyError",
    "current_model_package_arn",
    "find_previous_approved",
    "handle_event",
    "is_promoted",
    "parse_event",
    "request_rollback",
]
