"""Distributed XGBoost training across the instances of one SageMaker training job.

Who the hosts are comes from the SageMaker environment, as the training toolkit and the SDK's
container drivers give it to a script: `SM_HOSTS` (a JSON list of host names) and
`SM_CURRENT_HOST`, or else `/opt/ml/input/config/resourceconfig.json` (`hosts`,
`current_host`), which SageMaker writes into every training container. Without either the job
runs on one host.

With more than one host this follows the SageMaker XGBoost container's distributed mode
(sagemaker_xgboost_container/distributed.py): the hosts are sorted, the first one (`algo-1`) is
the master and runs XGBoost's `RabitTracker` on port 9099, every host (the master too) joins
the collective as a worker whose task id, and so rank, is its place in the sorted list. Each
host trains on its own shard of the train channel (ShardedByS3Key); XGBoost's hist algorithm
merges the quantile sketches and gradient histograms across the workers every round, so all
hosts grow the same trees and hold the same model.

The train channel must be ShardedByS3Key (checked in inputdataconfig.json); a host that got no
shard joins with no rows. A host that fails signals the error to the tracker so the others stop
at their next exchange, and shutting the collective down after a failure never replaces the
failure's reason. Joining is bounded (`JOIN_SECONDS`), and so is every exchange
(`dmlc_timeout`), so a blocked network fails the job within minutes.

Only the master writes the model and the checkpoints; a restarted job (managed spot) resumes
every host from the checkpoint the master loads and broadcasts, so the hosts agree on where
they start even if their checkpoint folders differ.

`XGBOOST_TRACKER_PORT` overrides the tracker's port (the local runner gives each run a free
port, as its hosts share one machine's loopback).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from xgboost import collective
from xgboost.tracker import RabitTracker

from channels import TrainingError
from common.failure import xgboost_message

LOG = logging.getLogger("train")

RESOURCE_CONFIG = "/opt/ml/input/config/resourceconfig.json"
#: The SageMaker XGBoost container's tracker port.
DEFAULT_TRACKER_PORT = 9099
TRACKER_PORT_ENV = "XGBOOST_TRACKER_PORT"
#: How long to wait for a host name to resolve (the container's DNS retry: 15 minutes).
RESOLVE_SECONDS = 900.0
#: How long the tracker waits for every worker to join (it starts before the others resolve).
BOOTSTRAP_SECONDS = 1800
#: XGBoost's `dmlc_timeout`, set explicitly (its default is far longer): how long a worker waits
#: in one exchange, and for the whole group to form once it has joined (measured with xgboost
#: 3.0.5: the first worker's init fails after it when the others do not come). The group forms
#: before any data is read; every exchange during training follows work all hosts do alike.
COLLECTIVE_TIMEOUT_SECONDS = 300
#: How long a worker keeps retrying to join the tracker (each `collective.init` retries the
#: connection itself: about 6 s when the port is closed, more when packets are dropped).
JOIN_SECONDS = 600.0
CONNECT_PAUSE_SECONDS = 1.0
#: The folder of inputdataconfig.json (the SDK's container drivers export it).
INPUT_CONFIG_DIR_ENV = "SM_INPUT_CONFIG_DIR"
INPUT_CONFIG_DIR = "/opt/ml/input/config"
#: With several hosts the train channel must be sharded, or every host trains on all the rows.
SHARDED = "ShardedByS3Key"
SECURITY_GROUP_RULE = (
    "the training job's security groups must allow all traffic to and from the group itself "
    "(README, Training across instances)"
)
SINGLE_HOST = "algo-1"


@dataclass(frozen=True)
class Cluster:
    """The training job's hosts (sorted) and which one this process runs on."""

    hosts: tuple[str, ...]
    current_host: str

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def master(self) -> str:
        return self.hosts[0]

    @property
    def is_master(self) -> bool:
        return self.current_host == self.master


