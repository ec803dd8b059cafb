"""Run a step's container command on this machine, in a sandbox that stands for the container.

Container paths under `/opt/ml` map to `<sandbox>/opt/ml`: in the command's arguments and
environment here, and in every Python process of the step through `container_site` (which
also redirects Python-level file access and routes botocore calls to `aws_stand_in`). The
image's `python3` is this interpreter (its libraries are pinned to the image's versions);
other programs must exist on this machine (`/bin/bash` does). The environment is what
SageMaker gives a container (region, the job's variables, the step's Environment) plus a few
of this machine's (HOME, locale, thread settings), and stand-in credentials: no profile or key
of this machine reaches a step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_code.local_pipeline import aws_stand_in

CONTAINER_PREFIX = "/opt/ml"
SITE_DIR = Path(__file__).resolve().parent / "container_site"
_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_.\-/])/opt/ml(?=/|$|[^A-Za-z0-9_.\-])")
_PYTHON = re.compile(r"^python(3(\.\d+)?)?$")
_PASSED_THROUGH = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TERM", "SYSTEMROOT")
_PASSED_PREFIXES = ("OMP_", "MKL_", "OPENBLAS_")


class ContainerError(Exception):
    """The command cannot run here; the message says why."""


@dataclass(frozen=True)
class World:
    """What a step's AWS calls see: the local buckets, the registry, where metrics go."""

    s3_root: Path
    registry: Path
    region: str


@dataclass(frozen=True)
class Sandbox:
    """A step's container file system: `root` stands for `/`."""

    root: Path

    @property
    def host_prefix(self) -> str:
        return str(self.root / CONTAINER_PREFIX.lstrip("/"))

    def host_path(self, container_path: str) -> Path:
        """The file on this machine behind a container path under /opt/ml."""
        if container_path != CONTAINER_PREFIX and not container_path.startswith(
            CONTAINER_PREFIX + "/"
        ):
            raise ContainerError(
                f"container path {container_path!r} is not under {CONTAINER_PREFIX}: the local "
                "run maps only /opt/ml"
            )
        return Path(self.host_prefix + container_path[len(CONTAINER_PREFIX) :])

    def container_view(self, text: str) -> str:
        """`text` (a step's message) with sandbox paths shown as the container's /opt/ml."""
        return text.replace(self.host_prefix, CONTAINER_PREFIX)

    def rewrite(self, value: Any) -> Any:
        """`value` with every /opt/ml path in its text mapped to the sandbox."""
        if isinstance(value, str):
            return _IN_TEXT.sub(lambda _: self.host_prefix, value)
        return value


@dataclass(frozen=True)
class Finished:
    """How the command ended."""

    exit_code: int
    seconds: float
    log: Path
    aws_calls: list[dict[str, str]]
    timed_out: bool = False


def program(command: list[str], sandbox: Sandbox, path: str) -> list[str]:
    """The command with its program found on this machine."""
    if not command:
        raise ContainerError(
            "no ContainerEntrypoint: the image's own entrypoint exists only in the image"
        )
    first = command[0]
    if _PYTHON.match(Path(first).name):
        resolved = sys.executable
    elif first.startswith(CONTAINER_PREFIX):
        resolved = str(sandbox.host_path(first))
    else:
        found = shutil.which(first, path=path) if "/" not in first else first
        if not found or not Path(found).exists():
            raise ContainerError(
                f"the entrypoint program {first!r} is part of the image, not of this machine"
            )
        resolved = found
    return [resolved, *(sandbox.rewrite(argument) for argument in command[1:])]


def environment(
    sandbox: Sandbox, world: World, variables: Mapping[str, str], settings_file: Path
) -> dict[str, str]:
    """The container's environment: SageMaker's, the step's `variables`, the local wiring."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name in _PASSED_THROUGH or name.startswith(_PASSED_PREFIXES)
    }
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    env.update(
        {
            "AWS_REGION": world.region,
            "AWS_DEFAULT_REGION": world.region,
            # Stand-ins: every call is answered locally, and nothing reads this machine's
            # profiles or probes instance metadata for credentials.
            "AWS_ACCESS_KEY_ID": "local-run",
            "AWS_SECRET_ACCESS_KEY": "local-run",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONPATH": str(SITE_DIR),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({name: sandbox.rewrite(str(value)) for name, value in variables.items()})
    env[aws_stand_in.SETTINGS_ENV] = str(settings_file)
    return env


def run(
    command: list[str],
    sandbox: Sandbox,
    world: World,
    variables: Mapping[str, str],
    network_isolation: bool,
    timeout: float | None,
    on_line: Callable[[str], None] | None = None,
    hosts: Mapping[str, str] | None = None,
) -> Finished:
    """Run `command` in `sandbox` (its log beside the sandbox); never raises for the
    command's own failure, only ContainerError when it cannot start or touched /opt/ml.
    `hosts` (name -> address) is what the container's name service answers for the job's
    other hosts (a training job on several instances)."""
    folder = sandbox.root.parent
    log, calls, settings_file = (
        folder / "log.txt",
        folder / "aws-calls.jsonl",
        folder / "container.json",
    )
    calls.unlink(missing_ok=True)
    # A container always has /opt/ml (and /opt/ml/output for its failure message).
    sandbox.host_path(f"{CONTAINER_PREFIX}/output").mkdir(parents=True, exist_ok=True)
    settings = {
        "root": str(sandbox.root),
        "aws": {
            "module": str(Path(aws_stand_in.__file__).resolve()),
            "s3_root": str(world.s3_root),
            "registry": str(world.registry),
            "metrics_file": str(folder / "cloudwatch-metrics.jsonl"),
            "calls_file": str(calls),
            "network_isolation": network_isolation,
        },
    }
    if hosts:
        settings["hosts"] = dict(hosts)
    settings_file.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    env = environment(sandbox, world, variables, settings_file)
    argv = program(command, sandbox, env["PATH"])
    real_prefix_existed = Path(CONTAINER_PREFIX).exists()
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            argv,
            cwd=sandbox.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        # StoppingCondition.MaxRuntimeInSeconds: SageMaker stops the job, so does the run.
        timer = threading.Timer(timeout, process.kill) if timeout else None
        if timer:
            timer.start()
        assert process.stdout is not None
        for line in process.stdout:
            log_file.write(line)
            if on_line:
                on_line(line.rstrip("\n"))
        exit_code = process.wait()
        timed_out = timer is not None and not timer.is_alive() and exit_code < 0
        if timer is not None:
            timer.cancel()
    if not real_prefix_existed and Path(CONTAINER_PREFIX).exists():
        raise ContainerError(
            f"the step created {CONTAINER_PREFIX} on this machine: a container path reached "
            "native code without being rewritten (pass every /opt/ml path as an argument or "
            "environment variable)"
        )
    recorded = []
    if calls.exists():
        recorded = [json.loads(line) for line in calls.read_text(encoding="utf-8").splitlines()]
    return Finished(exit_code, time.perf_counter() - started, log, recorded, timed_out)


def log_tail(log: Path, lines: int = 12) -> str:
    if not log.exists():
        return ""
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
