"""Properties of the stacks themselves (not their resources)."""

from __future__ import annotations

import pytest

from stacks.app_builder import build_environment
from stacks.config import load_config
from tests.conftest import new_app

# One worker synthesizes the CDK apps once for all of these (pytest -n with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("cdk")


def test_retained_environments_protect_their_stacks_from_deletion_and_dev_does_not() -> None:
    app = new_app()
    prod = build_environment(app, load_config("prod"))
    staging = build_environment(app, load_config("staging"))
    dev = build_environment(app, load_config("dev"))
    # the data, the pipelines and the served endpoint; monitoring is redeployable
    for stacks in (prod, staging):
        assert {r: s.termination_protection for r, s in stacks.items()} == {
            "data": True,
            "training": True,
            "serving": True,
            "monitoring": False,
        }
    assert not any(s.termination_protection for s in dev.values())
    assert prod["data"].account == "333333333333" and prod["data"].region == "eu-west-1"
