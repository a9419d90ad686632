"""A private model store for the neural scenario, filled the way a studio fills one: the
embedded detector pulled, a FaceFusion model folder imported (the recognizer), and private
swapper weights added under their own id. Nothing is downloaded."""

import zlib
from dataclasses import dataclass
from pathlib import Path

from benchmarks.measure import cli_command, run_timed, shown
from benchmarks.standin_models import DEFAULT_SHAPE, SwapperShape, build_recognizer, build_swapper

SWAPPER_ID = "benchmark_swapper_10gflop"
LIKE = "inswapper_128"
RECOGNIZER_FILE = "arcface_w600k_r50.onnx"


@dataclass(frozen=True)
class NeuralStore:
    url: str
    swapper_id: str
    swapper_gflops_per_call: float
    swapper_convolutions: list[tuple[int, int]]
    commands: list[str]


def build_neural_store(folder: Path, shape: SwapperShape = DEFAULT_SHAPE) -> NeuralStore:
    # arcface_w600k_r50 is a manifest model: it cannot be added, only pulled or imported, and
    # its hosts are unreachable here, so a stand-in goes in through FaceFusion's folder layout.
    facefusion_models = folder / "facefusion" / ".assets" / "models"
    recognizer = build_recognizer(facefusion_models / RECOGNIZER_FILE)
    write_facefusion_hash(recognizer)
    swapper = build_swapper(folder / f"{SWAPPER_ID}.onnx", shape)
    store = str(folder / "store")
    commands = [
        cli_command("models", "pull", "yunet", "--store", store),
        cli_command(
            "models", "import", "--from-facefusion", str(facefusion_models), "--store", store
        ),
        cli_command("models", "add", SWAPPER_ID, str(swapper), "--like", LIKE, "--store", store),
    ]
    for command in commands:
        run_timed(command)
    return NeuralStore(
        url=store,
        swapper_id=SWAPPER_ID,
        swapper_gflops_per_call=round(shape.flops_per_call() / 1e9, 3),
        swapper_convolutions=shape.convolutions(),
        commands=[shown(command) for command in commands],
    )


def write_facefusion_hash(model: Path) -> Path:
    """FaceFusion's NAME.hash beside NAME.onnx: the file's CRC32 as 8 hex digits."""
    hash_file = model.with_suffix(".hash")
    hash_file.write_text(f"{zlib.crc32(model.read_bytes()):08x}", encoding="ascii")
    return hash_file
