"""Properties of the stacks themselves (not their resources)."""

from __future__ import annotations

import pytest

from stacks.app_builder import build_environment
from stacks.config import load_config
from tests.conftest import new_app

# One worker synthesizes the CDK apps once for all of these (pytest -n with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("cdk")


def test_prod_data_stack_has_termination_protection_and_dev_does_not() -> None:
    app = new_app()
    prod = build_environment(app, load_config("prod"))
    dev = build_environment(app, load_config("dev"))
    assert prod["data"].termination_protection is True
    assert dev["data"].termination_protection is False
    assert prod["data"].account == "333333333333" and prod["data"].region == "eu-west-1"
