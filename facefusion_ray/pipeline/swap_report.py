"""The run report: what a render did, as JSON for machines and a line for people."""

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from facefusion_ray.inference.session_factory import ModelUsage
from facefusion_ray.pipeline.review_probe import ChunkReview


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
    # The job's start-up in parts (Ray, actors, sessions) and what it reused: shared by the
    # job's renders (engine/startup_report.py; empty without Ray).
    startup: dict[str, object] = field(default_factory=dict)
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

    def add_chunk(self, result: ChunkResult) -> None:
        self.frames_total += result.frames
        self.frames_with_faces += result.frames_with_faces
        self.faces_swapped += result.faces_swapped
        self.frames_swapped += result.frames_swapped
        self.add_stage_seconds(result.stage_seconds)
        self.cache["hits"] += result.cache_hits
        self.cache["misses"] += result.cache_misses
        self.add_model_stats(result.model_usage)
        if result.worker_pid:
            worker = str(result.worker_pid)
            self.chunks_by_worker[worker] = self.chunks_by_worker.get(worker, 0) + 1

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


def write_report(report: SwapReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    temporary.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    os.replace(temporary, path)
