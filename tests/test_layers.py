"""Layers point down: the code that runs on an operator's laptop (cli/), inside SageMaker or
locally (pipeline_code/) and the configuration model never import the CDK layer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CDK_LAYER = ("aws_cdk", "constructs", "cdk_nag", "cdklabs", "jsii", "stacks")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", ["mlops_config", "cli", "pipeline_code"])
def test_no_module_of_the_layer_imports_the_cdk_layer(layer: str) -> None:
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / layer).rglob("*.py")
        for name in _imported(path)
        if name.split(".")[0] in CDK_LAYER
    }
    assert not offending


def test_the_cli_and_the_config_load_without_the_cdk() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, cli.main, mlops_config; mlops_config.load_config('prod'); "
            "print(sorted({m.split('.')[0] for m in sys.modules}))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "mlops_config" in loaded and "typer" in loaded
    assert not [layer for layer in CDK_LAYER if f"'{layer}'" in loaded]
