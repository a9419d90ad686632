"""How a render reads its target: a local file in place, a small remote object staged whole, or
a large one read by range through a signed URL (signed anew for each use, never logged).

The driver resolves a target once (`resolve_target`: one metadata request for a remote one);
each chunk, the probe and the final audio remux then `open_target` it, which signs a fresh URL
for a remote target read by range. Facts that need the whole packet index (the frame count,
each frame's time) come from a local stand-in holding only the object's index
(`media.index_copy`), made once per node and object version.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from filelock import FileLock

from facefusion_ray.atomic_files import PRIVATE_FOLDER_MODE, temporary_file_beside
from facefusion_ray.cache import video_fingerprint
from facefusion_ray.media import MediaInfo, probe_media
from facefusion_ray.media.container_header import ContainerHeader, cached_container_header
from facefusion_ray.media.index_copy import write_index_copy
from facefusion_ray.media.remote_media import MediaSource, RemoteMedia
from facefusion_ray.paths import cache_root
from facefusion_ray.settings import IMAGE_SUFFIXES
from facefusion_ray.storage.locations import STAGED_FOLDER_NAME, is_remote, stage_input
from facefusion_ray.storage.ranged_reads import (
    CONTENT_IDENTITY,
    RemoteObject,
    TargetReads,
    check_unchanged,
    content_sha256,
    range_reader,
    remote_object,
    signed_url,
)

# From this size the driver probes a target that the nodes stage whole by range, rather than
# downloading it too. The probe's ranged reads (the index, the audio, ffmpeg's first requests
# of fixed sizes) are measured at 0.8 MB of a 6.2 MB clip and 0.9 MB of a 20.7 MB one, but
# 52 KB of a 14 KB one: below about this size, downloading is the cheaper read.
PROBE_BY_RANGE_FROM_BYTES = 2 * 1024 * 1024
# From this size the driver reads a remote target's audio for the final mux by range (its
# index stand-in), rather than downloading it: that costs a 16 KiB window plus the audio,
# 24 KB of a 14 KB clip but 25 KB of a 0.76 MB one.
AUDIO_BY_RANGE_FROM_BYTES = 64 * 1024
_INDEX_COPY_PREFIX = "index-"
# Beside an index stand-in that also holds the data of every track but video (its audio).
_WITH_AUDIO_MARK = "with-audio"


@dataclass(frozen=True)
class TargetInput:
    """A resolved target: `local` when this process reads it from a local file (the target
    itself or its staged copy), `remote` for an object-store target (its version), which the
    chunks read by range unless it is `staged_on_nodes`. Plain data: travels to the actors."""

    location: str
    local: Path | None = None
    remote: RemoteObject | None = None
    # A remote target's container header as the driver's probe read it.
    header: ContainerHeader | None = None
    # A small remote target: each node that renders it downloads it whole.
    staged_on_nodes: bool = False

    @property
    def read_by_range(self) -> bool:
        """The chunks read the (remote) target by range."""
        return self.remote is not None and not self.staged_on_nodes

    @property
    def staged_identity(self) -> str | None:
        """What names the copy each node that renders this target stages, so chunks can go
        where it already is; None when nothing is staged (a local file is read in place, a
        large remote one by range)."""
        if self.remote is None or not self.staged_on_nodes:
            return None
        return self.remote.fingerprint


def resolve_target(
    location: str,
    reads: TargetReads,
    storage_options: Mapping[str, str] | None = None,
    *,
    probed_on_a_node: bool = False,
) -> TargetInput:
    """Local targets as today; remote ones by their metadata, staged whole on the nodes when
    small or an image (an image is read whole by its decoder anyway). The driver downloads
    images, and the smallest videos unless `probed_on_a_node` (a node stages and probes the
    video for the driver: see `NodeProbe`); it probes the others by range."""
    if not is_remote(location):
        return TargetInput(location, local=stage_input(location, storage_options))
    remote = remote_object(location, storage_options)
    is_image = posixpath.splitext(location)[1].lower() in IMAGE_SUFFIXES
    if not is_image and remote.size >= reads.stage_below_bytes:
        return TargetInput(location, remote=remote)
    local = None
    if is_image or (remote.size < PROBE_BY_RANGE_FROM_BYTES and not probed_on_a_node):
        local = stage_input(location, storage_options, remote.etag)
    return TargetInput(location, local, remote, staged_on_nodes=True)


@dataclass(frozen=True)
class NodeProbeAnswer:
    """What a node that staged a target found: the probe, and the node that now holds it."""

    info: MediaInfo
    node: str


class NodeProbe(Protocol):
    """Has a video that the nodes stage whole staged and probed on one of them, so the driver
    never reads it. The engine gives one; a single process has none."""

    def start(self, target: TargetInput, max_pixels: int | None) -> None:
        """Ask for it now, to be answered later."""

    def answer(self, target: TargetInput, max_pixels: int | None) -> NodeProbeAnswer | None:
        """Its probe and home node; None when no node could be asked."""


def probe_staged_copy(
    target: TargetInput, storage_options: Mapping[str, str] | None, max_pixels: int | None
) -> MediaInfo:
    """On the node that will render it: stage `target` whole (kept for the chunks that
    follow on this node) and probe the copy."""
    return probe_media(stage_planned_version(target, storage_options), max_pixels)


def stage_planned_version(
    target: TargetInput, storage_options: Mapping[str, str] | None = None
) -> Path:
    """The local copy of a target staged whole: MediaError when a remote one is no longer the
    version its job planned with (its chunks would mix two versions under one key)."""
    planned_etag = None if target.remote is None else target.remote.etag
    return stage_input(target.location, storage_options, planned_etag)


def open_target(
    target: TargetInput,
    reads: TargetReads,
    storage_options: Mapping[str, str] | None = None,
    *,
    with_index: bool = False,
    check_version: bool = False,
) -> MediaSource:
    """What ffmpeg reads: the local file, or a freshly signed URL valid for
    `reads.signed_url_seconds`. `with_index`: also make this node's index stand-in (needed
    to probe, or to decode a video whose frames are not on a constant-rate grid).
    `check_version`: fail when the object is no longer the version the job planned with."""
    if target.local is not None:
        return target.local
    remote = target.remote
    assert remote is not None
    if check_version and remote.version_id is None:
        check_unchanged(remote, storage_options)
    index = index_copy(remote, storage_options) if with_index else None
    return RemoteMedia(
        url=signed_url(remote, reads.signed_url_seconds, storage_options),
        location=remote.location,
        version=remote.fingerprint,
        index_copy=None if index is None else str(index),
        header=target.header,
    )


def with_header(target: TargetInput, probed: MediaSource) -> TargetInput:
    """`target` carrying the header its probe read (`probed` is what the probe opened)."""
    if not isinstance(probed, RemoteMedia):
        return target
    return replace(target, header=cached_container_header(probed))


def target_fingerprint(
    target: TargetInput, reads: TargetReads, storage_options: Mapping[str, str] | None = None
) -> str:
    """The target's identity in the keys. Local targets: the SHA-256 of their content, as
    always. Remote ones: their metadata identity, or with `content` identity the SHA-256 of
    their content (hashed from the staged copy, else streamed once by the driver)."""
    if target.remote is None or reads.identity == CONTENT_IDENTITY:
        if target.local is not None:
            return video_fingerprint(target.local)
        return content_sha256(target.location, storage_options)
    return target.remote.fingerprint


def index_copy(remote: RemoteObject, storage_options: Mapping[str, str] | None) -> Path | None:
    """This node's index stand-in of `remote` (made once per version, sparse on disk), or
    None when the object is not an MP4/MOV file (its packets are then scanned by range)."""
    digest = hashlib.sha256(f"index\n{remote.fingerprint}".encode()).hexdigest()
    root = cache_root() / STAGED_FOLDER_NAME
    folder = root / digest
    copy = folder / f"{_INDEX_COPY_PREFIX}{posixpath.basename(remote.location)}"
    absent = folder / "not-indexable"
    root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER_MODE)
    with FileLock(str(root / f"{digest}.lock")):
        if copy.is_file():
            return copy
        if absent.is_file():
            return None
        folder.mkdir(exist_ok=True, mode=PRIVATE_FOLDER_MODE)
        with temporary_file_beside(copy) as temporary:
            reader = range_reader(remote, storage_options)
            written = write_index_copy(reader, remote.size, temporary)
            if written is not None:
                if written.other_tracks:
                    (folder / _WITH_AUDIO_MARK).touch()
                temporary.replace(copy)
                return copy
        absent.touch()
        return None


def audio_source(
    target: TargetInput, reads: TargetReads, storage_options: Mapping[str, str] | None = None
) -> MediaSource:
    """Where the final assembly reads the target's audio: a remote target's index stand-in
    when that holds the audio data, else the target itself (downloaded when it is so small
    that reading its index and audio by range would cost more)."""
    if target.local is None and target.remote is not None:
        if target.staged_on_nodes and target.remote.size < AUDIO_BY_RANGE_FROM_BYTES:
            return stage_planned_version(target, storage_options)
        copy = index_copy(target.remote, storage_options)
        if copy is not None and (copy.parent / _WITH_AUDIO_MARK).is_file():
            return copy
    return open_target(target, reads, storage_options)
