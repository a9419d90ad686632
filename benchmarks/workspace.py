"""The benchmark's temporary folder and what the scenarios need in it, each made on first use
so that a run of a few scenarios prepares only their inputs."""

from dataclasses import asdict
from pathlib import Path

from benchmarks.face_crops import crop_group_faces
from benchmarks.model_memory import PublishedCostStore, build_published_cost_store
from benchmarks.neural_store import NeuralStore, build_neural_store
from facefusion_ray.media.ffmpeg_tool import run_ffmpeg
from facefusion_ray.sample_media import build_sample_media

# Trimmed targets: name -> frames taken from the start of the 720p sample (30 frames/s).
TRIMMED_TARGETS = {"720p_120_frames": 120, "720p_30_frames": 30, "720p_12_frames": 12}
SAMPLE_FPS = 30


class Workspace:
    def __init__(self, folder: Path, trim_frames: int | None = None) -> None:
        """`trim_frames` shortens the trimmed targets further, to check the benchmark itself."""
        self.folder = folder
        self.trim_frames = trim_frames
        # Segments of these renders stay out of the user's work store.
        self.work_store = folder / "work-store"
        self._media = build_sample_media()
        self._targets: dict[str, Path] = {"720p": self._media.target_video}
        self._group_faces: list[Path] | None = None
        self._neural_store: NeuralStore | None = None
        self._published_cost_store: PublishedCostStore | None = None

    def target(self, name: str) -> Path:
        if name not in self._targets:
            self._targets[name] = self._prepare_target(name)
        return self._targets[name]

    def source(self, name: str) -> Path:
        """tom_hanks, astronaut, or group_face_1 ... group_face_6."""
        if name == "tom_hanks":
            return self._media.source_tom_hanks
        if name == "astronaut":
            return self._media.source_astronaut
        if self._group_faces is None:
            self._group_faces = crop_group_faces(self._media.group_photo, self.folder / "faces")
        number = int(name.removeprefix("group_face_"))
        return self._group_faces[number - 1]

    def neural_store(self) -> NeuralStore:
        if self._neural_store is None:
            self._neural_store = build_neural_store(self.folder / "neural-models")
        return self._neural_store

    def published_cost_store(self) -> PublishedCostStore:
        if self._published_cost_store is None:
            folder = self.folder / "published-cost-models"
            self._published_cost_store = build_published_cost_store(folder)
        return self._published_cost_store

    def setup(self) -> dict[str, object]:
        """What was prepared besides the targets, for the result document."""
        setup: dict[str, object] = {}
        if self._neural_store is not None:
            setup["neural_store"] = asdict(self._neural_store)
        if self._published_cost_store is not None:
            store = self._published_cost_store
            setup["published_cost_store"] = {"url": store.url, "commands": store.commands}
        return setup

    def _prepare_target(self, name: str) -> Path:
        sample = self._media.target_video
        if name == "1080p":
            upscaled = self.folder / "sample_1080p.mp4"
            run_ffmpeg_quietly(
                "-i", str(sample), "-vf", "scale=1920:1080",
                "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-c:a", "copy",
                str(upscaled),
            )  # fmt: skip
            return upscaled
        if name == "720p_x4":
            listing = self.folder / "x4.txt"
            listing.write_text("".join(f"file '{sample}'\n" for _ in range(4)))
            four_times = self.folder / "sample_x4.mp4"
            run_ffmpeg_quietly(
                "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(four_times)
            )  # fmt: skip
            return four_times
        if name in TRIMMED_TARGETS:
            frames = min(TRIMMED_TARGETS[name], self.trim_frames or TRIMMED_TARGETS[name])
            trimmed = self.folder / f"sample_{name}.mp4"
            run_ffmpeg_quietly(
                "-i", str(sample), "-frames:v", str(frames), "-t", f"{frames / SAMPLE_FPS:.4f}",
                "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-c:a", "aac",
                str(trimmed),
            )  # fmt: skip
            return trimmed
        raise KeyError(f"no benchmark target named {name}")


def run_ffmpeg_quietly(*args: str) -> None:
    run_ffmpeg(["-loglevel", "error", "-y", *args], "cannot prepare a benchmark target")
