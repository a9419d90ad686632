"""Finished segments under deterministic keys, so a stopped job resumes where it was.

Layout under the work store (a local folder by default, any fsspec URL on a cluster whose
nodes do not share a disk):

    <root>/<render_key>/frames-<start>-<count>.mp4    an encoded chunk
    <root>/<render_key>/frames-<start>-<count>.json   {frames, bytes, sha256, encoder...}: last,
                                                      so its presence commits the segment
    <root>/done/<render_key>.json                     the output a finished render published

A segment without its record, or whose bytes no longer match it, counts as missing.
"""

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from facefusion_ray import storage
from facefusion_ray.assets.fetch import file_sha256
from facefusion_ray.atomic_files import PRIVATE_FILE_MODE, PRIVATE_FOLDER_MODE, make_private_folders
from facefusion_ray.errors import MediaError
from facefusion_ray.media.encode import SEGMENT_SUFFIX
from facefusion_ray.paths import cache_root
from facefusion_ray.pipeline.chunks import Chunk
from facefusion_ray.pipeline.content_keys import chunk_name
from facefusion_ray.pipeline.swap_report import ChunkResult
from facefusion_ray.storage.errors import ObjectNotFoundError
from facefusion_ray.storage.locations import publish_output

logger = logging.getLogger(__name__)

WORK_STORE_ENV = "FACEFUSION_RAY_WORK_STORE"
_RECORD_SUFFIX = ".json"
_DONE_FOLDER = "done"


def default_work_store() -> str:
    return os.environ.get(WORK_STORE_ENV) or str(cache_root() / "segments")


@dataclass(frozen=True)
class SegmentRecord:
    frames: int
    bytes: int
    sha256: str
    # What the chunk counted, so a resumed render still reports the whole video.
    frames_with_faces: int = 0
    frames_swapped: int = 0
    faces_swapped: int = 0
    # The encoder that made the segment ("" in records older than the field: the one asked for).
    encoder: str = ""

    def as_chunk_result(self, index: int) -> ChunkResult:
        return ChunkResult(
            index,
            self.frames,
            self.frames_with_faces,
            self.faces_swapped,
            0.0,
            frames_swapped=self.frames_swapped,
            encoder=self.encoder,
        )


