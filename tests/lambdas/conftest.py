"""Fixtures of the Lambda tests: `env` and `lambda_env`, the data-landing trigger's moto world
(tests/lambdas/trigger_env.py), for every trigger test module."""

from tests.lambdas.trigger_env import env, lambda_env  # noqa: F401  (pytest fixtures)
