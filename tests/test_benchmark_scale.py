"""The scale benchmark's parts, fast: the byte-counting proxy in front of a real S3 server (signed
requests and presigned ranged reads pass, and are counted), the catalog it builds, its plan
(--dry-run) and how it judges a job's figures. The whole harness runs with
`python -m benchmarks.scale --quick` (about a minute on idle cores)."""

import json
import urllib.request
from pathlib import Path

import boto3
import pytest

from benchmarks.byte_proxy import counting_proxy
from benchmarks.scale import main
from benchmarks.scale_catalog import CLIP_SIZE, CatalogShape, build_catalog
from benchmarks.scale_figures import job_figures, projection, targets
from facefusion_ray.media import probe_media
from tests.seaweedfs import S3Server

pytest_plugins = ["tests.s3_server"]


def client_through(server: S3Server, endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
    )


def test_the_proxy_forwards_signed_requests_and_counts_their_bytes(s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket("proxy")
    payload = bytes(range(256)) * 64  # 16 KiB
    with counting_proxy(s3_server.endpoint_url) as proxy:
        client = client_through(s3_server, proxy.endpoint_url)
        client.put_object(Bucket=bucket, Key="a/clip.mp4", Body=payload)
        client.put_object(Bucket=bucket, Key="a/clip.mp4", Body=payload)
        whole = client.get_object(Bucket=bucket, Key="a/clip.mp4")["Body"].read()
        ranged = client.get_object(Bucket=bucket, Key="a/clip.mp4", Range="bytes=100-1123")
        assert ranged["Body"].read() == payload[100:1124]
        # ffmpeg reads a presigned URL: the signature is in the query, the Host is the proxy's.
        url = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "a/clip.mp4"}, ExpiresIn=60
        )
        request = urllib.request.Request(url, headers={"Range": "bytes=0-99"})
        with urllib.request.urlopen(request) as response:
            assert response.status == 206 and response.read() == payload[:100]
        client.head_object(Bucket=bucket, Key="a/clip.mp4")
        counts = proxy.snapshot(settled=True)
    assert whole == payload
    assert counts.bytes_read(bucket) == len(payload) + 1024 + 100
    assert counts.requests[(bucket, "GET")] == 3
    assert counts.requests[(bucket, "HEAD")] == 1
    assert counts.request_bytes[(bucket, "PUT")] >= 2 * len(payload)
    assert counts.writes_by_key[(bucket, "a/clip.mp4")] == 2


def test_the_catalog_is_distinct_short_clips_and_faces(tmp_path: Path) -> None:
    catalog = build_catalog(CatalogShape(clips=2, sources=3, frames=6), tmp_path)
    assert [path.name for path in catalog.sources] == [
        "face_00.png",
        "face_01.png",
        "face_02.png",
    ]
    info = probe_media(catalog.clips[1])
    assert (info.width, info.height, info.frame_count, info.has_audio) == (
        CLIP_SIZE,
        CLIP_SIZE,
        6,
        True,
    )
    contents = {path.read_bytes() for path in [*catalog.clips, *catalog.sources]}
    assert len(contents) == 5
    assert catalog.bytes()["clips"] == sum(path.stat().st_size for path in catalog.clips)


def test_the_dry_run_plans_the_issue_s_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--dry-run"]) == 0
    (full,) = json.loads(capsys.readouterr().out)
    assert full["renders"] == 2400 and full["workers"] == 8
    # 24 frames in chunks of 8; 2,400 renders keep the 8 workers busy without splitting further.
    assert full["chunks_per_render"] == 3 and full["chunks"] == 7_200
    assert main(["--quick", "--dry-run"]) == 0
    (quick,) = json.loads(capsys.readouterr().out)
    assert quick["renders"] == 8 and quick["remove_node_at"] == 0.3
    assert main(["--dry-run", "--clips", "10", "20", "--sources", "2"]) == 0
    assert [run["renders"] for run in json.loads(capsys.readouterr().out)] == [20, 40]
    with pytest.raises(SystemExit):
        main(["--dry-run", "--remove-node-at", "1.5"])


def render(preparation: float, source_calls: int, chunks: int = 2) -> dict:
    return {
        "chunks": chunks,
        "preparation_seconds": preparation,
        "report": {
            "source_model_calls": {"yunet": source_calls} if source_calls else {},
            "peak_memory_bytes": {"driver": 300 * 2**20},
            "stage_seconds": {"decode": 0.5, "encode": 0.25},
        },
    }


def job_report(renders: list[dict]) -> dict:
    return {
        "renders": renders,
        "seconds": 10.0,
        "startup_seconds": 2.0,
        "counts": {"rendered": len(renders), "up to date": 0, "failed": 0},
        "workers_replaced": 0,
        "chunks_dispatched": 2 * len(renders),
        "scheduling_seconds": 0.04,
    }


def test_a_job_s_figures_and_the_targets_follow_from_its_report() -> None:
    figures = job_figures(job_report([render(0.2, 1), render(0.02, 0), render(0.04, 0)]))
    assert figures["preparation_ms_sources_analysed_in_render"]["mean"] == 200.0
    assert figures["preparation_ms_sources_already_analysed"] == {
        "renders": 2,
        "mean": 30.0,
        "median": 30.0,
        "p95": 40.0,
        "total_seconds": 0.06,
    }
    assert figures["scheduling_ms_per_chunk"] == round(40 / 6, 3)
    assert figures["worker_stage_seconds"] == {"decode": 1.5, "encode": 0.75}
    runs = [
        {
            "catalog": {"renders": renders},
            "job_seconds": 10.0 + renders,
            "driver": {"peak_rss_mib": rss},
            "preparation_ms_per_render": {"total_seconds": renders * 0.03},
            "preparation_ms_sources_already_analysed": figures[
                "preparation_ms_sources_already_analysed"
            ],
            "object_store": {"read_over_catalog_bytes": read},
            "chunks_rendered_twice": 0,
        }
        for renders, rss, read in ((100, 300.0, 1.05), (400, 330.0, 1.2))
    ]
    fitted = projection(runs)
    assert fitted["job_seconds"]["projected"] == 10_010.0
    assert fitted["driver_peak_rss_mib"]["per_render"] == 0.1
    assert fitted["driver_peak_rss_mib"]["growth_exponent"] < 0.1  # sub-linear
    judged = targets(runs, fitted)
    assert judged["bytes_read_over_catalog"] == {"worst": 1.2, "target": 1.1, "met": False}
    assert judged["chunks_rendered_twice"]["met"] is True
    assert judged["preparation_ms_after_sources_analysed"]["met"] is True
    assert judged["driver_peak_rss_mib_at_2400_renders"]["value"] == 530.0
    assert judged["driver_peak_rss_mib_at_2400_renders"]["met"] is True
