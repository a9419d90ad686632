"""Content integrity of a cached chunk: a SHA-256 of every value it holds, written in its schema
metadata and checked on every read, and sanity bounds on the numbers read back.

The frame fingerprint proves that a row belongs to its frame; this digest proves that the row's
content is what the writer stored. It is computed from the decoded columns, not from the file's
bytes, so it covers what a reader actually uses whatever Parquet's encoding; a flipped byte in a
data page, a dictionary, the footer or the metadata itself changes either the decoded values or
the stored digest. Parquet's own page CRCs are written too and catch most damage earlier.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow as pa

from facefusion_ray.cache.schema import InvalidAnalysisData

METADATA_CONTENT_SHA256 = b"facefusion_ray.content_sha256"
METADATA_FRAME_SIZE = b"facefusion_ray.frame_size"
_STRING_COLUMNS = ("video_fingerprint", "frame_fingerprint", "analysis_key")
# Without a known frame size coordinates must still be plausible pixel positions.
_UNKNOWN_FRAME_SIDE = 100_000
# Faces may extend beyond the frame (a cropped head); not by more than a frame on any side.
_MARGIN_FRAMES = 1.0
_COORDINATE_FIELDS = ("bbox", "landmarks_5", "landmarks_68")
# Face field name -> (validity per face, float32 values per face, invalid rows zeroed).
FaceFields = dict[str, tuple[np.ndarray, np.ndarray]]


class DamagedChunk(InvalidAnalysisData):
    """A chunk whose content is not what its writer stored, or holds impossible values."""


def seal(table: pa.Table, frame_size: tuple[int, int] | None) -> pa.Table:
    """The table with its content digest and frame size (width, height; 0x0 unknown) added to
    the schema metadata."""
    width, height = frame_size or (0, 0)
    metadata = dict(table.schema.metadata or {})
    metadata[METADATA_FRAME_SIZE] = f"{int(width)}x{int(height)}".encode()
    metadata[METADATA_CONTENT_SHA256] = content_digest(table).encode()
    return table.replace_schema_metadata(metadata)


def check_sealed(table: pa.Table) -> tuple[int, int]:
    """Raises DamagedChunk unless the content matches its digest and every number is sane;
    returns the frame size the chunk was written for."""
    metadata = table.schema.metadata or {}
    stored = metadata.get(METADATA_CONTENT_SHA256, b"").decode("ascii", "replace")
    if len(stored) != 64:
        raise DamagedChunk("no content checksum")
    try:
        fields = face_fields(table)
        actual = content_digest(table, fields)
    except (pa.ArrowException, ValueError) as error:  # undecodable strings, broken offsets
        raise DamagedChunk(f"undecodable content ({type(error).__name__})") from None
    if actual != stored:
        raise DamagedChunk(f"content checksum {actual[:12]} differs from stored {stored[:12]}")
    size = _frame_size(metadata.get(METADATA_FRAME_SIZE, b""))
    check_values(fields, size)
    return size


def content_digest(table: pa.Table, fields: FaceFields | None = None) -> str:
    """SHA-256 over every column's values, validity and face counts, in a fixed layout;
    `fields` are the table's `face_fields` when the caller has them already."""
    digest = hashlib.sha256(str(table.num_rows).encode())
    for name in _STRING_COLUMNS:
        digest.update(json.dumps(table.column(name).to_pylist()).encode())
    digest.update(_int64_bytes(table.column("frame_index").to_numpy()))
    faces = table.column("faces").combine_chunks()
    digest.update(_int64_bytes(faces.value_lengths().fill_null(-1).to_numpy()))
    for name, (valid, values) in (fields or face_fields(table)).items():
        digest.update(name.encode())
        digest.update(valid.tobytes())
        digest.update(values.astype("<f4").tobytes())
    return digest.hexdigest()


def face_fields(table: pa.Table) -> FaceFields:
    """Every face field of the table, in schema order, as `field_values` gives it."""
    structs = table.column("faces").combine_chunks().flatten()
    return {field.name: field_values(structs, field.name) for field in structs.type}


def field_values(structs: pa.StructArray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(validity per face, float32 values per face with invalid rows zeroed)."""
    column = structs.field(name)
    count = len(structs)
    valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), bool)
    if isinstance(column, pa.FixedSizeListArray):
        size = column.type.list_size
        flat = column.values.slice(column.offset * size, count * size)
        values = flat.to_numpy(zero_copy_only=False).astype(np.float32).reshape(count, size)
    else:
        values = column.to_numpy(zero_copy_only=False).astype(np.float32).reshape(count, 1)
    values = values.copy()
    values[~valid] = 0.0
    return valid, values


def check_values(fields: FaceFields, frame_size: tuple[int, int]) -> None:
    """Every number finite; coordinates within a frame's margin of the frame."""
    width, height = frame_size
    if not width or not height:
        width = height = _UNKNOWN_FRAME_SIDE
    low = -_MARGIN_FRAMES * np.array([width, height], np.float32)
    high = (1 + _MARGIN_FRAMES) * np.array([width, height], np.float32)
    for name, (_, values) in fields.items():
        if not np.isfinite(values).all():
            raise DamagedChunk(f"{name} holds values that are not finite")
        if name in _COORDINATE_FIELDS:
            points = values.reshape(-1, 2)
            if ((points < low) | (points > high)).any():
                raise DamagedChunk(f"{name} lies outside the {width}x{height} frame")


def _frame_size(text: bytes) -> tuple[int, int]:
    width, _, height = text.decode("ascii", "replace").partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise DamagedChunk("no frame size in the schema metadata")
    return int(width), int(height)


def _int64_bytes(values: np.ndarray) -> bytes:
    return np.asarray(values, dtype="<i8").tobytes()
