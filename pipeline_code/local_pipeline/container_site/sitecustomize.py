"""The container's view for every Python process of a local step (loaded through PYTHONPATH).

In SageMaker a step's files live under `/opt/ml`; locally they live in the step's sandbox. The
runner rewrites `/opt/ml` in the step's arguments and environment; this module does the same in
each process it starts (children included), and redirects Python-level file access under
`/opt/ml` (open, os.stat, os.mkdir, os.listdir, ...) to the sandbox, so a script's own
defaults such as `/opt/ml/output/failure` or `/opt/ml/checkpoints` land in the sandbox too.
(Native code given an unrewritten `/opt/ml` path is not redirected; the runner checks that no
step created `/opt/ml` on this machine.) It also routes every botocore call to the local AWS
stand-in (`aws_stand_in`), so no step reaches a real AWS account. With `hosts` in the settings
(a training job on several instances) `socket.gethostbyname` answers their addresses, as
SageMaker's DNS answers `algo-N` inside a job.

Settings come from the JSON file named by LOCAL_PIPELINE_CONTAINER: `root` (the folder that
stands for `/`) and the stand-in's settings. Without that variable this module does nothing.
"""

from __future__ import annotations

import builtins
import functools
import importlib.abc
import importlib.util
import io
import json
import os
import re
import sys
from typing import Any

_PREFIX = "/opt/ml"
# `/opt/ml` as a path inside a longer text (an argument such as `--out=/opt/ml/x`, JSON).
_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_.\-/])/opt/ml(?=/|$|[^A-Za-z0-9_.\-])")
# (function, positions of its path arguments)
_OS_FUNCTIONS = {
    "open": (0,),
    "stat": (0,),
    "lstat": (0,),
    "mkdir": (0,),
    "listdir": (0,),
    "scandir": (0,),
    "remove": (0,),
    "unlink": (0,),
    "rmdir": (0,),
    "rename": (0, 1),
    "replace": (0, 1),
    "link": (0, 1),
    "symlink": (0, 1),
    "readlink": (0,),
    "chmod": (0,),
    "utime": (0,),
    "access": (0,),
    "truncate": (0,),
    "chdir": (0,),
}


def _mapper(root: str) -> tuple[Any, Any]:
    host = root.rstrip("/") + _PREFIX

    def in_text(text: str) -> str:
        return _IN_TEXT.sub(lambda _: host, text)

    def path(value: Any) -> Any:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, str) and (value == _PREFIX or value.startswith(_PREFIX + "/")):
            return host + value[len(_PREFIX) :]
        if isinstance(value, bytes) and (
            value == _PREFIX.encode() or value.startswith(_PREFIX.encode() + b"/")
        ):
            return host.encode() + value[len(_PREFIX) :]
        return value

    return in_text, path


def _redirect(function: Any, positions: tuple[int, ...], path: Any) -> Any:
    @functools.wraps(function)
    def redirected(*args: Any, **kwargs: Any) -> Any:
        args = tuple(path(a) if i in positions else a for i, a in enumerate(args))
        for name in ("path", "file", "src", "dst"):
            if name in kwargs:
                kwargs[name] = path(kwargs[name])
        return function(*args, **kwargs)

    return redirected


class _AfterImport(importlib.abc.MetaPathFinder):
    """Run `callback(module)` right after `name` is first imported (botocore.client costs
    0.4 s to import: only steps that use it pay for it)."""

    def __init__(self, name: str, callback: Any) -> None:
        self.name = name
        self.callback = callback

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader, callback = spec.loader, self.callback
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            original(module)
            callback(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _install_aws(settings: dict[str, Any]) -> None:
    def install(_: Any) -> None:
        spec = importlib.util.spec_from_file_location("_local_pipeline_aws", settings["module"])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        module.install(settings)

    if "botocore.client" in sys.modules:
        install(sys.modules["botocore.client"])
    else:
        sys.meta_path.insert(0, _AfterImport("botocore.client", install))


def _install_hosts(hosts: dict[str, str]) -> None:
    import socket

    original = socket.gethostbyname

    def gethostbyname(name: str) -> str:
        return hosts[name] if name in hosts else original(name)

    socket.gethostbyname = gethostbyname


def _enter_container() -> None:
    settings_file = os.environ.get("LOCAL_PIPELINE_CONTAINER")
    if not settings_file:
        return
    with open(settings_file, encoding="utf-8") as handle:
        settings = json.load(handle)
    in_text, path = _mapper(settings["root"])
    sys.argv[:] = [in_text(argument) for argument in sys.argv]
    for name, value in list(os.environ.items()):
        if _PREFIX in value:
            os.environ[name] = in_text(value)
    for name, positions in _OS_FUNCTIONS.items():
        if hasattr(os, name):
            setattr(os, name, _redirect(getattr(os, name), positions, path))
    redirected_open = _redirect(builtins.open, (0,), path)
    builtins.open = redirected_open
    io.open = redirected_open
    _install_aws(settings["aws"])
    if settings.get("hosts"):
        _install_hosts(settings["hosts"])


_enter_container()
