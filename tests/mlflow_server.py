"""A real MLflow tracking server for the tracking tests: `mlflow server` on loopback, with a
sqlite backend and proxied artifacts in a temporary folder, started once per session (about
20 s: the sqlite schema's migrations) and stopped at its end. Not a mock: the run logger talks
to it over MLflow's REST API, and the tests read the runs back with mlflow's own client.

Modules that use it import `mlflow_server` and mark themselves
`pytest.mark.xdist_group("mlflow")`, so one worker starts one server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

STARTUP_SECONDS = 120


@dataclass(frozen=True)
class LocalMlflow:
    url: str
    artifacts: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMlflow]:
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow = Path(sys.executable).parent / "mlflow"
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folder,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                text = (folder / "server.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"mlflow server did not start: {text}")
            time.sleep(0.5)
        yield LocalMlflow(url=url, artifacts=folder / "artifacts")
    finally:
        # the server's own process group (uvicorn's workers): ours alone
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