def cluster_from_environment(
    environ: Mapping[str, str], resource_config: Path = Path(RESOURCE_CONFIG)
) -> Cluster:
    """The hosts from SM_HOSTS/SM_CURRENT_HOST, else resourceconfig.json, else one host."""
    raw_hosts, current = environ.get("SM_HOSTS"), environ.get("SM_CURRENT_HOST")
    if raw_hosts is not None or current is not None:
        if raw_hosts is None or current is None:
            missing = "SM_HOSTS" if raw_hosts is None else "SM_CURRENT_HOST"
            raise TrainingError(f"{missing} is not set, but the other host variable is")
        try:
            hosts = json.loads(raw_hosts)
        except json.JSONDecodeError:
            raise TrainingError(f"SM_HOSTS = {raw_hosts!r} is not a JSON list of hosts") from None
        return _cluster(hosts, current, "SM_HOSTS", "SM_CURRENT_HOST")
    if resource_config.is_file():
        try:
            config = json.loads(resource_config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise TrainingError(f"{resource_config} is not readable JSON: {error}") from None
        if not isinstance(config, dict):
            raise TrainingError(f"{resource_config} is not a JSON object")
        return _cluster(
            config.get("hosts"),
            config.get("current_host"),
            f"{resource_config.name} hosts",
            f"{resource_config.name} current_host",
        )
    return Cluster((SINGLE_HOST,), SINGLE_HOST)


def _cluster(hosts: Any, current: Any, hosts_key: str, current_key: str) -> Cluster:
    if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and h for h in hosts):
        raise TrainingError(f"{hosts_key} = {hosts!r}: expected a non-empty list of host names")
    if len(set(hosts)) != len(hosts):
        raise TrainingError(f"{hosts_key} = {hosts!r} names a host twice")
    if not isinstance(current, str) or current not in hosts:
        raise TrainingError(f"{current_key} = {current!r} is not one of {hosts_key} {hosts}")
    return Cluster(tuple(sorted(hosts)), current)


def tracker_port(environ: Mapping[str, str]) -> int:
    raw = environ.get(TRACKER_PORT_ENV)
    if raw is None:
        return DEFAULT_TRACKER_PORT
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise TrainingError(f"{TRACKER_PORT_ENV} = {raw!r}: expected a port from 1 to 65535")
    return port


