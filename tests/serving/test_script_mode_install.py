"""The container's start-up install of the archive's code/, offline, as a network-isolated
endpoint or transform job runs it.

In script mode the SageMaker scikit-learn and XGBoost containers start by calling
sagemaker-containers' `_modules.import_module(/opt/ml/model/code, "inference")`
(`_server.start`, sagemaker-containers 2.8.6.post2, the version the scikit-learn 1.9-0 image
locks in aws/deep-learning-containers docker/sklearn/1.9-0/uv.lock): it copies the folder to
/opt/ml/code, `prepare()` writes a setup.py, setup.cfg and MANIFEST.in when there is no
setup.py, and `install()` runs `python -m pip install .` there. If that fails the container
never answers /ping. pip builds in an isolated environment (always from pip 25.3; the 1.9-0
image locks pip 26.1.2), so with only the generated setup.py it must download setuptools,
which it cannot. The archive's pyproject.toml and _code_backend.py make the build need nothing.

Here: the real Prepare and Train on the penguins (category features, so script mode), the
archive unpacked, `prepare()`'s files written exactly as its source does, then
`pip install . --no-index` into a fresh `python -m venv` (pip and setuptools as ensurepip
installs them, no wheel: the build is isolated), and the installed `inference` module, not
the folder, loaded in that venv and asked for predictions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pipeline_code import penguin_data
from tests.serving.test_category_serving import SCHEMA, _prepare_train_serve

# sagemaker-containers v2.8.6.post2 (commit 150ff4674b268a4c6f9518aefa767892c50e1e94),
# src/sagemaker_containers/_modules.py `prepare(path, name)`: the files it writes when the
# folder has no setup.py, text as in its source (textwrap.dedent of each literal).
_PREPARE_SETUP_PY = """
from setuptools import setup
setup(packages=[''],
      name="%s",
      version='1.0.0',
      include_package_data=True)
"""
_PREPARE_SETUP_CFG = """
[wheel]
universal = 1
"""
_PREPARE_MANIFEST = """
recursive-include . *
recursive-exclude . __pycache__*
recursive-exclude . *.pyc
recursive-exclude . *.pyo
"""

_SERVE = """
import json, sys
import inference
model = inference.model_fn(sys.argv[1])
body, kind = inference.transform_fn(model, sys.argv[2], "text/csv", "text/csv")
print(json.dumps({"file": inference.__file__, "kind": kind, "body": body}))
"""


def sagemaker_containers_prepare(path: Path, name: str) -> None:
    """`_modules.prepare` (see above): the generated files, only when there is no setup.py."""
    if not (path / "setup.py").exists():
        (path / "setup.py").write_text(textwrap.dedent(_PREPARE_SETUP_PY % name))
        (path / "setup.cfg").write_text(textwrap.dedent(_PREPARE_SETUP_CFG))
        (path / "MANIFEST.in").write_text(textwrap.dedent(_PREPARE_MANIFEST))


def _fresh_venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, capture_output=True)
    return where / "bin" / "python"


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env.update(
        PIP_NO_INDEX="1",
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_CACHE_DIR="1",
    )
    return env


def _start_up_install(code: Path, python: Path) -> subprocess.CompletedProcess[str]:
    """`_modules.import_module`'s prepare() and install() on a copy of the archive's code/."""
    sagemaker_containers_prepare(code, "inference")
    return subprocess.run(
        [str(python), "-m", "pip", "install", ".", "--no-index"],
        cwd=code,
        env=_offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("script-mode-install")
    (root / "in").mkdir()
    penguin_data.generate(400, seed=5).to_csv(root / "in" / "penguins.csv", index=False)
    return _prepare_train_serve(root, SCHEMA)


def test_the_archive_code_installs_offline_and_serves(
    served: dict[str, Any], tmp_path: Path
) -> None:
    code = tmp_path / "opt" / "ml" / "code"
    shutil.copytree(served["model_dir"] / "code", code)
    python = _fresh_venv(tmp_path / "venv")
    installed = _start_up_install(code, python)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The handlers' own dependencies (numpy, xgboost, flask) are the image's: here, this
    # interpreter's site-packages, after the venv's own (a .pth line appends a path).
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    (site / "zz_image_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    row = "Adelie,Torgersen,39.1,18.7,181,3750\nGentoo,Biscoe,47.5,14.2,220,5200\n"
    answer = subprocess.run(
        [str(python), "-c", _SERVE, str(served["model_dir"]), row],
        cwd=tmp_path,  # not code/: the module comes from what pip installed
        env=_offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout)
    assert Path(result["file"]).parent == site
    assert result["kind"] == "text/csv"
    # The same answer as the archive's module loaded in this process (the other serving tests).
    expected = served["inference"].transform_fn(served["model"], row, "text/csv", "text/csv")
    assert result["body"] == expected[0]
    assert len(result["body"].splitlines()) == 2


def test_without_the_build_files_the_offline_install_fails(
    served: dict[str, Any], tmp_path: Path
) -> None:
    """The world's behaviour this guards against: only prepare()'s setup.py, and pip cannot
    fetch setuptools for its isolated build (the reviewer's reproduction)."""
    code = tmp_path / "code"
    shutil.copytree(served["model_dir"] / "code", code)
    (code / "pyproject.toml").unlink()
    (code / "_code_backend.py").unlink()
    installed = _start_up_install(code, _fresh_venv(tmp_path / "venv"))
    assert installed.returncode != 0
    assert "setuptools" in installed.stdout + installed.stderr
