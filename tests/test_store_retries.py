"""Object-store failures during a job: a transient one (throttling, a 5xx, a dropped
connection) makes the chunk run again after a pause, so the render still finishes; one the
store means (access denied, no such object) fails the render at once with its one line.
The work store is a real S3 server (SeaweedFS) behind a proxy that answers chosen requests
with an error (tests/faulty_proxy.py)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from facefusion_ray.engine.driver import job_options_for
from facefusion_ray.engine.job import run_job
from facefusion_ray.engine.job_report import FAILED, RENDERED
from facefusion_ray.errors import MediaError
from facefusion_ray.media import iter_frames, probe_media
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.pipeline.target_input import open_target, resolve_target
from facefusion_ray.settings import SwapSettings
from facefusion_ray.storage import open_filesystem
from facefusion_ray.storage.errors import StorageError, TransientStorageError
from facefusion_ray.storage.filesystem import translated_errors
from facefusion_ray.storage.ranged_reads import TargetReads
from facefusion_ray.storage.transient_errors import is_transient
from tests.faulty_proxy import Fault, faulty_proxy

if TYPE_CHECKING:
    from tests.s3_server import S3Server

pytest_plugins = ["tests.s3_server"]

SEGMENT = r"/frames-\d+-\d+\.mp4$"


def answer(status: int, code: str) -> ClientError:
    response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PutObject")  # type: ignore[arg-type]


def as_s3fs_raises(cause: BaseException, number: int) -> OSError:
    """What s3fs raises for a botocore answer: an OSError whose cause is that answer."""
    error = OSError(number, str(cause))
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (answer(503, "SlowDown"), True),
        (answer(500, "InternalError"), True),
        (answer(429, "TooManyRequests"), True),
        (answer(503, "503"), True),  # a HEAD: no body, the status is the code
        (as_s3fs_raises(answer(503, "SlowDown"), errno.EBUSY), True),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), True),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:9"), True),
        (ConnectionResetError(104, "Connection reset by peer"), True),
        (TimeoutError(), True),
        (answer(403, "AccessDenied"), False),
        (answer(404, "NoSuchKey"), False),
        (answer(412, "PreconditionFailed"), False),
        (as_s3fs_raises(answer(409, "OperationAborted"), errno.EBUSY), False),
        (PermissionError(13, "denied"), False),
        (OSError(errno.EIO, "local disk"), False),
    ],
)
def test_transient_store_errors_are_told_from_the_store_s_answers(
    error: BaseException, transient: bool
) -> None:
    assert is_transient(error) is transient


def test_a_transient_failure_becomes_a_transient_storage_error(tmp_path: Path) -> None:
    filesystem, path = open_filesystem(str(tmp_path))
    throttled = as_s3fs_raises(answer(503, "SlowDown"), errno.EBUSY)
    with (
        pytest.raises(TransientStorageError, match=r"^cannot write .*: \[Errno 16\]"),
        translated_errors(filesystem, path, "cannot write"),
    ):
        raise throttled
    refused = as_s3fs_raises(answer(403, "AccessDenied"), errno.EACCES)
    with (
        pytest.raises(StorageError) as raised,
        translated_errors(filesystem, path, "cannot write"),
    ):
        raise refused
    assert not isinstance(raised.value, TransientStorageError)


def swap_with_faults(
    s3_server: S3Server, faults: list[Fault], clip: Path, face: Path, tmp_path: Path
) -> tuple[object, list[Fault]]:
    bucket = s3_server.create_bucket("work")
    with faulty_proxy(s3_server.endpoint_url, faults) as proxy:
        storage = {**s3_server.storage_options(), "client_kwargs.endpoint_url": proxy.endpoint_url}
        settings = SwapSettings(chunk_frames=20, workers=1, face_swapper_model="classic")
        output = tmp_path / "out.mp4"
        request = RenderRequest(str(clip), (str(face),), str(output), settings)
        options = job_options_for(
            settings,
            show_progress=False,
            work_store=f"s3://{bucket}/segments",
            storage_options=storage.items(),
        )
        report = run_job([request], options)
    return report, proxy.faults


@pytest.mark.usefixtures("local_ray")
def test_a_throttled_segment_upload_is_retried_and_the_render_finishes(
    s3_server: S3Server, sample_media, short_group_clip: Path, tmp_path: Path
) -> None:
    # Every attempt botocore makes for the first chunk's segment is throttled, twice over.
    throttled = Fault("PUT", SEGMENT, 503, "SlowDown", times=4)
    report, (fault,) = swap_with_faults(
        s3_server, [throttled], short_group_clip, sample_media.source_tom_hanks, tmp_path
    )
    (render,) = report.renders
    assert render.status == RENDERED, render.error
    assert fault.answered == 4
    assert report.chunks_retried_after_store_errors >= 1
    assert probe_media(tmp_path / "out.mp4").frame_count == 40


@pytest.mark.usefixtures("local_ray")
def test_a_refused_segment_upload_fails_the_render_at_once(
    s3_server: S3Server, sample_media, short_group_clip: Path, tmp_path: Path
) -> None:
    refused = Fault("PUT", SEGMENT, 403, "AccessDenied")
    report, (fault,) = swap_with_faults(
        s3_server, [refused], short_group_clip, sample_media.source_tom_hanks, tmp_path
    )
    (render,) = report.renders
    assert render.status == FAILED
    assert render.error is not None and "\n" not in render.error
    assert "cannot write" in render.error and "AccessDenied" in render.error
    assert report.chunks_retried_after_store_errors == 0
    # One request per chunk that reached the upload: nothing asked again.
    assert fault.answered <= 2
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [(503, "SlowDown", True), (500, "InternalError", True), (403, "AccessDenied", False)],
)
def test_ffmpeg_reading_by_range_tells_a_transient_store_error_from_a_refusal(
    s3_server: S3Server, short_group_clip: Path, status: int, code: str, transient: bool
) -> None:
    """A chunk that decodes its frames by range meets the store through ffmpeg, not s3fs: a
    5xx there must be retried like one met by s3fs."""
    bucket = s3_server.create_bucket(f"ranged-faults-{status}")
    location = f"s3://{bucket}/clip.mp4"
    plain = s3_server.storage_options()
    filesystem, path = open_filesystem(location, plain)
    filesystem.put_file(str(short_group_clip), path)
    reads = TargetReads(stage_below_bytes=0)
    info = probe_media(open_target(resolve_target(location, reads, plain), reads, plain))
    with faulty_proxy(s3_server.endpoint_url, [Fault("GET", "clip.mp4", status, code)]) as proxy:
        storage = {**plain, "client_kwargs.endpoint_url": proxy.endpoint_url}
        target = open_target(resolve_target(location, reads, storage), reads, storage)
        with pytest.raises((MediaError, TransientStorageError)) as raised:
            list(iter_frames(target, 5, 3, info))
    assert isinstance(raised.value, TransientStorageError) is transient
    assert "X-Amz-Signature" not in str(raised.value)
