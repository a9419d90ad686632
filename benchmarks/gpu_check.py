"""Check the GPU paths on a machine with an NVIDIA GPU, in one command (issue 16, part 4).

    python -m benchmarks.gpu_check            # the check, under 10 minutes on one GPU
    python -m benchmarks.gpu_check --dry-run  # the plan and its commands; no GPU needed

Run it from the repository root with Python 3.11.

It creates its own environment (`.gpu-check-venv`, the project with its `gpu` extra), builds
stand-ins at FaceFusion's published costs (`benchmarks/published_costs.py`: inswapper_128 and
its FP16 file, arcface_w600k_r50) in a FaceFusion folder, imports them into a model store of
its own, and renders the 720p sample with CUDA and TensorRT, FP16 and FP32, 1 / 2 / 4 actors
on the GPU, NVENC against libx264 and CUDA decoding against CPU decoding. It prints one table
(frames/s, faces/s, GPU memory per actor from nvidia-smi, the provider and precision each run
really used) and checks that an FP16 swap matches the FP32 one within the tests' tolerance.
Where no GPU is found it stops at once, with one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".gpu-check-venv"
STORE = "published-cost-store"
FRAMES_DEFAULT = 300  # the whole 10 s 720p sample


@dataclass(frozen=True)
class Run:
    name: str
    provider: str  # cuda or tensorrt
    precision: str  # fp16 or fp32
    actors: int = 1
    encoder: str = "libx264"
    decode: str = "none"
    still: bool = False  # the group photo as a PNG target: pixels compared across precisions

    def options(self) -> list[str]:
        options = ["--execution-provider", self.provider, "--precision", self.precision]
        options += ["--workers", str(self.actors)]
        if self.actors > 1:
            options += ["--gpu-fraction", str(round(1 / self.actors, 4))]
        return [*options, "--output-video-encoder", self.encoder, "--decode-hwaccel", self.decode]


RUNS = (
    Run("cuda_fp16", "cuda", "fp16"),
    Run("cuda_fp32", "cuda", "fp32"),
    Run("tensorrt_fp16", "tensorrt", "fp16"),
    Run("tensorrt_fp32", "tensorrt", "fp32"),
    Run("cuda_fp16_2_actors", "cuda", "fp16", actors=2),
    Run("cuda_fp16_4_actors", "cuda", "fp16", actors=4),
    Run("cuda_fp16_nvenc", "cuda", "fp16", encoder="h264_nvenc"),
    Run("cuda_fp16_cuda_decode", "cuda", "fp16", decode="cuda"),
    Run("still_fp16", "cuda", "fp16", still=True),
    Run("still_fp32", "cuda", "fp32", still=True),
)


def swap_command(run: Run, work: Path, python: str = "python") -> list[str]:
    """The `facefusion-ray swap` of one run; inputs, store and outputs under `work`."""
    target = work / ("group.png" if run.still else "target.mp4")
    output = work / "outputs" / (run.name + target.suffix)
    command = [python, "-m", "facefusion_ray", "swap", "--source", str(work / "source.png")]
    command += ["--target", str(target), "--output", str(output)]
    command += ["--face-swapper-model", "inswapper_128", "--model-store", str(work / STORE)]
    command += ["--no-analysis-cache", "--work-store", str(work / "work" / run.name), "--force"]
    command += ["--report", str(report_path(run, work)), "--no-progress"]
    return command + ([] if run.still else ["--output-video-quality", "90"]) + run.options()


def report_path(run: Run, work: Path) -> Path:
    return work / "reports" / f"{run.name}.json"


def print_plan(work: Path, frames: int) -> None:
    print(f"environment: {VENV} with `pip install -e {ROOT}[gpu]`")
    print(
        f"stand-ins and inputs under {work}: inswapper_128 (174 G-MACs, 683 MB), its FP16 "
        f"file, arcface_w600k_r50 (6.3 G-MACs); the first {frames} frames of the 720p sample"
    )
    for run in RUNS:
        print(f"{run.name}: {shlex.join(swap_command(run, work))}")


def find_gpu() -> str | None:
    """The first GPU's name and memory, or None without a working nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]
    try:
        listed = subprocess.run(query, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = listed.stdout.strip().splitlines()
    return lines[0] if listed.returncode == 0 and lines else None


def ensure_venv() -> Path:
    """The check's own environment: the project with its `gpu` extra (never with `cpu`)."""
    python = VENV / "bin" / "python"
    marker = VENV / ".installed"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "-e", f"{ROOT}[gpu]"], check=True)
        marker.touch()
    return python


