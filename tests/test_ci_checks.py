"""CI's template checks cannot pass vacuously: `make checkov` and `make cfn-lint` stop with an
error when cdk.out/ holds no template (checkov over an empty folder reports success)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = ROOT / "Makefile"


def make(target: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(MAKEFILE), target],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_no_templates_fails_and_one_template_passes(tmp_path: Path) -> None:
    missing = make("templates-exist", tmp_path)
    assert missing.returncode != 0
    assert "no templates in cdk.out/: run make synth first" in missing.stderr
    (tmp_path / "cdk.out").mkdir()
    (tmp_path / "cdk.out" / "manifest.json").write_text("{}")  # not a template
    assert make("templates-exist", tmp_path).returncode != 0
    (tmp_path / "cdk.out" / "x-data.template.json").write_text("{}")
    assert make("templates-exist", tmp_path).returncode == 0


@pytest.mark.parametrize("target", ["checkov", "cfn-lint"])
def test_template_checks_look_for_templates_first(target: str) -> None:
    [rule] = re.findall(rf"^{target}:([^#\n]*)", MAKEFILE.read_text(), re.MULTILINE)
    assert rule.split()[0] == "templates-exist"  # before installing or running anything


WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def test_github_workflow_runs_the_same_ci_with_a_read_only_token() -> None:
    """The GitHub Actions workflow runs `.ci/run` (nothing else decides the verdict), on pull
    requests, with a token that can only read, actions pinned by commit, and the Python the
    project requires (pyproject's requires-python)."""
    import tomllib

    import yaml

    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "pull_request" in triggers
    assert workflow["permissions"] == {"contents": "read"}
    [job] = workflow["jobs"].values()
    assert job["timeout-minutes"] <= 90
    steps = job["steps"]
    assert [s["run"] for s in steps if "run" in s] == ["bash .ci/run"]
    for step in steps:
        if "uses" in step:
            action, _, ref = step["uses"].partition("@")
            assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{action} is not pinned by commit: {ref}"
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    low, high = re.fullmatch(r">=(\d+\.\d+),<(\d+\.\d+)", required).groups()  # type: ignore[union-attr]
    assert (
        tuple(map(int, low.split(".")))
        <= tuple(map(int, python["with"]["python-version"].split(".")))
        < tuple(map(int, high.split(".")))
    )


def test_ci_enforces_a_branch_coverage_floor() -> None:
    """CI's test step measures branch coverage of the app's own code and fails under a floor
    that is not vacuous; `make test COVERAGE=1` is the README's command with the floor on."""
    import tomllib

    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test COVERAGE=1$", ci, re.MULTILINE)
    [rule] = re.findall(r"^test:.*\n\t(.*)", MAKEFILE.read_text(), re.MULTILINE)
    assert "$(if $(COVERAGE),-p pytest_cov --cov" in rule
    coverage = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["coverage"]
    assert coverage["run"]["branch"] is True
    assert {"stacks", "constructs", "lambdas", "pipeline_code", "mlops_config", "cli"} <= set(
        coverage["run"]["source"]
    )
    assert coverage["report"]["fail_under"] >= 85
