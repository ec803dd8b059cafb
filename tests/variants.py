"""The configurations the tests synthesize beyond cdk.json's environments, for CI's checkov.

`tests/conftest.synthesized(env, overrides)` builds each variant with cdk-nag and the Control
Tower rules in the tests; checkov runs in its own venv, outside the tests, so
`python -m tests.variants` synthesizes every variant the same way and prints one cloud
assembly folder per line for `make checkov-variants` to check. Without it, checkov would only
ever see the environments cdk.json deploys and never the VPC forms, the serverless endpoint,
promote mode's cross-account policies, batch scoring (of an XGBoost and a scikit-learn model),
the MLflow tracking modes or the delivery pipeline.
"""

from __future__ import annotations

import os
import sys

from tests.conftest import (
    BATCH,
    BATCH_VPC,
    MLFLOW_EXTERNAL,
    MLFLOW_MANAGED,
    MLFLOW_PROMOTE_TARGET,
    MLFLOW_SELF_HOSTED,
    MODEL_MONITOR,
    PROMOTE_SOURCE,
    PROMOTE_TARGET,
    PROMOTE_TARGET_BATCH,
    PROMOTE_VPC_TARGET,
    SERVERLESS,
    SKLEARN_BATCH,
    assembly_dir,
    synthesized,
)
from tests.test_delivery_stack import DELIVERY_ASSEMBLY, delivery_app
from tests.test_tuning_permissions import TUNING_VPC
from tests.test_vpc_mode import CREATED, CREATED_MLFLOW, IMPORTED, IMPORTED_MLFLOW

VARIANTS = {
    "vpc-created": ("dev", CREATED),
    "vpc-imported-model-monitor": ("dev", IMPORTED),
    "model-monitor": ("dev", MODEL_MONITOR),
    "serverless": ("dev", SERVERLESS),
    "promote-source": ("dev", PROMOTE_SOURCE),
    "promote-target": ("staging", PROMOTE_TARGET),
    "promote-target-vpc": ("staging", PROMOTE_VPC_TARGET),
    "promote-target-batch": ("staging", PROMOTE_TARGET_BATCH),
    "batch": ("dev", BATCH),
    "batch-vpc": ("dev", BATCH_VPC),
    "batch-sklearn": ("dev", SKLEARN_BATCH),
    "tuning-vpc": ("dev", TUNING_VPC),
    "mlflow-managed": ("dev", MLFLOW_MANAGED),
    "mlflow-external": ("dev", MLFLOW_EXTERNAL),
    "mlflow-self-hosted": ("dev", MLFLOW_SELF_HOSTED),
    "mlflow-vpc-created": ("dev", CREATED_MLFLOW),
    "mlflow-vpc-imported": ("dev", IMPORTED_MLFLOW),
    "promote-target-mlflow": ("staging", MLFLOW_PROMOTE_TARGET),
}


def main() -> int:
    os.environ.pop("PYTEST_XDIST_WORKER", None)  # the assemblies go under .build/test-cdk.out/main
    for name, (env, overrides) in VARIANTS.items():
        print(f"==> synthesizing {name}", file=sys.stderr, flush=True)
        synthesized(env, overrides)
        print(assembly_dir(env, overrides), flush=True)
    print("==> synthesizing the delivery pipeline", file=sys.stderr, flush=True)
    delivery_app()
    print(DELIVERY_ASSEMBLY, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
