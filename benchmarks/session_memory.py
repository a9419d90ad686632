"""What an ONNX Runtime CPU session of the inswapper_128 stand-in (174 G-MACs, 683 MB) holds, by
file layout and session option: each probe opens the session in a fresh process, runs it a few
times, and reports the peak resident memory while opening and overall (issue 16, part 3).

    python -m benchmarks.session_memory [--calls N] [--output FILE]

Layouts: `inline`, the published single file, and `external`, the file preparation writes (the
weights in NAME.data beside a small graph). Options: the project's session options alone
(`default`), then one change each: `session.disable_prepacking`, no CPU memory arena, no
memory pattern.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from facefusion_ray.pipeline.chunk_loop import peak_memory_bytes

PROBES = (
    ("inline", "default"),
    ("inline", "no_prepacking"),
    ("external", "default"),
    ("external", "no_prepacking"),
    ("external", "no_cpu_arena"),
    ("external", "no_memory_pattern"),
)


def probe(model: Path, variant: str, calls: int) -> dict[str, object]:
    """Open `model` with the project's CPU session options changed by `variant`; peak RSS."""
    import numpy as np
    import onnxruntime as ort

    from facefusion_ray.inference.sessions import _session_options

    options = _session_options(intra_op_threads=1, cpu_arena=variant != "no_cpu_arena")
    if variant == "no_prepacking":
        options.add_session_config_entry("session.disable_prepacking", "1")
    if variant == "no_memory_pattern":
        options.enable_mem_pattern = False
    started = time.perf_counter()
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    opened = _peak_mb()
    feeds = {
        "target": np.full((1, 3, 128, 128), 0.5, np.float32),
        "source": np.full((1, 512), 0.05, np.float32),
    }
    for _ in range(calls):
        session.run(None, feeds)
    return {
        "opening_peak_mb": opened,
        "peak_mb": _peak_mb(),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _peak_mb() -> int:
    return round(peak_memory_bytes() / 1e6)


def build_layouts(folder: Path) -> dict[str, Path]:
    from benchmarks.published_costs import build_in_subprocess
    from facefusion_ray.zoo.preparation import get_recipe, write_prepared_model

    inline = build_in_subprocess(folder / "facefusion").folder / "inswapper_128.onnx"
    external = folder / "prepared" / "inswapper_128.onnx"
    write_prepared_model(inline, external, get_recipe("as_published", 1))
    return {"inline": inline, "external": external}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.session_memory")
    parser.add_argument("--calls", type=int, default=2, help="session runs after opening")
    parser.add_argument("--output", type=Path, help="also write the results as JSON here")
    parser.add_argument("--probe", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(Path(args.probe[0]), args.probe[1], args.calls)))
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="facefusion-ray-session-memory-") as folder:
        layouts = build_layouts(Path(folder))
        for layout, variant in PROBES:
            command = [sys.executable, "-m", "benchmarks.session_memory", "--calls"]
            command += [str(args.calls), "--probe", str(layouts[layout]), variant]
            printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            result = {"layout": layout, "variant": variant, **json.loads(printed)}
            print(json.dumps(result), flush=True)
            results.append(result)
    if args.output:
        args.output.write_text(json.dumps({"calls": args.calls, "probes": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
