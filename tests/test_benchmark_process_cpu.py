"""The benchmark's CPU time by process kind: a command's process tree sampled from /proc, and
the report's exact figures combined with it."""

import os
import sys

from benchmarks.measure import cpu_by_process_kind, run_sampled
from facefusion_ray.media import ffmpeg_executable

# A driver that burns CPU itself and runs a busy ffmpeg child and a busy Python child. ffmpeg
# reads at the input's own rate (-re), so it lives 2 s and is sampled however fast the machine.
TREE = f"""
import subprocess, sys, time
ffmpeg = subprocess.Popen([{ffmpeg_executable()!r}, "-nostdin", "-loglevel", "error",
    "-re", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=2",
    "-c:v", "libx264", "-preset", "veryfast", "-f", "null", "-"])
helper = subprocess.Popen([sys.executable, "-c",
    "import time\\nend = time.process_time() + 0.8\\nwhile time.process_time() < end: pass"])
end = time.process_time() + 0.8
while time.process_time() < end:
    pass
ffmpeg.wait()
helper.wait()
"""


def test_a_command_tree_is_sampled_by_kind() -> None:
    wall, tree = run_sampled([sys.executable, "-c", TREE])
    assert tree["driver"] >= 0.5
    assert tree.get("ffmpeg", 0.0) > 0.2, tree
    # Anything else under the driver counts as Ray's own (the helper here), minus its last tick.
    assert tree["ray"] >= 0.2
    cores = os.cpu_count() or 1
    assert sum(tree.values()) <= wall * cores + 0.5  # no process counted twice


def test_the_report_figures_come_first_and_the_tree_adds_what_they_miss() -> None:
    report = {"cpu_seconds": {"frame_loop": 10.0, "ffmpeg_decode": 2.0, "driver": 1.5}}
    tree = {"driver": 1.6, "actor_processes": 13.0, "ffmpeg": 2.1, "ray": 4.0}
    figures = cpu_by_process_kind(report, tree)
    assert figures == {
        "frame_loop": 10.0,
        "ffmpeg_decode": 2.0,
        "driver": 1.5,
        "actor_outside_frame_loop": 3.0,
        "ray": 4.0,
        "total": 20.5,
    }
    # A report from before the figures existed: the tree's Ray figure alone.
    assert cpu_by_process_kind({}, tree) == {"ray": 4.0, "total": 4.0}
