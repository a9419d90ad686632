"""The notebooks execute on small inputs and produce their plots; the committed notebooks carry
no outputs. Executed notebooks stay in memory: nothing is written back into the repository."""

import copy
import json
from pathlib import Path

import cv2
import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from notebooks import plots
from notebooks.strip_outputs import notebook_paths, strip, unstripped_cells

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL_TIMEOUT_SECONDS = 240


def execute(name: str) -> nbformat.NotebookNode:
    """Runs a notebook in a fresh python3 kernel (this venv's), from the notebooks folder."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=KERNEL_TIMEOUT_SECONDS,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    return notebook


def shown_images(notebook: nbformat.NotebookNode) -> int:
    return sum(
        any(kind in output.get("data", {}) for kind in ("image/png", "image/jpeg"))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def printed(notebook: nbformat.NotebookNode) -> str:
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stdout"
    )


def assert_real_picture(path: Path) -> None:
    """A decodable PNG of a plot or a sheet: not tiny, not blank."""
    assert path.exists(), f"{path} was not written"
    image = cv2.imread(str(path))
    assert image is not None, f"{path} does not decode"
    height, width = image.shape[:2]
    assert height >= 200 and width >= 300, (path, image.shape)
    assert float(image.std()) > 5.0, f"{path} is blank"
    packed = image.astype(np.uint32)
    colours = np.unique(packed[..., 0] << 16 | packed[..., 1] << 8 | packed[..., 2])
    assert len(colours) > 16, f"{path} has only {len(colours)} colours"


def test_committed_notebooks_have_no_outputs() -> None:
    paths = notebook_paths()
    assert {path.name for path in paths} >= {"ab_comparison.ipynb", "performance.ipynb"}
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert unstripped_cells(notebook) == [], (
            f"{path.name} was saved with outputs: run .venv/bin/python notebooks/strip_outputs.py"
        )


@pytest.mark.timeout(300)
def test_performance_notebook_plots_the_committed_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEFUSION_RAY_BENCHMARK_RESULTS", str(plots.BENCHMARK_RESULTS))
    monkeypatch.setenv("FACEFUSION_RAY_NOTEBOOK_OUTPUT", str(tmp_path))
    notebook = execute("performance.ipynb")
    names = ("throughput", "cache_speedup", "scaling", "memory_against_length", "stage_shares")
    for name in names:
        assert_real_picture(tmp_path / "performance" / f"{name}.png")
    assert shown_images(notebook) == len(names)
    assert "skipped" not in printed(notebook)
    # An executed notebook is what the strip script exists for.
    assert unstripped_cells(notebook)
    assert strip(notebook) and unstripped_cells(notebook) == []


def synthetic_results() -> dict[str, dict[str, object]]:
    """The committed results' scenarios plus the shapes of the A/B and stand-in swapper ones."""
    run = plots.load_benchmark_run(plots.BENCHMARK_RESULTS)
    # Recorded A/B and stand-in scenarios are replaced by these known ones.
    scenarios = {
        name: dict(result)
        for name, result in run.scenarios.items()
        if not name.startswith(("neural_", "ab_"))
    }
    engine = scenarios["720p_engine_2_workers"]
    for name, workers, wall in (
        ("neural_10gflop_engine_1_worker_cold", 1, 30.0),
        ("neural_10gflop_engine_1_worker_warm_new_source", 1, 24.0),
        ("neural_10gflop_engine_2_workers_cold", 2, 20.0),
        ("neural_10gflop_engine_2_workers_warm_new_source", 2, 15.0),
    ):
        scenario = copy.deepcopy(engine)
        scenario.update(frames=30, workers=workers, wall_seconds=wall, frames_per_second=30 / wall)
        scenarios[name] = scenario
    for count, ab_wall, separate_wall in ((1, 8.0, 7.0), (2, 10.0, 14.0), (8, 22.0, 56.0)):
        scenarios["ab_1_source" if count == 1 else f"ab_{count}_sources"] = {
            "sources": count,
            "frames": 120,
            "ab": {"wall_seconds": ab_wall},
            "separate": {"total_wall_seconds": separate_wall},
        }
    return scenarios


def test_plots_cover_ab_and_standin_scenarios_and_skip_missing_ones(tmp_path: Path) -> None:
    scenarios = synthetic_results()
    assert [pair[0] for pair in plots.cache_pairs(scenarios)] == [
        "720p_cache",
        "720p_reference_cache",
        "neural_10gflop_engine_1_worker",
        "neural_10gflop_engine_2_workers",
    ]
    assert [pair[0] for pair in plots.worker_pairs(scenarios)] == [
        "720p_engine",
        "neural_10gflop_engine_cold",
        "neural_10gflop_engine_warm_new_source",
    ]
    assert plots.ab_points(scenarios) == [(1, 8.0, 7.0), (2, 10.0, 14.0), (8, 22.0, 56.0)]
    assert list(plots.length_series(scenarios)) == ["720p, 2 workers"]
    for plot in (
        plots.plot_throughput,
        plots.plot_cache_speedup,
        plots.plot_scaling,
        plots.plot_memory_against_length,
        plots.plot_stage_shares,
    ):
        path = plot(scenarios, tmp_path / f"{plot.__name__}.png")
        assert path is not None
        assert_real_picture(path)
    # Results with one scenario: what needs pairs or lengths is skipped, the rest is drawn.
    only = {"720p_sequential_baseline": scenarios["720p_sequential_baseline"]}
    assert plots.plot_cache_speedup(only, tmp_path / "none.png") is None
    assert plots.plot_scaling(only, tmp_path / "none.png") is None
    assert plots.plot_memory_against_length(only, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
    assert plots.plot_throughput(only, tmp_path / "throughput_one.png") is not None
    # A results folder stands for its newest file.
    (tmp_path / "results").mkdir()
    for day in ("2026-01-01", "2026-01-02"):
        document = {"recorded_at": day, "machine": {}, "scenarios": only}
        (tmp_path / "results" / f"{day}-latest.json").write_text(json.dumps(document))
    assert plots.load_benchmark_run(tmp_path / "results").recorded_at == "2026-01-02"


@pytest.mark.timeout(300)
def test_ab_notebook_renders_the_sheet_and_the_similarity_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEFUSION_RAY_NOTEBOOK_FRAMES", "24")
    monkeypatch.setenv("FACEFUSION_RAY_NOTEBOOK_WORKERS", "2")
    monkeypatch.setenv("FACEFUSION_RAY_NOTEBOOK_CHUNK_FRAMES", "8")
    monkeypatch.setenv("FACEFUSION_RAY_NOTEBOOK_OUTPUT", str(tmp_path))
    notebook = execute("ab_comparison.ipynb")
    output = tmp_path / "ab_comparison"
    assert_real_picture(output / "contact_sheet.png")
    assert_real_picture(output / "similarity_over_time.png")
    assert_real_picture(output / "face_sheet.jpg")
    assert (output / "report.html").exists()
    assert shown_images(notebook) == 3
    text = printed(notebook)
    for source in ("source_tom_hanks", "source_astronaut", "group_photo"):
        assert f"{source}: rendered" in text
        assert f"{source}: mean " in text