class GpuMemory:
    """The most GPU memory nvidia-smi saw each process use while a run went on (MiB)."""

    def __init__(self) -> None:
        self.by_pid: dict[int, int] = {}
        self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> GpuMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        query = [
            "nvidia-smi",
            "--query-compute-apps=pid,used_memory",
            "--format=csv,noheader,nounits",
        ]
        while not self._stop.wait(0.5):
            listed = subprocess.run(query, capture_output=True, text=True, check=False)
            used = [line.split(",") for line in listed.stdout.strip().splitlines() if "," in line]
            current = {int(pid): int(memory) for pid, memory in used}
            for pid, memory in current.items():
                self.by_pid[pid] = max(self.by_pid.get(pid, 0), memory)
            self.total = max(self.total, sum(current.values()))


def run_one(run: Run, work: Path, python: str) -> dict[str, object]:
    command = swap_command(run, work, python)
    started = time.perf_counter()
    with GpuMemory() as memory:
        finished = subprocess.run(command, capture_output=True, text=True, check=False)
    row: dict[str, object] = {"run": run, "wall": time.perf_counter() - started}
    if finished.returncode != 0:
        lines = finished.stderr.strip().splitlines()
        row["error"] = lines[-1] if lines else f"exit status {finished.returncode}"
        return row
    report = json.loads(report_path(run, work).read_text())
    actors = [int(pid) for pid in report.get("chunks_by_worker", {})]
    seen = [memory.by_pid[pid] for pid in actors if pid in memory.by_pid]
    # Inside a container nvidia-smi may show host process ids: then the total over the actors.
    row["gpu_mib"] = max(seen) if seen else round(memory.total / max(run.actors, 1))
    row["report"] = report
    return row


def table(rows: Sequence[dict[str, object]]) -> str:
    header = ("run", "frames/s", "faces/s", "GPU MiB/actor", "host MB/actor", "swapper ran on")
    header += ("notes",)
    lines = [header]
    for row in rows:
        run = row["run"]
        assert isinstance(run, Run)
        if "error" in row:
            lines.append((run.name, "-", "-", "-", "-", "-", f"FAILED: {row['error']}"))
            continue
        report = row["report"]
        assert isinstance(report, dict)
        seconds = max(float(report["seconds"]) - float(report["startup_seconds"]), 1e-9)
        swapper = [
            p
            for model, ps in report["model_providers"].items()
            if "swapper" in model or model.startswith("inswapper")
            for p in ps
        ]
        lines.append(
            (
                run.name,
                f"{int(report['frames_total']) / seconds:.1f}",
                f"{int(report['faces_swapped']) / seconds:.1f}",
                str(row["gpu_mib"]),
                str(_host_peak_mb(report)),
                ", ".join(swapper) or "?",
                "; ".join(report["notes"])[:80],
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in lines
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and commands")
    parser.add_argument("--frames", type=int, default=FRAMES_DEFAULT, help="frames of the sample")
    parser.add_argument("--work", type=Path, help="folder for inputs and outputs (default: temp)")
    parser.add_argument("--inside-venv", action="store_true", help=argparse.SUPPRESS)
    return parser


def _host_peak_mb(report: dict[str, object]) -> int:
    peaks = report["peak_memory_bytes"]
    assert isinstance(peaks, dict)
    actors = [int(value) for name, value in peaks.items() if name != "driver"]
    return round(max(actors, default=0) / 1e6)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    work = args.work or Path(tempfile.gettempdir()) / "facefusion-ray-gpu-check"
    if args.dry_run:
        print_plan(work, args.frames)
        return 0
    gpu = find_gpu()
    if gpu is None:
        print(
            "gpu_check: no NVIDIA GPU found (nvidia-smi is missing or lists none); nothing checked",
            file=sys.stderr,
        )
        return 2
    if not args.inside_venv:
        python = ensure_venv()
        argv_inside = [str(python), "-m", "benchmarks.gpu_check", "--inside-venv"]
        argv_inside += ["--frames", str(args.frames), "--work", str(work)]
        return subprocess.run(argv_inside, cwd=ROOT, check=False).returncode
    from benchmarks.gpu_check_inputs import fp16_matches_fp32, prepare_inputs

    print(f"gpu_check on {gpu}", flush=True)
    prepare_inputs(work, args.frames)
    rows = []
    for run in RUNS:
        print(f"running {run.name} ...", flush=True)
        rows.append(run_one(run, work, sys.executable))
    print(table(rows))
    outputs = work / "outputs"
    matched = fp16_matches_fp32(outputs / "still_fp16.png", outputs / "still_fp32.png")
    print(matched)
    failed = any("error" in row for row in rows)
    return 0 if matched.startswith("ok") and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
