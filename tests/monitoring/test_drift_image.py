"""The drift image, without Docker: a base pinned by digest, hashed pins that match the tests'
versions, an unprivileged user, and the files its Dockerfile copies, laid out as in the image,
running the job through its ENTRYPOINT."""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline_code.monitoring import drift_check

FOLDER = Path(drift_check.__file__).parent
# DriftMonitor's DockerImageAsset leaves these out of the build context on top of .dockerignore.
ASSET_EXCLUDES = ("__init__.py",)


@dataclass(frozen=True)
class Image:
    root: Path  # stands for the image's /
    entrypoint: list[str]
    env: dict[str, str]
    workdir: Path
    copied: dict[str, Path]  # source file name -> where the image has it


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    joined = dockerfile.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _in_context(name: str) -> bool:
    """Whether .dockerignore (the last matching pattern decides) and the asset keep `name`."""
    kept = True
    for pattern in (FOLDER / ".dockerignore").read_text().splitlines():
        pattern = pattern.strip()
        if pattern and not pattern.startswith("#"):
            negated = pattern.startswith("!")
            if fnmatch.fnmatch(name, pattern.lstrip("!")):
                kept = negated
    return kept and name not in ASSET_EXCLUDES


def build_image(root: Path) -> Image:
    """Lay out the build context's files under `root` as the Dockerfile's COPY steps would."""
    context = [path.name for path in FOLDER.iterdir() if path.is_file() and _in_context(path.name)]
    workdir, env, entrypoint = Path("/"), dict[str, str](), list[str]()
    copied: dict[str, Path] = {}
    for instruction, argument in _instructions((FOLDER / "Dockerfile").read_text()):
        if instruction == "WORKDIR":
            workdir = workdir / argument
        elif instruction == "ENV":
            env.update(part.partition("=")[::2] for part in shlex.split(argument))
        elif instruction == "ENTRYPOINT":
            entrypoint = json.loads(argument)
        elif instruction == "COPY":
            *sources, target = argument.split()
            destination = root / (workdir / target).relative_to("/")
            destination.mkdir(parents=True, exist_ok=True)
            for name in context:
                if any(fnmatch.fnmatch(name, source) for source in sources):
                    shutil.copy(FOLDER / name, destination / name)
                    copied[name] = destination / name
    return Image(root, entrypoint, env, root / workdir.relative_to("/"), copied)


REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[a-z0-9,_-]+\])?==(?P<version>[^\s;]+)"
    r"(?P<hashes>(\s+--hash=sha256:[0-9a-f]{64})+)$"
)


def _requirements() -> list[str]:
    """requirements.txt's requirements, one per entry (continuation lines joined)."""
    text = (FOLDER / "requirements.txt").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def _instruction_args(name: str) -> list[str]:
    return [arg for kind, arg in _instructions((FOLDER / "Dockerfile").read_text()) if kind == name]


def test_every_requirement_is_pinned_with_a_hash() -> None:
    entries = _requirements()

    unhashed = [entry[:80] for entry in entries if not REQUIREMENT.match(entry)]

    assert len(entries) > 50  # the transitive set, not just the top level
    assert unhashed == [], "every line must be NAME==VERSION with --hash=sha256:..."
    (install,) = [run for run in _instruction_args("RUN") if "requirements.txt" in run]
    assert "--require-hashes" in install.split() and "--only-binary=:all:" in install.split()


def test_image_pins_the_versions_the_tests_run_with() -> None:
    from importlib.metadata import version

    pins = {
        match["name"]: match["version"]
        for match in (REQUIREMENT.match(entry) for entry in _requirements())
        if match
    }
    assert (pins["evidently"], pins["pandas"], pins["boto3"]) == ("0.7.23", "3.1.1", "1.44.5")
    assert {name: version(name) for name in pins} == pins


def test_base_image_is_pinned_by_digest() -> None:
    (base,) = _instruction_args("FROM")

    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base), base


def test_the_job_runs_as_an_unprivileged_user_that_owns_its_output_folders() -> None:
    users = _instruction_args("USER")
    setup = " ".join(_instruction_args("RUN"))
    uid, _, gid = users[-1].partition(":")

    assert users and uid not in ("0", "root") and gid not in ("0", "root")
    assert f"--uid {uid}" in setup
    assert "chown -R drift:drift /opt/ml" in setup
    for folder in ("/opt/ml/processing/output", "/opt/ml/output"):
        assert folder in setup, folder


def test_image_holds_every_module_of_the_job(tmp_path: Path) -> None:
    image = build_image(tmp_path)
    modules = {path.name for path in FOLDER.glob("*.py")} - set(ASSET_EXCLUDES)

    assert modules <= set(image.copied), "the Dockerfile or .dockerignore leaves out a module"
    search_path = image.root / image.env["PYTHONPATH"].lstrip("/")
    for name, path in image.copied.items():
        if name.endswith(".py"):
            tree = ast.parse(path.read_text())
            imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
            imported |= {
                alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.Import)
                for alias in node.names
            }
            for module in sorted(m for m in imported if m and m.startswith("pipeline_code")):
                where = search_path / (module.replace(".", "/") + ".py")
                assert where.is_file(), f"{name} imports {module}, which the image lacks"


def test_entrypoint_runs_the_job_from_the_image_layout(tmp_path: Path) -> None:
    image = build_image(tmp_path / "image")
    message_file = tmp_path / "message"
    python, *entry = image.entrypoint
    assert python == "python"
    # -S: no site-packages, so nothing but the image's copies can provide pipeline_code.
    command = [sys.executable, "-S"]
    command += [str(image.root / part[1:]) if part.startswith("/") else part for part in entry]
    arguments = ["--no-publish", "--exit-message-file"]
    window = ["--window-start", "2025-01-02T00:00:00Z", "--window-end", "2025-01-01T00:00:00Z"]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(image.root / image.env["PYTHONPATH"].lstrip("/")),
    }

    finished = subprocess.run(
        [*command, *arguments, str(message_file), *window],
        cwd=image.workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # The job ran its own validation: an empty window is its documented failure.
    assert finished.returncode == 1, finished.stderr
    assert "drift check failed: empty window" in finished.stderr
    assert message_file.read_text().startswith("drift check failed: empty window")
