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
