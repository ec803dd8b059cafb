"""The hosts of a local training job with InstanceCount N: N containers at once on this
machine, named as SageMaker names them (`algo-1` ... `algo-N`), each with its own sandbox,
its own `resourceconfig.json` (`current_host`, `hosts`), and the channels distributed as
SageMaker distributes them:

    FullyReplicated   every host gets every object under the prefix
    ShardedByS3Key    the objects, sorted by key, are dealt out in turn: host i (0-based) gets
                      objects i, i+N, i+2N, ... (about 1/N of the objects; none if there are
                      fewer objects than hosts)

The hosts talk over loopback: the sandbox's name service (`container_site`) answers 127.0.0.1
for every `algo-N`, and the job's environment gets XGBOOST_TRACKER_PORT, a port free on this
machine (on SageMaker each host has its own address, and the tracker's port 9099 is free).
"""

from __future__ import annotations

import socket
from typing import Any

LOOPBACK = "127.0.0.1"
TRACKER_PORT_ENV = "XGBOOST_TRACKER_PORT"
GROUP = "homogeneousCluster"


def host_names(count: int) -> list[str]:
    return [f"algo-{number}" for number in range(1, count + 1)]


def resource_config(current: str, hosts: list[str], instance_type: str) -> dict[str, Any]:
    """`/opt/ml/input/config/resourceconfig.json` as SageMaker writes it on host `current`."""
    return {
        "current_host": current,
        "current_instance_type": instance_type,
        "current_group_name": GROUP,
        "hosts": hosts,
        "instance_groups": [
            {"instance_group_name": GROUP, "instance_type": instance_type, "hosts": hosts}
        ],
        "network_interface_name": "eth0",
    }


def objects_for_host(
    objects: list[tuple[str, Any]], distribution: str, rank: int, count: int
) -> list[tuple[str, Any]]:
    """The channel's objects (sorted by key) that host `rank` of `count` receives."""
    if distribution == "ShardedByS3Key":
        return objects[rank::count]
    return objects


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])
