"""A simulated Ray cluster on this machine for the scale benchmark: a head without CPUs for the
driver and worker nodes of one CPU each, some of them announcing a (fake) GPU.

Each node gets a cache folder of its own (`FACEFUSION_RAY_CACHE` in its raylet's environment,
which its workers inherit), as separate machines would: a file one node staged is not there for
the others. The model files are shared (linked), since loading models is not what is measured.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facefusion_ray.paths import CACHE_ENV, cache_root

# Folders of the user cache a node shares with the others: models and the assets they are
# prepared from. Staged inputs, fingerprints, segments and analysis stay per node.
SHARED_CACHE_FOLDERS = ("assets", "wheels", "store", "node-cache")
# Lost nodes are noticed within ~1.5 s instead of Ray's default ~15 s.
HEALTH_CHECK = {"health_check_period_ms": 500, "health_check_failure_threshold": 3}


@dataclass(frozen=True)
class ClusterShape:
    nodes: int = 8
    gpu_nodes: int = 2
    cpus_per_node: int = 1

    def describe(self) -> str:
        return (
            f"head (0 CPUs) + {self.nodes} nodes of {self.cpus_per_node} CPU "
            f"({self.gpu_nodes} of them with 1 fake GPU)"
        )


@dataclass
class SimulatedCluster:
    cluster: Any  # ray.cluster_utils.Cluster
    workers: list[Any]  # its worker nodes (ray._private.node.Node)

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def remove_worker(self, number: int) -> str:
        """Stops worker node `number` as a crash would; returns its node id."""
        node = self.workers[number]
        self.cluster.remove_node(node, allow_graceful=False)
        return str(node.node_id)


def node_cache(folder: Path, name: str) -> Path:
    """A fresh cache root for one node (or the driver) sharing the model folders."""
    root = folder / name
    root.mkdir(parents=True)
    shared = cache_root()
    for sub in SHARED_CACHE_FOLDERS:
        (shared / sub).mkdir(parents=True, exist_ok=True)
        (root / sub).symlink_to(shared / sub, target_is_directory=True)
    return root


@contextmanager
def simulated_cluster(shape: ClusterShape, folder: Path) -> Iterator[SimulatedCluster]:
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": False,
            "_system_config": HEALTH_CHECK,
            "env_vars": {CACHE_ENV: str(node_cache(folder, "head"))},
        },
    )
    try:
        workers = [
            cluster.add_node(
                num_cpus=shape.cpus_per_node,
                num_gpus=1 if number < shape.gpu_nodes else 0,
                env_vars={CACHE_ENV: str(node_cache(folder, f"node-{number}"))},
            )
            for number in range(shape.nodes)
        ]
        yield SimulatedCluster(cluster, workers)
    finally:
        cluster.shutdown()
