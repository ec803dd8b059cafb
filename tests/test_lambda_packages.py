"""What each Lambda package holds, read from the synthesized cloud assembly: every module a
function's code imports is in its package, in the Python runtime (the standard library,
boto3/botocore) or in the Powertools layer, so no function fails at import after deploy.
Modules of `lambdas/shared/` exist once in the tree and are copied into each package that
names them (`PythonFunction(shared_modules=...)`)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import pytest

from constructs import python_function
from constructs.python_function import SHARED_DIR, package_source
from tests.conftest import assembly_dir, synthesized

pytestmark = pytest.mark.xdist_group("cdk")

# What the Lambda Python runtime and the Powertools layer provide besides the standard library.
RUNTIME_PACKAGES = {"boto3", "botocore", "aws_lambda_powertools"}
HANDLER = "handler.lambda_handler"


def _imports(package: Path) -> dict[str, set[str]]:
    """Top-level names each module of the package imports absolutely, by module path."""
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        names = found.setdefault(str(path.relative_to(package)), set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return found


def _our_packages(env: str) -> dict[str, Path]:
    """Each of our functions' package folder in the assembly, by logical id."""
    packages = {}
    for role, template in synthesized(env).items():
        resources: dict[str, Any] = template.to_json()["Resources"]
        for logical_id, resource in resources.items():
            properties = resource["Properties"]
            if resource["Type"] == "AWS::Lambda::Function" and properties["Handler"] == HANDLER:
                asset = properties["Code"]["S3Key"].removesuffix(".zip")
                packages[f"{role}/{logical_id}"] = Path(assembly_dir(env)) / f"asset.{asset}"
    return packages


@pytest.mark.slow
def test_every_module_a_function_imports_is_in_its_package_or_runtime() -> None:
    packages = _our_packages("dev")
    assert len(packages) >= 6  # triggers, deployer, drift starter, job tagger, pipeline resource
    unresolved = {}
    for function, package in packages.items():
        assert (package / "handler.py").is_file(), function
        own = {path.stem for path in package.glob("*.py")} | {
            path.name for path in package.iterdir() if path.is_dir()
        }
        known = own | RUNTIME_PACKAGES | set(sys.stdlib_module_names) | {"__future__"}
        for module, names in _imports(package).items():
            if names - known:
                unresolved[f"{function}:{module}"] = sorted(names - known)
    assert not unresolved, f"imports no package provides: {unresolved}"


@pytest.mark.slow
def test_the_functions_that_ask_what_serves_carry_the_one_shared_rule() -> None:
    rule = (SHARED_DIR / "served_package.py").read_bytes()
    carrying = {
        function
        for function, package in _our_packages("dev").items()
        if (package / "served_package.py").is_file()
        and (package / "served_package.py").read_bytes() == rule
    }
    assert {"serving/DeployerFunctionA1762962"} <= carrying
    assert {"training/TriggerStartTrainingFunctionE2D11690"} <= carrying


def test_a_package_without_shared_modules_is_its_folder(tmp_path: Path) -> None:
    assert package_source(tmp_path, ()) == tmp_path


def test_a_package_with_shared_modules_is_a_staged_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(python_function, "STAGING_DIR", tmp_path / "staged")
    folder = tmp_path / "my_function"
    (folder / "inner").mkdir(parents=True)
    (folder / "handler.py").write_text("import served_package\n")
    (folder / "inner" / "__init__.py").write_text("")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\0")

    staged = package_source(folder, ("served_package",))

    assert sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file()) == [
        "handler.py",
        "inner/__init__.py",
        "served_package.py",
    ]
    assert (staged / "served_package.py").read_bytes() == (
        SHARED_DIR / "served_package.py"
    ).read_bytes()
    assert package_source(folder, ("served_package",)) == staged  # same content, same folder
    (folder / "handler.py").write_text("import served_package  # changed\n")
    assert package_source(folder, ("served_package",)) != staged  # new content, new folder


def test_a_missing_shared_module_is_named(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("")
    with pytest.raises(FileNotFoundError, match="no_such_module.py"):
        package_source(tmp_path, ("no_such_module",))


def test_a_function_module_may_not_hide_a_shared_one(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("")
    (tmp_path / "served_package.py").write_text("")
    with pytest.raises(ValueError, match="has its own served_package.py"):
        package_source(tmp_path, ("served_package",))
