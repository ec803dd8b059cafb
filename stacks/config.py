"""Moved: the configuration model is the CDK-free `mlops_config` package. Import from there;
these re-exports only keep code written before the move working."""

import mlops_config
from mlops_config import *  # noqa: F403

__all__ = mlops_config.__all__