class SegmentStore:
    """The segments of one render; cheap to build, so actors make their own from the URL."""

    def __init__(
        self,
        url: str | None,
        render_key: str,
        storage_options: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url or default_work_store()
        self.render_key = render_key
        self._storage_options = dict(storage_options or {})
        self._filesystem, self._root = storage.open_filesystem(self.url, storage_options)
        self._folder = storage.join(self._root, render_key)

    def _segment_path(self, chunk: Chunk) -> str:
        return storage.join(self._folder, chunk_name(chunk) + SEGMENT_SUFFIX)

    def _segment_location(self, chunk: Chunk) -> str:
        """The segment as a path (local store) or a URL (object store)."""
        if storage.is_local(self._filesystem):
            return self._segment_path(chunk)
        name = chunk_name(chunk) + SEGMENT_SUFFIX
        return "/".join([self.url.rstrip("/"), self.render_key, name])

    def _record_path(self, chunk: Chunk) -> str:
        return storage.join(self._folder, chunk_name(chunk) + _RECORD_SUFFIX)

    def _done_path(self) -> str:
        return storage.join(self._root, _DONE_FOLDER, self.render_key + _RECORD_SUFFIX)

    def put_segment(self, chunk: Chunk, local_file: Path, result: ChunkResult) -> None:
        """Store an encoded chunk (the local file is moved away), then its record (the
        commit)."""
        record = SegmentRecord(
            result.frames,
            local_file.stat().st_size,
            file_sha256(local_file),
            result.frames_with_faces,
            result.frames_swapped,
            result.faces_swapped,
            result.encoder,
        )
        # Moved, not copied, when the work store is on the actor's disk.
        self._make_private_folder(self._folder)
        publish_output(local_file, self._segment_location(chunk), self._storage_options)
        self._make_private(self._segment_path(chunk))
        payload = json.dumps(record.__dict__).encode()
        storage.put_bytes_atomic(self._filesystem, payload, self._record_path(chunk))
        self._make_private(self._record_path(chunk))

    def _make_private_folder(self, folder: str) -> None:
        """Segments are face-swapped video: on a local disk, 0700 folders and 0600 files like
        the analysis cache (the folder keeps a file private until its chmod)."""
        if storage.is_local(self._filesystem):
            make_private_folders(Path(folder))
            os.chmod(folder, PRIVATE_FOLDER_MODE)

    def _make_private(self, path: str) -> None:
        if storage.is_local(self._filesystem):
            os.chmod(path, PRIVATE_FILE_MODE)

    def finished(self, chunks: Sequence[Chunk]) -> dict[int, SegmentRecord]:
        """The chunks (by index) whose segment is stored whole and matches its record."""
        present = set(storage.list_files(self._filesystem, self._folder))
        finished: dict[int, SegmentRecord] = {}
        for chunk in chunks:
            segment, record_path = self._segment_path(chunk), self._record_path(chunk)
            if segment not in present or record_path not in present:
                continue
            record = self._read_record(record_path)
            if (
                record is not None
                and record.frames == chunk.count
                and self._matches(segment, record)
            ):
                finished[chunk.index] = record
            else:
                logger.warning("segment %s does not match its record; rendering it again", segment)
        return finished

    def _read_record(self, path: str) -> SegmentRecord | None:
        try:
            fields = json.loads(storage.read_bytes(self._filesystem, path))
            return SegmentRecord(
                int(fields["frames"]),
                int(fields["bytes"]),
                str(fields["sha256"]),
                int(fields.get("frames_with_faces", 0)),
                int(fields.get("frames_swapped", 0)),
                int(fields.get("faces_swapped", 0)),
                str(fields.get("encoder", "")),
            )
        except (ObjectNotFoundError, ValueError, KeyError, TypeError):
            return None

    def _matches(self, segment: str, record: SegmentRecord) -> bool:
        if storage.object_size(self._filesystem, segment) != record.bytes:
            return False
        # A local segment is cheap to hash; a remote one is hashed when it is fetched.
        if storage.is_local(self._filesystem):
            return file_sha256(Path(segment)) == record.sha256
        return True

    def encoders(self, chunks: Sequence[Chunk], requested: str) -> list[str]:
        """The encoder that made each chunk's segment, in order (`requested` for old records)."""
        records = [self._read_record(self._record_path(chunk)) for chunk in chunks]
        return [record.encoder if record and record.encoder else requested for record in records]

    @contextmanager
    def local_segments(self, chunks: Sequence[Chunk]) -> Iterator[list[Path]]:
        """Local files of the chunks' segments, in order, checked against their records."""
        with tempfile.TemporaryDirectory(prefix="facefusion-ray-segments-") as scratch:
            paths: list[Path] = []
            for chunk in chunks:
                record = self._read_record(self._record_path(chunk))
                if record is None:
                    raise MediaError(f"segment of frames {describe(chunk)} is missing")
                if storage.is_local(self._filesystem):
                    path = Path(self._segment_path(chunk))
                else:
                    path = Path(scratch) / (chunk_name(chunk) + SEGMENT_SUFFIX)
                    storage.download(self._filesystem, self._segment_path(chunk), path)
                if not path.is_file():
                    raise MediaError(f"segment of frames {describe(chunk)} is missing")
                if file_sha256(path) != record.sha256:
                    raise MediaError(f"segment of frames {describe(chunk)} changed after writing")
                paths.append(path)
            yield paths

    def published_output(self) -> dict[str, object] | None:
        """What a finished render of this key published, if anything."""
        try:
            loaded = json.loads(storage.read_bytes(self._filesystem, self._done_path()))
        except (ObjectNotFoundError, ValueError):
            return None
        return loaded if isinstance(loaded, dict) else None

    def record_published(
        self, output: str, identity: Mapping[str, object], counts: Mapping[str, int]
    ) -> None:
        """`identity` (bytes, sha256, an object store's etag) tells a later run whether the
        output is still what was published; `counts` (frames, faces...) let it report the
        output it does not redo."""
        record = {"output": output, **identity, "counts": dict(counts)}
        payload = json.dumps(record).encode()
        self._make_private_folder(str(PurePosixPath(self._done_path()).parent))
        storage.put_bytes_atomic(self._filesystem, payload, self._done_path())
        self._make_private(self._done_path())

    def discard_segments(self) -> None:
        """Drop the render's segments once its output is published."""
        if storage.is_local(self._filesystem):
            shutil.rmtree(self._folder, ignore_errors=True)
            return
        for path in storage.list_files(self._filesystem, self._folder):
            storage.remove(self._filesystem, path)


def describe(chunk: Chunk) -> str:
    return f"{chunk.start}-{chunk.end - 1}"
