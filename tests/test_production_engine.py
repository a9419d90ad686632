"""The production engine on a real local Ray: recovery from lost workers, resume after a
killed driver, and catalog batches (A/B: test_ab_review_browser.py)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import ray

from facefusion_ray.cli.main import main
from facefusion_ray.engine.driver import job_options_for, run_swap
from facefusion_ray.engine.job import RENDER_ACTOR_PREFIX, run_job
from facefusion_ray.engine.job_report import FAILED, RENDERED, UP_TO_DATE
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.settings import SwapSettings
from facefusion_ray.storage.filesystem import open_filesystem
from tests.media_checks import decoded_frames

pytest_plugins = ["tests.s3_server"]

# Small chunks: a job has many, so there is time to disturb it between the first and last.
SETTINGS = SwapSettings(chunk_frames=4, workers=2, output_video_quality=100)
DEADLINE_SECONDS = 240.0


def assert_same_frames(a: Path, b: Path) -> None:
    frames = 0
    for index, (left, right) in enumerate(zip(decoded_frames(a), decoded_frames(b), strict=True)):
        assert np.array_equal(left, right), f"frame {index} differs"
        frames += 1
    assert frames > 0


def committed_segments(work_store: Path) -> list[Path]:
    return [path for path in work_store.glob("*/frames-*.json")]


def wait_for(condition, what: str, timeout: float = DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def undisturbed(sample_media, short_group_clip, tmp_path_factory) -> Path:
    """The reference render every disturbed run must reproduce exactly."""
    output = tmp_path_factory.mktemp("undisturbed") / "reference.mp4"
    report = run_swap(
        [sample_media.source_tom_hanks], short_group_clip, output, SETTINGS, show_progress=False
    )
    assert report.chunks == 10 and report.faces_swapped > 0
    # Both actors shared the work (none took all of it while the other was starting).
    assert len(report.chunks_by_worker) == 2 and min(report.chunks_by_worker.values()) >= 3
    return output


@pytest.mark.usefixtures("local_ray")
def test_a_killed_actor_s_chunks_run_elsewhere(
    sample_media, short_group_clip, undisturbed, tmp_path
) -> None:
    work_store, output = tmp_path / "work", tmp_path / "killed.mp4"
    request = RenderRequest(
        str(short_group_clip), (str(sample_media.source_tom_hanks),), str(output), SETTINGS
    )
    options = job_options_for(SETTINGS, show_progress=False, work_store=str(work_store))
    reports = []
    job = threading.Thread(target=lambda: reports.append(run_job([request], options)))
    job.start()
    try:
        wait_for(lambda: committed_segments(work_store), "the first segment")
        victims = [
            name for name in ray.util.list_named_actors() if name.startswith(RENDER_ACTOR_PREFIX)
        ]
        assert victims, "the job's actors are named"
        ray.kill(ray.get_actor(victims[0]))
    finally:
        job.join(DEADLINE_SECONDS)
    (report,) = reports
    (render,) = report.renders
    assert render.status == RENDERED, render.error
    assert report.workers_replaced >= 1
    assert render.report is not None and render.report.frames_total == 40
    assert_same_frames(output, undisturbed)


def test_a_lost_node_s_chunks_run_on_the_others(
    sample_media, short_group_clip, undisturbed, tmp_path
) -> None:
    """A Ray cluster of three nodes loses the worker node holding an actor mid-run."""
    output, work_store = tmp_path / "lost_node.mp4", tmp_path / "work"
    script = tmp_path / "lose_a_node.py"
    script.write_text(
        LOSE_A_NODE.format(
            target=str(short_group_clip),
            source=str(sample_media.source_tom_hanks),
            output=str(output),
            work_store=str(work_store),
        )
    )
    environment = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    finished = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        env=environment,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    assert result["removed_node_hosted_an_actor"]
    assert result["status"] == RENDERED, result["error"]
    assert result["workers_replaced"] >= 1
    assert_same_frames(output, undisturbed)


LOSE_A_NODE = """
import dataclasses, json, threading, time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from facefusion_ray.engine.driver import job_options_for
from facefusion_ray.engine.job import RENDER_ACTOR_PREFIX, run_job
from facefusion_ray.pipeline.render_request import RenderRequest
from tests.test_production_engine import SETTINGS

cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 0}})
workers = [cluster.add_node(num_cpus=1) for _ in range(3)]
ray.init(address=cluster.address, logging_level="WARNING")
cluster.wait_for_nodes()
# One frame a chunk (the frames do not depend on the chunk size): after the first segment is
# committed, 39 chunks remain, so the node is lost while its actor still has work. With 4 frames
# a chunk the others could finish before the loss was noticed, and nothing was replaced.
settings = dataclasses.replace(SETTINGS, chunk_frames=1)
request = RenderRequest({target!r}, ({source!r},), {output!r}, settings)
options = job_options_for(settings, show_progress=False, work_store={work_store!r})
reports = []
job = threading.Thread(target=lambda: reports.append(run_job([request], options)))
job.start()
while not list(Path({work_store!r}).glob("*/frames-*.json")):
    time.sleep(0.05)
names = [name for name in ray.util.list_named_actors() if name.startswith(RENDER_ACTOR_PREFIX)]
hosts = {{ray.get(ray.get_actor(name).ready.remote())["node_id"] for name in names}}
victim = next(node for node in workers if node.node_id in hosts)
cluster.remove_node(victim)
job.join()
render = reports[0].renders[0]
print(json.dumps({{
    "removed_node_hosted_an_actor": True,
    "status": render.status,
    "error": render.error,
    "workers_replaced": reports[0].workers_replaced,
}}))
ray.shutdown()
cluster.shutdown()
"""


def test_a_killed_driver_resumes_with_the_finished_chunks(
    sample_media, short_group_clip, undisturbed, tmp_path
) -> None:
    output, work_store = tmp_path / "resumed.mp4", tmp_path / "work"
    report_path = tmp_path / "report.json"
    command = [
        sys.executable,
        "-m",
        "facefusion_ray.cli.main",
        "swap",
        "--source",
        str(sample_media.source_tom_hanks),
        "--target",
        str(short_group_clip),
        "--output",
        str(output),
        "--chunk-frames",
        "4",
        "--output-video-quality",
        "100",
        "--work-store",
        str(work_store),
        "--no-progress",
        "--report",
        str(report_path),
    ]
    environment = {**os.environ, "RAY_ADDRESS": ""}
    driver = subprocess.Popen(
        command, env=environment, start_new_session=True, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: len(committed_segments(work_store)) >= 2, "two finished segments")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    assert not output.exists(), "a killed render must not leave an output"
    finished_before = len(committed_segments(work_store))
    assert 2 <= finished_before < 10
    rerun = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["chunks_skipped"] >= finished_before - 1  # the kill may tear the newest one
    assert report["chunks_skipped"] >= 2
    assert report["frames_total"] == 40
    assert_same_frames(output, undisturbed)
    # A third run finds the published output and renders nothing.
    again = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0
    third = json.loads(report_path.read_text())
    assert "already rendered" in third["notes"][0] and third["up_to_date"]
    assert "up to date" in again.stdout
    assert third["frames_total"] == 40 and third["faces_swapped"] == report["faces_swapped"]
    assert third["model_calls"] == {}


def test_a_batch_with_a_corrupt_target_finishes_the_others(
    sample_media, short_group_clip, tmp_path, capsys
) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    spec = tmp_path / "catalog.yaml"
    spec.write_text(
        "targets:\n"
        f"  - {short_group_clip}\n"
        f"  - {corrupt}\n"
        f"sources: [{sample_media.source_tom_hanks}]\n"
        "output: out/{target_stem}__{source_stem}.mp4\n"
        "options: {chunk_frames: 10}\n"
        "workers: 2\n"
        "report: out/report.json\n"
    )
    exit_code = main(["batch", str(spec), "--no-progress", "--work-store", str(tmp_path / "w")])
    assert exit_code != 0
    good = tmp_path / "out" / f"{short_group_clip.stem}__{sample_media.source_tom_hanks.stem}.mp4"
    bad = tmp_path / "out" / f"corrupt__{sample_media.source_tom_hanks.stem}.mp4"
    assert good.exists() and not bad.exists()
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    statuses = {Path(render["target"]).name: render["status"] for render in report["renders"]}
    assert statuses == {short_group_clip.name: RENDERED, "corrupt.mp4": FAILED}
    assert "corrupt.mp4" in capsys.readouterr().err
    summary = (tmp_path / "out" / "report.txt").read_text()
    assert "1 rendered" in summary and "1 failed" in summary
    # The same batch again: the good render is up to date, the corrupt one fails again.
    assert main(["batch", str(spec), "--no-progress", "--work-store", str(tmp_path / "w")]) != 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    statuses = {Path(render["target"]).name: render["status"] for render in report["renders"]}
    assert statuses == {short_group_clip.name: UP_TO_DATE, "corrupt.mp4": FAILED}


@pytest.mark.usefixtures("local_ray")
def test_corrupt_frames_fail_their_video_by_range_while_the_others_finish(
    sample_media, short_group_clip, tmp_path
) -> None:
    from tests.media_factory import make_clip

    clip = make_clip(
        tmp_path / "damaged_source.mp4",
        frames=60,
        size="320x240",
        audio=False,
        video_args=("-c:v", "libx264", "-movflags", "+faststart", "-g", "10"),
    )
    data = bytearray(clip.read_bytes())
    # Garble the media data of the later frames; the index at the front stays intact.
    start, end = int(len(data) * 0.6), int(len(data) * 0.8)
    data[start:end] = np.random.default_rng(7).bytes(end - start)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    source = (str(sample_media.source_tom_hanks),)
    settings = SwapSettings(chunk_frames=10, workers=2)
    requests = [
        RenderRequest(str(damaged), source, str(tmp_path / "damaged_out.mp4"), settings),
        RenderRequest(str(short_group_clip), source, str(tmp_path / "good_out.mp4"), settings),
    ]
    options = job_options_for(settings, show_progress=False, work_store=str(tmp_path / "work"))
    damaged_render, good_render = run_job(requests, options).renders
    assert damaged_render.status == FAILED
    assert damaged_render.error is not None
    assert "damaged.mp4: frames " in damaged_render.error
    assert "truncated video" in damaged_render.error
    assert not (tmp_path / "damaged_out.mp4").exists()
    assert good_render.status == RENDERED
    assert len(list(decoded_frames(tmp_path / "good_out.mp4"))) == 40


def test_swap_with_cache_and_work_store_on_s3_through_storage_options(
    sample_media, short_group_clip, s3_server, tmp_path, monkeypatch, capsys
) -> None:
    """No AWS variables: the endpoint and credentials come only from --storage-option."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    options = s3_server.storage_options()
    bucket = s3_server.create_bucket("engine")
    storage_arguments = [f"--storage-option={key}={value}" for key, value in options.items()]

    def swap(source: Path, output: Path, report: Path) -> dict:
        arguments = [
            "swap",
            "--source", str(source),
            "--target", str(short_group_clip),
            "--output", str(output),
            "--chunk-frames", "10",
            "--analysis-cache", f"s3://{bucket}/analysis",
            "--work-store", f"s3://{bucket}/work",
            "--report", str(report),
            "--no-progress",
            *storage_arguments,
        ]  # fmt: skip
        assert main(arguments) == 0, capsys.readouterr().err
        return json.loads(report.read_text())

    first = swap(sample_media.source_tom_hanks, tmp_path / "tom.mp4", tmp_path / "tom.json")
    second = swap(sample_media.source_astronaut, tmp_path / "ast.mp4", tmp_path / "ast.json")
    assert first["cache"] == {"hits": 0, "misses": 40}
    assert second["cache"] == {"hits": 40, "misses": 0}
    filesystem, root = open_filesystem(f"s3://{bucket}", options)
    stored = filesystem.find(root)
    assert any(path.endswith(".parquet") for path in stored)
    # Published renders leave only their records in the work store, no segments.
    work = [path for path in stored if "/work/" in path]
    assert work and all("/work/done/" in path for path in work)
    assert options["secret"] not in capsys.readouterr().err


@pytest.mark.usefixtures("local_ray")
def test_two_chunks_on_two_workers_run_one_on_each(
    sample_media, short_group_clip, tmp_path
) -> None:
    """The pool is placed before work is handed out, and no chunk queues behind a busy actor
    while another is idle."""
    settings = SwapSettings(chunk_frames=64, workers=2)
    report = run_swap(
        [sample_media.source_tom_hanks],
        short_group_clip,
        tmp_path / "balanced.mp4",
        settings,
        show_progress=False,
        work_store=str(tmp_path / "work"),
    )
    assert report.chunks == 2
    assert sorted(report.chunks_by_worker.values()) == [1, 1]
