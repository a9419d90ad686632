"""The run report: what a render did, as JSON for machines and a line for people."""

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from facefusion_ray.inference.session_factory import ModelUsage
from facefusion_ray.pipeline.review_probe import ChunkReview

# Process kinds of `cpu_seconds`: the worker process running the frame loop, and the driver's
# own process (outside any frame loop it ran itself) with its ffmpeg children (probe, assembly).
FRAME_LOOP_CPU = "frame_loop"
DRIVER_CPU = "driver"
DRIVER_FFMPEG_CPU = "driver_ffmpeg"


@dataclass
class ChunkResult:
    index: int
    frames: int
    frames_with_faces: int
    faces_swapped: int
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    frames_swapped: int = 0
    # Model calls made for this chunk alone (actors share sessions across chunks and renders).
    model_usage: dict[str, ModelUsage] = field(default_factory=dict)
    # The actor process that rendered the chunk (0: rendered in the driver's process).
    worker_pid: int = 0
    # What an A/B review took from the chunk's frames (None when the render is not reviewed).
    review: ChunkReview | None = None
    # CPU seconds spent on the chunk by process kind: FRAME_LOOP_CPU (the worker process, all
    # its threads) and its ffmpeg children, `ffmpeg_decode`, `ffmpeg_encode` (`ffmpeg_other`).
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    # The encoder that made the chunk's segment, and what its node gave up (codec fallbacks).
    encoder: str = ""
    notes: tuple[str, ...] = ()


@dataclass
class SwapReport:
    target: str
    sources: list[str]
    output: str
    kind: str
    frames_total: int = 0
    frames_with_faces: int = 0
    # Frames in which at least one face was swapped.
    frames_swapped: int = 0
    faces_swapped: int = 0
    chunks: int = 0
    # Chunks whose segment a previous, interrupted run had already rendered.
    chunks_skipped: int = 0
    # The output was already published from the same inputs: nothing was rendered.
    up_to_date: bool = False
    workers: int = 0
    seconds: float = 0.0
    startup_seconds: float = 0.0
    model_calls: dict[str, int] = field(default_factory=dict)
    model_seconds: dict[str, float] = field(default_factory=dict)
    # model id -> where its sessions ran, e.g. ["CPUExecutionProvider fp32"]
    model_providers: dict[str, list[str]] = field(default_factory=dict)
    # Summed over all workers, so with N workers they can add up to N times `seconds`.
    stage_seconds: dict[str, float] = field(default_factory=dict)
    peak_memory_bytes: dict[str, int] = field(default_factory=dict)
    # Rendered chunks per actor process id: how evenly the pool shared the work.
    chunks_by_worker: dict[str, int] = field(default_factory=dict)
    # Frames whose analysis came from the cache, and frames analysed by the models.
    cache: dict[str, int] = field(default_factory=lambda: {"hits": 0, "misses": 0})
    # Calls made by the driver for the source images and the reference face.
    source_model_calls: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # CPU seconds by process kind, summed over the chunks (see ChunkResult.cpu_seconds), and
    # the driver's: DRIVER_CPU, DRIVER_FFMPEG_CPU (set when the render is finished).
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The part of `cpu_seconds` spent by chunks rendered in the driver's own process (the
        # sequential path), which the driver's process totals must not count twice.
        self._cpu_in_driver: dict[str, float] = {}

    def add_chunk(self, result: ChunkResult) -> None:
        self.frames_total += result.frames
        self.frames_with_faces += result.frames_with_faces
        self.faces_swapped += result.faces_swapped
        self.frames_swapped += result.frames_swapped
        self.add_stage_seconds(result.stage_seconds)
        self.cache["hits"] += result.cache_hits
        self.cache["misses"] += result.cache_misses
        self.add_model_stats(result.model_usage)
        _add_seconds(self.cpu_seconds, result.cpu_seconds)
        if not result.worker_pid:
            _add_seconds(self._cpu_in_driver, result.cpu_seconds)
        self.notes.extend(note for note in dict.fromkeys(result.notes) if note not in self.notes)
        if result.worker_pid:
            worker = str(result.worker_pid)
            self.chunks_by_worker[worker] = self.chunks_by_worker.get(worker, 0) + 1

    def set_driver_cpu(self, own_seconds: float, children: Mapping[str, float]) -> None:
        """The driver process's CPU so far (its own, and its ffmpeg children's by kind), less
        the frame loops that ran in it and are counted as such."""
        in_driver = self._cpu_in_driver
        self.cpu_seconds[DRIVER_CPU] = round(own_seconds - in_driver.get(FRAME_LOOP_CPU, 0.0), 6)
        ffmpeg = sum(
            seconds - in_driver.get(f"ffmpeg_{kind}", 0.0) for kind, seconds in children.items()
        )
        self.cpu_seconds[DRIVER_FFMPEG_CPU] = round(max(ffmpeg, 0.0), 6)

    def add_stage_seconds(self, stages: dict[str, float]) -> None:
        for stage, seconds in stages.items():
            self.stage_seconds[stage] = round(self.stage_seconds.get(stage, 0.0) + seconds, 6)

    def add_model_stats(self, stats: Mapping[str, ModelUsage]) -> None:
        for model, entry in stats.items():
            placement = f"{entry['provider']} {entry['precision']}"
            if placement not in self.model_providers.setdefault(model, []):
                self.model_providers[model].append(placement)
            if entry["fallback"] and entry["fallback"] not in self.notes:
                self.notes.append(f"{model}: {entry['fallback']}")
            self.model_calls[model] = self.model_calls.get(model, 0) + int(entry["calls"])
            self.model_seconds[model] = round(
                self.model_seconds.get(model, 0.0) + float(entry["seconds"]), 6
            )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        if self.up_to_date:
            return (
                f"{self.output}: up to date ({self.frames_total} frames, {self.faces_swapped} "
                "faces swapped by an earlier run of the same inputs; --force renders again)"
            )
        fps = self.frames_total / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.output}: {self.frames_total} frames, {self.frames_with_faces} with faces, "
            f"{self.faces_swapped} faces swapped, {self.chunks} chunks on {self.workers} workers "
            f"in {self.seconds:.1f} s ({fps:.1f} frames/s)"
        )


def _add_seconds(into: dict[str, float], seconds: Mapping[str, float]) -> None:
    for kind, value in seconds.items():
        into[kind] = round(into.get(kind, 0.0) + value, 6)


def write_report(report: SwapReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    temporary.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    os.replace(temporary, path)
