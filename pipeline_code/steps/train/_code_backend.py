"""A stdlib-only PEP 517 build backend that packs a served model's `code/` folder as a wheel.

At start-up the SageMaker scikit-learn and XGBoost containers (script mode) run
sagemaker-containers' `_modules.import_module`: `prepare()` writes a setup.py when there is
none, and `install()` runs `python -m pip install .` in /opt/ml/code. pip 25.3 and later (the
scikit-learn 1.9-0 image has 26.1.2) always build in an isolated environment, so a setup.py alone
makes it download `setuptools>=40.8.0`, which an endpoint or transform job with network
isolation cannot: the container never answers /ping. Train writes,
beside this file, a `pyproject.toml` naming it as the in-tree backend with no build
requirements (`requires = []`, `backend-path = ["."]`), so pip installs nothing and builds
with this module alone; the generated setup.py is ignored. Copied into the archive by
`serving_files.write_serving_files`.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path
from typing import Any

NAME = "mlops_loop_serving_code"
VERSION = "1.0.0"
#: The build files themselves (and sagemaker-containers' generated ones) are not installed.
_NOT_INSTALLED = {"_code_backend.py", "pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in"}


def get_requires_for_build_wheel(config_settings: Any = None) -> list[str]:
    """Nothing to install into the build environment."""
    return []


def build_wheel(
    wheel_directory: str, config_settings: Any = None, metadata_directory: Any = None
) -> str:
    """Write `<name>-<version>-py3-none-any.whl` with every file of this folder (the serving
    modules, at the top level as sagemaker-containers' setup.py would install them); return
    its file name."""
    root = Path(__file__).resolve().parent
    info = f"{NAME}-{VERSION}.dist-info"
    files = {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.relative_to(root).as_posix() not in _NOT_INSTALLED
    }
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n".encode()
    )
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: _code_backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}\n")
    record.append(f"{info}/RECORD,,\n")
    files[f"{info}/RECORD"] = "".join(record).encode()
    wheel = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel
