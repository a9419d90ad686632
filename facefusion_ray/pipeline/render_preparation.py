"""The driver's part of a render before any frame is touched: inputs, identity, keys, plan."""

import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facefusion_ray.errors import MediaError
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.inference.session_factory import SessionFactory
from facefusion_ray.media import MediaInfo, probe_media
from facefusion_ray.media.process_cpu import CHILD_CPU, own_cpu_seconds
from facefusion_ray.media.remote_media import MediaSource
from facefusion_ray.pipeline.cached_analysis import CachePlan
from facefusion_ray.pipeline.chunk_loop import peak_memory_bytes
from facefusion_ray.pipeline.content_keys import analysis_key, render_key
from facefusion_ray.pipeline.identity_map import build_identity_map
from facefusion_ray.pipeline.job_models import JobModels
from facefusion_ray.pipeline.model_loading import load_analyser, load_recognizer
from facefusion_ray.pipeline.model_plan import ModelPlan, Role
from facefusion_ray.pipeline.reference import reference_embedding_for
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.pipeline.shared_sources import SharedSources
from facefusion_ray.pipeline.sources import IdentityMap, SourceIdentity, prepare_source_identity
from facefusion_ray.pipeline.swap_report import SwapReport
from facefusion_ray.pipeline.target_input import (
    NodeProbe,
    TargetInput,
    audio_source,
    open_target,
    resolve_target,
    target_fingerprint,
    with_header,
)
from facefusion_ray.settings import IMAGE_SUFFIXES, VIDEO_SUFFIXES, SwapSettings
from facefusion_ray.storage.locations import is_remote

logger = logging.getLogger(__name__)

NO_FACE_NOTE = "no face found in the target: the output equals the input"


def driver_models() -> JobModels:
    """The models the driver uses, on CPU, for source images and reference faces."""
    return JobModels(ExecutionConfig())


@dataclass
class PreparedRender:
    request: RenderRequest
    # A local file (the target itself, or its staged copy) or a signed URL that was valid
    # while the render was prepared: `reopen_target` gives one for later reads.
    target: MediaSource
    # The target's probe; None while a node probe is still to be asked (see `info`).
    probed: MediaInfo | None
    plan: ModelPlan
    identity: SourceIdentity
    report: SwapReport
    reference: np.ndarray | None = None
    identity_map: IdentityMap | None = None
    cache_plan: CachePlan | None = None
    render_key: str | None = None  # videos only
    started: float = field(default_factory=time.perf_counter)
    target_input: TargetInput | None = None
    # The node that staged and probed the target for the driver (see `NodeProbe`).
    home_node: str | None = None
    # Asks that node, and sets `probed` and `home_node`: called on the first use of `info`.
    probe_on_node: Callable[[], None] | None = None

    @property
    def info(self) -> MediaInfo:
        """The target's probe. A target a node probes is probed on first use: a render found
        up to date by its keys never has its target read."""
        if self.probed is None and self.probe_on_node is not None:
            self.probe_on_node()
        assert self.probed is not None
        return self.probed


def target_audio(
    prepared: PreparedRender, storage_options: dict[str, str] | None = None
) -> MediaSource:
    """Where the final assembly reads the target's audio (for a remote target read by range,
    the audio its index stand-in holds: the video data is not read again)."""
    if prepared.target_input is None:
        return prepared.target
    reads = prepared.request.settings.target_reads
    return audio_source(prepared.target_input, reads, storage_options)


def reopen_target(
    prepared: PreparedRender, storage_options: dict[str, str] | None = None
) -> MediaSource:
    """The target for a read now (a remote one's URL signed anew: the one used to prepare the
    render may have expired; its index stand-in is already on this node)."""
    if prepared.target_input is None:
        return prepared.target
    reads = prepared.request.settings.target_reads
    return open_target(prepared.target_input, reads, storage_options, with_index=True)


def prepare_render(
    request: RenderRequest,
    models: JobModels,
    storage_options: dict[str, str] | None = None,
    shared: SharedSources | None = None,
    node_probe: NodeProbe | None = None,
) -> PreparedRender:
    """Checks the inputs and analyses the sources; raises a project error for bad input.

    A remote target is probed by range (never downloaded whole unless it is small), or, when
    the nodes stage it whole and `node_probe` is given, on the node that will hold it, which
    becomes its home; `shared` keeps what the job's renders share about their sources, so each
    is prepared once."""
    started = time.perf_counter()
    shared = shared or SharedSources(storage_options)
    reads = request.settings.target_reads
    on_a_node = node_probe is not None and may_probe_on_a_node(request.settings)
    target_input = resolve_target(
        request.target, reads, storage_options, probed_on_a_node=on_a_node
    )
    info: MediaInfo | None = None
    if node_probe is not None and on_a_node and needs_node_probe(target_input):
        target, kind = open_target(target_input, reads, storage_options), "video"
    else:
        target = open_target(target_input, reads, storage_options, with_index=True)
        info = probe_media(target, request.settings.max_pixels)
        target_input, kind = with_header(target_input, target), info.kind
    check_output_location(request.output, kind)
    # Encoders and decode acceleration are probed by the process that renders the chunks
    # (pipeline/codec_choice): a CPU head node may plan for GPU workers.
    settings = request.settings
    sources = shared.local_files(request.sources, settings.max_pixels)
    plan = models.plan_for(settings)
    sessions = models.sessions_for(settings)
    calls_before = {model: int(usage["calls"]) for model, usage in sessions.stats().items()}
    identity, identity_map = _source_identities(
        target, info, settings, plan, sessions, sources, shared
    )
    # A target a node probes is one of whose frames the driver reads none (no reference).
    reference = (
        None if info is None else reference_embedding_for(target, info, settings, plan, sessions)
    )
    report = SwapReport(
        target=request.target, sources=list(request.sources), output=request.output, kind=kind
    )
    report.source_model_calls = {
        model: int(usage["calls"]) - calls_before.get(model, 0)
        for model, usage in sessions.stats().items()
        if int(usage["calls"]) > calls_before.get(model, 0)
    }
    prepared = PreparedRender(
        request, target, info, plan, identity, report, reference, identity_map, started=started
    )
    prepared.target_input = target_input
    if info is None:
        assert node_probe is not None
        prepared.probe_on_node = functools.partial(
            _probe_on_node, prepared, node_probe, storage_options
        )
    if kind == "video":
        _plan_video_keys(prepared, sources, storage_options, shared)
    return prepared


def _probe_on_node(
    prepared: PreparedRender, node_probe: NodeProbe, storage_options: dict[str, str] | None
) -> None:
    """Fill in `prepared`'s probe from the node that stages its target, which becomes the
    target's home; the driver probes it itself when no node could be asked."""
    target_input = prepared.target_input
    assert target_input is not None
    settings = prepared.request.settings
    answer = node_probe.answer(target_input, settings.max_pixels)
    if answer is not None:
        prepared.probed, prepared.home_node = answer.info, answer.node
        return
    reads = settings.target_reads
    target = open_target(target_input, reads, storage_options, with_index=True)
    prepared.probed = probe_media(target, settings.max_pixels)
    prepared.target_input = with_header(target_input, target)


def may_probe_on_a_node(settings: SwapSettings) -> bool:
    """A node may probe the target for the driver: the driver reads no frame of it (it does
    for a reference face, or the people of an identity map)."""
    return not settings.face_selector.needs_embeddings


def needs_node_probe(target: TargetInput) -> bool:
    """The target is one a node stages and probes (a remote video the nodes stage whole)."""
    return target.staged_on_nodes and target.local is None


def _source_identities(
    target: MediaSource,
    info: MediaInfo | None,
    settings: SwapSettings,
    plan: ModelPlan,
    sessions: SessionFactory,
    sources: list[Path],
    shared: SharedSources,
) -> tuple[SourceIdentity, IdentityMap | None]:
    """The identity to swap in, and with identity-map, the identity of each person."""

    def identity_of(paths: list[Path]) -> SourceIdentity:
        def prepare() -> SourceIdentity:
            recognizer = plan.get(Role.SOURCE_RECOGNIZER)
            embedder = None if recognizer is None else load_recognizer(recognizer.spec, sessions)
            detector = load_analyser(plan, settings, sessions)
            return prepare_source_identity(paths, detector, embedder)

        return shared.identity(paths, settings, plan, prepare)

    if settings.face_selector.mode != "identity-map":
        return identity_of(sources), None
    per_source = [identity_of([path]) for path in sources]
    assert info is not None  # identity maps read the target here: no node probes it
    identity_map = build_identity_map(target, info, settings, plan, sessions, per_source)
    return per_source[0], identity_map


def _plan_video_keys(
    prepared: PreparedRender,
    sources: list[Path],
    storage_options: dict[str, str] | None,
    shared: SharedSources,
) -> None:
    settings = prepared.request.settings
    assert prepared.target_input is not None
    fingerprint = target_fingerprint(prepared.target_input, settings.target_reads, storage_options)
    if settings.use_analysis_cache:
        prepared.cache_plan = CachePlan(
            settings.analysis_cache,
            analysis_key(settings, prepared.plan),
            fingerprint,
            tuple((storage_options or {}).items()),
        )
    prepared.render_key = render_key(
        prepared.request.output,
        fingerprint,
        shared.fingerprints(sources),
        settings,
        prepared.plan,
    )


def check_output_location(output: str, kind: str) -> None:
    """`kind`: the target's, "video" or "image"."""
    allowed = VIDEO_SUFFIXES if kind == "video" else IMAGE_SUFFIXES
    if os.path.splitext(output)[1].lower() not in allowed:
        raise MediaError(
            f"output {output} must end in one of {', '.join(allowed)} for a {kind} target"
        )
    if is_remote(output):
        return
    path = Path(output)
    if path.is_dir():
        raise MediaError(f"output is a directory: {output}")
    path.parent.mkdir(parents=True, exist_ok=True)


def finish_report(prepared: PreparedRender) -> None:
    report = prepared.report
    report.peak_memory_bytes["driver"] = peak_memory_bytes()
    report.set_driver_cpu(own_cpu_seconds(), CHILD_CPU.snapshot())
    if report.frames_total and report.frames_with_faces == 0 and NO_FACE_NOTE not in report.notes:
        report.notes.append(NO_FACE_NOTE)
        logger.warning("%s: %s", prepared.request.target, NO_FACE_NOTE)
    report.seconds = round(time.perf_counter() - prepared.started, 3)
