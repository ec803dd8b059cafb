"""Guards for the project's layout traps (see shared/reference/AWS-FACTS.md)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_constructs_folder_has_no_init_file() -> None:
    # An __init__.py would shadow the `constructs` library and break aws_cdk at import.
    assert not (ROOT / "constructs" / "__init__.py").exists(), (
        "constructs/__init__.py must not exist: it shadows the constructs library "
        "(No module named 'constructs._jsii')"
    )


def test_our_constructs_and_the_library_import_side_by_side() -> None:
    from constructs import Construct  # the library
    from constructs.secure_bucket import SecureBucket  # ours, merged by pkgutil.extend_path

    assert issubclass(SecureBucket, Construct)


def test_cdk_cli_is_pinned_exactly_to_the_v2_line() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    assert re.fullmatch(r"2\.\d+\.\d+", package["devDependencies"]["aws-cdk"])
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert (
        lock["packages"]["node_modules/aws-cdk"]["version"] == package["devDependencies"]["aws-cdk"]
    )


def test_python_requirements_are_pinned_exactly() -> None:
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "-r")):
                assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line), f"{name}: {line}"


SOURCE_FOLDERS = ("mlops_config", "stacks", "constructs", "lambdas", "pipeline_code", "cli")
MAX_MODULE_LINES = 400


def _source_modules() -> list[Path]:
    return [ROOT / "app.py"] + [
        path for folder in SOURCE_FOLDERS for path in sorted((ROOT / folder).rglob("*.py"))
    ]


def test_every_module_is_small_enough_to_hold_in_ones_head() -> None:
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in _source_modules()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, f"split along a real seam (CONTRIBUTING.md): {too_long}"


def test_every_module_opens_with_a_docstring_that_says_its_job() -> None:
    silent = [
        str(path.relative_to(ROOT))
        for path in _source_modules()
        if path.read_text().strip() and not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert not silent
