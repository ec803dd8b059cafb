"""The drift image's entrypoint: hand the job's output folders to its user, drop root, run the job.

SageMaker mounts a processing job's output folder when the container starts, owned by root, so
an image whose `USER` is unprivileged cannot write its report there (seen in cloud mode:
sagemaker-python-sdk#4764). The image therefore starts as root only for this: the folders the
job writes (its report folder and the exit-message folder) are given to the job's user, the
process drops to that user and group with no supplementary groups, and only then is the drift
check imported and run. No data is read and no library beyond the standard one is imported as
root. Started by any other user (a test, a local run), it runs the job unchanged.
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Iterable

JOB_MODULE = "pipeline_code.monitoring.drift_check"
JOB_UID = 10001  # the Dockerfile's `useradd --uid`
JOB_GID = 10001
JOB_HOME = "/home/drift"
# The job's ProcessingOutput (lambdas/start_drift_job) and SageMaker's exit-message folder.
WRITABLE_FOLDERS = ("/opt/ml/processing/output", "/opt/ml/output")


def hand_over(folders: Iterable[str], uid: int, gid: int) -> None:
    """Give every existing folder in `folders`, and what is already in it, to `uid`:`gid`."""
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        for root, _dirs, files in os.walk(folder):
            os.chown(root, uid, gid)
            for name in files:
                os.chown(os.path.join(root, name), uid, gid)


def drop_privileges(uid: int, gid: int, home: str) -> None:
    """Become `uid`:`gid` for good (real, effective and saved ids), with no other groups."""
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if 0 in (os.getuid(), os.geteuid(), os.getgid(), os.getegid()):
        raise SystemExit("drift image: could not drop root privileges; refusing to run the job")
    os.environ["HOME"] = home


def main(folders: Iterable[str] = WRITABLE_FOLDERS) -> None:
    if os.geteuid() == 0:
        hand_over(folders, JOB_UID, JOB_GID)
        drop_privileges(JOB_UID, JOB_GID, JOB_HOME)
    sys.argv[0] = JOB_MODULE
    runpy.run_module(JOB_MODULE, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
