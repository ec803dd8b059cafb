"""Import a Lambda handler's modules the way the Lambda runtime does.

Each `lambdas/<name>/` folder is deployed as the root of its own Lambda package, with the
modules of `lambdas/shared/` it needs beside its handler, so its modules import each other by
bare name (`import ledger`). Tests load them the same way: the folder and `lambdas/shared/`
go first on `sys.path`, and `handler.py` is loaded under a unique module
name so two handlers never collide in `sys.modules`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
SHARED_DIR = LAMBDAS_DIR / "shared"


def load_lambda_module(function: str, module: str = "handler") -> ModuleType:
    """Load `lambdas/<function>/<module>.py`; `handler` is registered as `<function>_handler`."""
    folder = LAMBDAS_DIR / function
    if not folder.is_dir():
        raise FileNotFoundError(f"no Lambda folder {folder}")
    for path in (SHARED_DIR, folder):  # the package: the folder's modules and the shared ones
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    if module != "handler":
        return importlib.import_module(module)
    unique = f"{function}_handler"
    if unique in sys.modules:
        return sys.modules[unique]
    spec = importlib.util.spec_from_file_location(unique, folder / "handler.py")
    assert spec and spec.loader
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[unique] = loaded
    spec.loader.exec_module(loaded)
    return loaded


def lambda_context(function_name: str, region: str, account: str) -> Any:
    """The parts of a Lambda context object that Powertools' Logger reads."""
    return SimpleNamespace(
        function_name=function_name,
        function_version="$LATEST",
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:{region}:{account}:function:{function_name}",
        aws_request_id="req-1",
    )


def emf_documents(output: str) -> list[dict[str, Any]]:
    """CloudWatch embedded-metric-format documents printed by Powertools (JSON lines that carry
    an `_aws` block)."""
    return [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and '"_aws"' in line
    ]


def handler_with(
    function: str, monkeypatch: Any, environment: dict[str, str], **clients: Any
) -> ModuleType:
    """`lambdas/<function>/handler.py` with `environment` set and its cached boto3 clients
    replaced by `clients` (name -> client), both undone after the test (`monkeypatch`)."""
    module = load_lambda_module(function)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    for name, client in clients.items():
        monkeypatch.setitem(module.clients, name, client)
    return module
