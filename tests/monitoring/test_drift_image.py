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
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline_code.monitoring import drift_check
from pipeline_code.monitoring.entrypoint import JOB_GID, JOB_UID

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
    assert (pins["evidently"], pins["pandas"], pins["boto3"]) == ("0.7.23", "2.2.3", "1.44.5")
    assert {name: version(name) for name in pins} == pins


def test_base_image_is_pinned_by_digest() -> None:
    (base,) = _instruction_args("FROM")

    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base), base


def test_the_job_user_is_the_unprivileged_user_the_image_creates() -> None:
    setup = " ".join(_instruction_args("RUN"))
    (entrypoint,) = _instruction_args("ENTRYPOINT")

    assert json.loads(entrypoint) == ["python", "-m", "pipeline_code.monitoring.entrypoint"]
    assert JOB_UID != 0 and JOB_GID != 0
    assert f"--uid {JOB_UID}" in setup and "--user-group" in setup
    # The container starts as root (SageMaker's output mounts are root's); entrypoint.py drops it.
    assert _instruction_args("USER") == []


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


def _readable_by_everyone(path: Path) -> bool:
    """Whether a user with no special rights can reach `path` (every parent searchable)."""
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in [path, *path.parents])


def _interpreter_for_the_job_user() -> str:
    """A Python whose standard library the job's user can still read after the drop (the
    image's /usr/local Python is; a Python installed under /root is not)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        if not Path(candidate).exists():
            continue
        stdlib = subprocess.run(
            [candidate, "-S", "-c", "import os; print(os.path.dirname(os.__file__))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if _readable_by_everyone(Path(stdlib)):
            return candidate
    pytest.skip("no Python here whose standard library an unprivileged user can read")


@pytest.fixture()
def shared_tmp() -> Iterator[Path]:
    """A folder every user can read (pytest's own tmp_path is private to its user), so that the
    job can still read the image's files after it dropped to its unprivileged user."""
    folder = Path(tempfile.mkdtemp(prefix="drift-image-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_entrypoint_drops_root_and_runs_the_job_from_the_image_layout(shared_tmp: Path) -> None:
    image = build_image(shared_tmp / "image")
    for path in [image.root, *image.root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    python, module_flag, module = image.entrypoint
    assert (python, module_flag) == ("python", "-m")
    # Stands for SageMaker's exit-message mount: created by root, writable by root only.
    mount = shared_tmp / "opt-ml-output"
    mount.mkdir(mode=0o755)
    message_file = mount / "message"
    window = ["--window-start", "2025-01-02T00:00:00Z", "--window-end", "2025-01-01T00:00:00Z"]
    arguments = ["--no-publish", "--exit-message-file", str(message_file), *window]
    # -S: no site-packages, so nothing but the image's copies can provide pipeline_code; the
    # folders the entrypoint hands over are this test's stand-in for /opt/ml/output.
    program = (
        f"import sys; sys.argv = ['entrypoint', *{arguments!r}]; "
        f"from {module} import main; main(folders=[{str(mount)!r}])"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(image.root / image.env["PYTHONPATH"].lstrip("/")),
    }

    python_binary = _interpreter_for_the_job_user() if os.geteuid() == 0 else sys.executable

    finished = subprocess.run(
        [python_binary, "-S", "-c", program],
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
    if os.geteuid() == 0:  # started as root, as on SageMaker: the job wrote as its own user
        assert (message_file.stat().st_uid, message_file.stat().st_gid) == (JOB_UID, JOB_GID)
        assert mount.stat().st_uid == JOB_UID