def resolve(
    host: str,
    seconds: float = RESOLVE_SECONDS,
    lookup: Callable[[str], str] = socket.gethostbyname,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The host's address; SageMaker's DNS for `algo-N` may come up after the container."""
    deadline = time.monotonic() + seconds
    pause = 0.1
    while True:
        try:
            return lookup(host)
        except OSError as error:
            if time.monotonic() >= deadline:
                raise TrainingError(
                    f"host {host!r} does not resolve after {seconds:.0f} s: {error}"
                ) from None
        sleep(pause)
        pause = min(pause * 2, 30.0)


def worker_args(cluster: Cluster, address: str, port: int) -> dict[str, str | int]:
    """`collective.init` arguments: the tracker, and the rank as the task id (the tracker
    sorts by task), so rank 0 is the master."""
    return {
        "dmlc_tracker_uri": address,
        "dmlc_tracker_port": port,
        "dmlc_task_id": str(cluster.rank),
        "dmlc_timeout": COLLECTIVE_TIMEOUT_SECONDS,
    }


@contextmanager
def communicator(cluster: Cluster, environ: Mapping[str, str]) -> Iterator[None]:
    """Within the block every host is a worker of one XGBoost collective (nothing on one
    host); the master runs the tracker and waits for it to shut down on the way out."""
    if cluster.size == 1:
        yield
        return
    check_sharded(cluster, environ)
    address = resolve(cluster.master)
    port = tracker_port(environ)
    tracker = None
    if cluster.is_master:
        tracker = RabitTracker(
            n_workers=cluster.size,
            host_ip=address,
            port=port,
            sortby="task",
            timeout=BOOTSTRAP_SECONDS,
        )
        tracker.start()
    LOG.info(
        "host %s is worker %d of %d; tracker %s:%d on %s",
        cluster.current_host,
        cluster.rank,
        cluster.size,
        address,
        port,
        cluster.master,
    )
    failed = True
    try:
        _join(worker_args(cluster, address, port))
        try:
            yield
            failed = False
        except xgb.core.XGBoostError as error:
            # A host that fails leaves the collective; the others then fail in their next
            # exchange, often with an empty message: say where, and what likely happened.
            detail = xgboost_message(error) or "no message from XGBoost"
            raise TrainingError(
                f"host {cluster.current_host} ({cluster.rank + 1} of {cluster.size}): the hosts "
                f"stopped exchanging ({detail}); if another host failed first, its failure "
                "reason is the cause"
            ) from None
        finally:
            if failed:
                # Tell the tracker, which tells the other hosts, so they stop at their next
                # exchange instead of waiting for this one.
                _quietly("signal the error to the other hosts", collective.signal_error)
                _quietly("leave the collective", collective.finalize)
            else:
                collective.finalize()
        if tracker is not None:
            # The model is written: a tracker slow to shut down must not fail the job.
            _quietly("wait for the tracker to shut down", lambda: tracker.wait_for(timeout=60))
    finally:
        if tracker is not None:
            if failed:
                # The tracker, stopped early, fails to shut down cleanly ("Failed to accept
                # connection"): that must not replace the reason the job failed.
                _quietly("stop the tracker", tracker.free)
            else:
                tracker.free()


def _quietly(what: str, action: Callable[[], object]) -> None:
    try:
        action()
    except xgb.core.XGBoostError as error:
        LOG.warning("could not %s: %s", what, xgboost_message(error))


def _join(
    args: dict[str, str | int],
    seconds: float = JOIN_SECONDS,
    init: Callable[..., None] = collective.init,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    # A worker may start before the master's tracker listens: retry the whole init (probing
    # the port with a raw connection would break the tracker's protocol).
    deadline = time.monotonic() + seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            init(**args)
            return
        except xgb.core.XGBoostError as error:
            if time.monotonic() >= deadline:
                raise TrainingError(
                    f"cannot join the tracker at {args['dmlc_tracker_uri']}:"
                    f"{args['dmlc_tracker_port']} after {attempt} attempts in {seconds:.0f} s "
                    f"({xgboost_message(error)}); {SECURITY_GROUP_RULE}"
                ) from None
        sleep(CONNECT_PAUSE_SECONDS)


def check_sharded(cluster: Cluster, environ: Mapping[str, str]) -> None:
    """With several hosts, refuse a train channel that is not ShardedByS3Key (read from
    inputdataconfig.json, as the SageMaker XGBoost container does): a replicated channel would
    have every host train on all the rows."""
    if cluster.size == 1:
        return
    config = Path(environ.get(INPUT_CONFIG_DIR_ENV, INPUT_CONFIG_DIR)) / "inputdataconfig.json"
    try:
        channels = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TrainingError(f"{config} is not readable JSON: {error}") from None
    train = channels.get("train") if isinstance(channels, dict) else None
    distribution = train.get("S3DistributionType") if isinstance(train, dict) else None
    if distribution != SHARDED:
        raise TrainingError(
            f"{config.name} train S3DistributionType = {distribution!r}: training on "
            f"{cluster.size} instances needs the train channel {SHARDED}"
        )


def global_sum(values: np.ndarray) -> np.ndarray:
    """Element-wise sum over every host's `values` (the values themselves on one host)."""
    if not collective.is_distributed():
        return values.copy()
    return collective.allreduce(np.ascontiguousarray(values), collective.Op.SUM)


def from_master(value: Any) -> Any:
    """The master's `value` on every host (picklable; the master's must not be None)."""
    if not collective.is_distributed():
        return value
    return collective.broadcast(value, 0)


def resume_point(cluster: Cluster, load: Callable[[], xgb.Booster | None]) -> xgb.Booster | None:
    """The checkpoint every host resumes from: the one the master loads, broadcast."""
    booster = load() if cluster.is_master else None
    if cluster.size == 1:
        return booster
    raw = from_master(bytes(booster.save_raw(raw_format="ubj")) if booster is not None else b"")
    if not raw:
        return None
    shared = xgb.Booster()
    shared.load_model(bytearray(raw))
    return shared


def training_device(environ: Mapping[str, str]) -> str:
    """`cuda` on an instance with GPUs (the training toolkit's `SM_NUM_GPUS`), else `cpu`: a
    GPU instance type, configured or passed as the run's TrainingInstanceType, trains on its
    GPUs with the same hist algorithm; a laptop or CPU instance never asks for one."""
    raw = environ.get("SM_NUM_GPUS", "0")
    try:
        gpus = int(raw)
    except ValueError:
        raise TrainingError(f"SM_NUM_GPUS = {raw!r} is not a number of GPUs") from None
    return "cuda" if gpus > 0 else "cpu"
