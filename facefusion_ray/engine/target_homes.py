"""Where a job's small remote videos live: the node that stages one whole also probes it for the
driver and becomes its home, so its bytes leave the object store once (see `ChunkQueue`).

Without this the driver downloaded (or read by range) every such video to probe it, and the
home node downloaded it again: a catalog was read twice. The driver asks a node through a Ray
task that needs no CPU, so it runs beside busy actors. The homes are spread over the nodes of the
job's actors once they are known, and before that over the nodes that could hold one.
"""

from __future__ import annotations

import logging
import posixpath
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from facefusion_ray.engine.job_options import JobOptions
from facefusion_ray.engine.ray_runtime import RayConnection, connect_ray
from facefusion_ray.engine.warm_actors import reserved
from facefusion_ray.errors import FaceFusionRayError
from facefusion_ray.inference.execution import actor_resources
from facefusion_ray.media import MediaInfo
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.pipeline.target_input import NodeProbeAnswer, TargetInput, probe_staged_copy
from facefusion_ray.settings import IMAGE_SUFFIXES
from facefusion_ray.storage.locations import is_remote

logger = logging.getLogger(__name__)


def _probe_on_this_node(
    target: TargetInput, storage_options: dict[str, str], max_pixels: int | None
) -> tuple[MediaInfo, str]:
    info = probe_staged_copy(target, storage_options, max_pixels)
    return info, ray.get_runtime_context().get_node_id()


_remote_probe = ray.remote(num_cpus=0, max_retries=0)(_probe_on_this_node)


class TargetHomes:
    """Gives each staged target a home node and its probe, once per job. The driver's
    preparation thread starts probes ahead (`start`) and takes their answers (`answer`); its
    scheduling loop tells where the actors are (`use_actor_nodes`)."""

    def __init__(self, storage_options: Mapping[str, str], worker_resources: Mapping[str, float]):
        """`worker_resources`: what one actor reserves, in Ray's resource names (a node that
        cannot hold one is no home)."""
        self._storage_options = dict(storage_options)
        self._worker_resources = dict(worker_resources)
        self._lock = threading.Lock()
        self._actor_nodes: Counter[str] = Counter()
        self._homes: Counter[str] = Counter()
        self._pending: dict[str, ray.ObjectRef] = {}
        # By staged identity: the answer, or the project error the probe raised.
        self._answers: dict[str, NodeProbeAnswer | BaseException] = {}

    def use_actor_nodes(self, nodes: list[str]) -> None:
        """The nodes of the job's ready actors, one entry an actor."""
        with self._lock:
            self._actor_nodes = Counter(nodes)

    @property
    def pending(self) -> int:
        """Probes started and not answered yet."""
        return len(self._pending)

    def start(self, target: TargetInput, max_pixels: int | None) -> None:
        """Ask the target's home node to stage and probe it, unless that is asked already;
        without a node to ask, the driver will probe it itself."""
        identity = target.staged_identity
        assert identity is not None
        if identity in self._answers or identity in self._pending:
            return
        with self._lock:
            capacity = dict(self._actor_nodes)
        node = next_home(capacity or self._node_capacity(), self._homes)
        if node is None:
            return
        self._homes[node] += 1
        strategy = NodeAffinitySchedulingStrategy(node, soft=True)
        self._pending[identity] = _remote_probe.options(scheduling_strategy=strategy).remote(
            target, self._storage_options, max_pixels
        )

    def answer(self, target: TargetInput, max_pixels: int | None) -> NodeProbeAnswer | None:
        """The target's probe from its home node (started now unless it was); None when no
        node could be asked (the driver probes it itself). A project error of the probe (a
        corrupt video, too many pixels) is raised as it is, for each render of the target."""
        identity = target.staged_identity
        assert identity is not None
        self.start(target, max_pixels)
        if identity in self._pending:
            self._answers[identity] = self._collect(self._pending.pop(identity))
        known = self._answers.get(identity)
        if isinstance(known, BaseException):
            raise known
        return known

    def _collect(self, reference: ray.ObjectRef) -> NodeProbeAnswer | BaseException | None:
        try:
            info, node = ray.get(reference)
        except ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, FaceFusionRayError | OSError):
                return error.cause
            raise
        except ray.exceptions.RayError as error:
            logger.warning("no node could stage a target (%s)", str(error).splitlines()[0])
            return None
        return NodeProbeAnswer(info, node)

    def _node_capacity(self) -> dict[str, int]:
        """How many actors each live node could hold, for those that hold one."""
        capacity = {}
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            resources = node.get("Resources", {})
            fit = min(
                (
                    int(resources.get(name, 0.0) // amount)
                    for name, amount in self._worker_resources.items()
                    if amount > 0
                ),
                default=1,
            )
            if fit > 0:
                capacity[str(node["NodeID"])] = fit
        return capacity


def next_home(capacity: Mapping[str, int], homes: Mapping[str, int]) -> str | None:
    """Of the nodes with `capacity` (actors it holds, or could hold), the one with the fewest
    `homes` per actor; None when there is none."""
    nodes = [node for node, actors in capacity.items() if actors > 0]
    if not nodes:
        return None
    return min(nodes, key=lambda node: (homes.get(node, 0) / capacity[node], node))


@dataclass(frozen=True)
class JobRay:
    """The Ray a job joined before its first render was prepared (None: not yet), and the
    homes of its staged targets."""

    connection: RayConnection | None = None
    homes: TargetHomes | None = None


def join_for_node_probes(requests: Sequence[RenderRequest], options: JobOptions) -> JobRay:
    """A job with remote videos joins Ray before it prepares them, so that a node stages and
    probes each for the driver; any other job joins once it has a video to render."""
    if not any(_is_remote_video(request.target) for request in requests):
        return JobRay()
    connection = connect_ray(options.address, num_cpus=options.local_ray_cpus)
    resources = reserved(actor_resources(options.execution, options.threads_per_worker))
    return JobRay(connection, TargetHomes(dict(options.storage_options), resources))


def _is_remote_video(target: str) -> bool:
    return is_remote(target) and posixpath.splitext(target)[1].lower() not in IMAGE_SUFFIXES
