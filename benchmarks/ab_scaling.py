"""A/B scaling: `facefusion-ray ab` with N sources on one target against N separate
`facefusion-ray swap` commands run one after another, for N = 1, 2, 4, 8."""

import shutil

from benchmarks.measure import as_float, cli_command, job_arguments, run_reported, shown
from benchmarks.workspace import Workspace

AB_SOURCE_COUNTS = (1, 2, 4, 8)
AB_TARGET = "720p_120_frames"
# Eight distinct faces: the two sample sources, then the six faces of the group photo.
AB_SOURCES = ("tom_hanks", "astronaut", *(f"group_face_{number}" for number in range(1, 7)))
AB_WORKERS = 2
DETECTOR = "yunet"


def ab_scenario_name(count: int) -> str:
    return f"ab_{count}_source" if count == 1 else f"ab_{count}_sources"


AB_SCENARIO_NAMES = tuple(ab_scenario_name(count) for count in AB_SOURCE_COUNTS)


class AbScaling:
    """Runs the A/B jobs; each separate render runs once and counts for every N that uses its
    source (the N separate renders are the first N sources, so N=8 includes those of N=4)."""

    def __init__(self, workspace: Workspace) -> None:
        self._workspace = workspace
        self._separate: dict[int, dict[str, object]] = {}

    def run(self, count: int) -> dict[str, object]:
        ab = self._run_ab(count)
        separate = [self._separate_render(index) for index in range(count)]
        separate_wall = sum(as_float(render["wall_seconds"]) for render in separate)
        ab_wall = as_float(ab["wall_seconds"])
        return {
            "sources": count,
            "frames": ab["frames"],
            "ab": ab,
            "separate": {
                "commands": [render["command"] for render in separate],
                "wall_seconds": [render["wall_seconds"] for render in separate],
                "startup_seconds": [render["startup_seconds"] for render in separate],
                "detector_calls": [render["detector_calls"] for render in separate],
                "total_wall_seconds": round(separate_wall, 2),
            },
            "ab_share_of_separate": round(ab_wall / separate_wall, 3),
            "analysed_once": ab["detector_calls"] == ab["frames"],
        }

    def _run_ab(self, count: int) -> dict[str, object]:
        folder = self._workspace.folder
        output_dir = folder / f"ab-{count}"
        report_path = folder / f"ab-{count}.json"
        command = cli_command(
            "ab",
            "--target", str(self._workspace.target(AB_TARGET)),
            *self._source_arguments(count),
            "--output-dir", str(output_dir),
            # A fresh cache: the job starts cold and analyses the target once itself.
            "--analysis-cache", str(folder / f"ab-{count}-analysis-cache"),
            *job_arguments(AB_WORKERS, report_path, self._workspace.work_store),
        )  # fmt: skip
        wall, job = run_reported(command, report_path)
        shutil.rmtree(output_dir)
        renders = job["renders"]
        failed = [render["name"] for render in renders if render["status"] != "rendered"]
        if failed:
            raise RuntimeError(f"A/B renders not rendered: {failed}")
        return {
            "command": shown(command),
            "wall_seconds": round(wall, 2),
            "job_seconds": job["seconds"],
            "startup_seconds": job["startup_seconds"],
            "frames": renders[0]["frames"],
            "detector_calls": sum(
                render["report"]["model_calls"].get(DETECTOR, 0) for render in renders
            ),
            "cache": [render["cache"] for render in renders],
            "render_seconds": [render["seconds"] for render in renders],
        }

    def _separate_render(self, index: int) -> dict[str, object]:
        if index not in self._separate:
            self._separate[index] = self._run_separate(index)
        return self._separate[index]

    def _run_separate(self, index: int) -> dict[str, object]:
        folder = self._workspace.folder
        name = f"separate-{index + 1}"
        output, report_path = folder / f"{name}.mp4", folder / f"{name}.json"
        command = cli_command(
            "swap",
            "--source", str(self._workspace.source(AB_SOURCES[index])),
            "--target", str(self._workspace.target(AB_TARGET)),
            "--output", str(output),
            # Each render on its own, as without A/B: a fresh cache it fills and never reads.
            "--analysis-cache", str(folder / f"{name}-analysis-cache"),
            *job_arguments(AB_WORKERS, report_path, self._workspace.work_store),
        )  # fmt: skip
        wall, report = run_reported(command, report_path)
        output.unlink()
        return {
            "command": shown(command),
            "wall_seconds": round(wall, 2),
            "startup_seconds": report["startup_seconds"],
            "detector_calls": report["model_calls"].get(DETECTOR, 0),
        }

    def _source_arguments(self, count: int) -> list[str]:
        arguments = []
        for name in AB_SOURCES[:count]:
            arguments += ["--source", str(self._workspace.source(name))]
        return arguments
