"""The SageMaker Python SDK versions the definitions are pinned to, and the check.

The rendered definition differs between SDK versions (sagemaker-train even ships the training
drivers that end up in it), so rendering refuses any other version.
"""

from __future__ import annotations

SUPPORTED_SDK_VERSION = "3.27.0"
SUPPORTED_SDK_PACKAGES = {
    "sagemaker": SUPPORTED_SDK_VERSION,
    "sagemaker-core": "2.27.0",
    "sagemaker-mlops": "1.27.0",
    "sagemaker-serve": "1.27.0",
    "sagemaker-train": "1.27.0",
}


def installed_sdk_version() -> str:
    """Version of the installed ``sagemaker`` distribution."""
    from importlib.metadata import version

    return version("sagemaker")


def check_sdk_version() -> None:
    """Refuse to render with SDK packages other than the pinned ones (output differs by version).

    ``sagemaker`` does not pin its parts exactly, and sagemaker-train ships the training drivers
    that end up in the definition's code, so every part is checked.
    """
    from importlib.metadata import PackageNotFoundError, version

    wrong = []
    for package, pinned in SUPPORTED_SDK_PACKAGES.items():
        try:
            installed = version(package)
        except PackageNotFoundError:
            installed = "not installed"
        if installed != pinned:
            wrong.append(f"{package} {installed} (pinned: {pinned})")
    if wrong:
        raise RuntimeError(
            "the definition is pinned to sagemaker "
            f"{SUPPORTED_SDK_VERSION}, but found {', '.join(wrong)}; install the pinned versions "
            "(requirements.lock) or update SUPPORTED_SDK_PACKAGES and the definition snapshot "
            "together"
        )
