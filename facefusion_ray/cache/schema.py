"""The Parquet schema of the analysis cache: one row per frame, its faces as a list of structs.

Embeddings are stored as variable `list<float32>` rather than `fixed_size_list<float32, N>`:
N depends on the recognizer (128 for SFace, 512 for ArcFace), and one schema for every
recognizer lets a reader compare a file's schema for exact equality without knowing the key.
The length is still fixed per file: it is written in the schema metadata (`embedding_size`) and
every raw and normalised embedding is checked against it, on write and on read.

Reading a chunk with plain pyarrow:

    table = pyarrow.parquet.read_table("0000000000-0000000064.parquet")
    faces = table.column("faces").combine_chunks().flatten()  # one struct per face
    boxes = faces.field("bbox").flatten().to_numpy().reshape(-1, 4)
    faces_per_frame = table.column("faces").combine_chunks().value_lengths()
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from facefusion_ray.analysis.face import Face

# 2: frame fingerprints hash the decoder's own bytes (4:2:0 planes) instead of BGR, and
# embeddings are fixed-size lists (absent when the analysis embeds no face).
# 3: a content SHA-256 and the frame size in the schema metadata, Parquet page CRCs
# (facefusion_ray.cache.integrity).
SCHEMA_VERSION = 3
COMPRESSION = "zstd"
LANDMARK_5_VALUES = 10
LANDMARK_68_VALUES = 136
METADATA_SCHEMA_VERSION = b"facefusion_ray.analysis_schema_version"
METADATA_EMBEDDING_SIZE = b"facefusion_ray.embedding_size"


def face_type(embedding_size: int) -> pa.StructType:
    """One face. The embedding fields exist only when the analysis embeds faces (their fixed
    length is the recognizer's: 128 for SFace, 512 for ArcFace)."""
    fields = [
        pa.field("bbox", pa.list_(pa.float32(), 4), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("landmarks_5", pa.list_(pa.float32(), LANDMARK_5_VALUES), nullable=False),
        pa.field("landmarks_68", pa.list_(pa.float32(), LANDMARK_68_VALUES), nullable=True),
    ]
    if embedding_size:
        vector = pa.list_(pa.float32(), embedding_size)
        fields += [
            pa.field("embedding", vector, nullable=True),
            pa.field("normed_embedding", vector, nullable=True),
        ]
    return pa.struct(fields)


def analysis_schema(embedding_size: int) -> pa.Schema:
    """The schema of a chunk whose embeddings have `embedding_size` values (0: none)."""
    return pa.schema(
        [
            pa.field("video_fingerprint", pa.string(), nullable=False),
            pa.field("frame_index", pa.int64(), nullable=False),
            pa.field("frame_fingerprint", pa.string(), nullable=False),
            pa.field("analysis_key", pa.string(), nullable=False),
            pa.field(
                "faces",
                pa.list_(pa.field("face", face_type(embedding_size), nullable=False)),
                nullable=False,
            ),
        ]
    )


class InvalidAnalysisData(ValueError):
    """Records or a table that do not fit the analysis schema; the message says what is wrong."""


@dataclass(frozen=True, eq=False)
class FrameAnalysis:
    """The faces found in one frame. landmarks_68 is empty when no landmarker ran, otherwise one
    (68, 2) float32 array or None per face, in the order of `faces`."""

    frame_index: int
    frame_fingerprint: str
    faces: list[Face]
    landmarks_68: list[np.ndarray | None] | None = None

    def __post_init__(self) -> None:
        if self.landmarks_68 is not None and len(self.landmarks_68) != len(self.faces):
            raise InvalidAnalysisData(
                f"frame {self.frame_index}: {len(self.landmarks_68)} landmark sets "
                f"for {len(self.faces)} faces"
            )

    def landmarks_68_of(self, face_number: int) -> np.ndarray | None:
        return None if self.landmarks_68 is None else self.landmarks_68[face_number]


def records_to_table(
    video_fingerprint: str, analysis_key: str, records: Sequence[FrameAnalysis]
) -> pa.Table:
    faces = [
        (face, record.landmarks_68_of(number))
        for record in records
        for number, face in enumerate(record.faces)
    ]
    embedding_size = _embedding_size(records)
    face_offsets = np.zeros(len(records) + 1, np.int32)
    np.cumsum([len(record.faces) for record in records], out=face_offsets[1:])
    face_arrays = [
        _fixed_lists([face.bbox for face, _ in faces], 4, "bbox"),
        pa.array(np.array([face.score for face, _ in faces], np.float32), pa.float32()),
        _fixed_lists([face.landmarks_5 for face, _ in faces], LANDMARK_5_VALUES, "landmarks_5"),
        _fixed_lists([marks for _, marks in faces], LANDMARK_68_VALUES, "landmarks_68"),
    ]
    if embedding_size:
        face_arrays += [
            _fixed_lists([face.embedding for face, _ in faces], embedding_size, "embedding"),
            _fixed_lists(
                [face.normed_embedding for face, _ in faces], embedding_size, "normed_embedding"
            ),
        ]
    schema = analysis_schema(embedding_size)
    faces_type = schema.field("faces").type
    face_structs = pa.StructArray.from_arrays(face_arrays, fields=list(faces_type.value_type))
    faces_column = pa.ListArray.from_arrays(pa.array(face_offsets), face_structs, type=faces_type)
    row_count = len(records)
    metadata = {
        METADATA_SCHEMA_VERSION: str(SCHEMA_VERSION).encode(),
        METADATA_EMBEDDING_SIZE: str(embedding_size).encode(),
    }
    return pa.Table.from_arrays(
        [
            pa.array([video_fingerprint] * row_count, pa.string()),
            pa.array([record.frame_index for record in records], pa.int64()),
            pa.array([record.frame_fingerprint for record in records], pa.string()),
            pa.array([analysis_key] * row_count, pa.string()),
            faces_column,
        ],
        schema=schema.with_metadata(metadata),
    )


def table_to_records(table: pa.Table) -> list[FrameAnalysis]:
    """Validates the schema and embedding sizes; raises InvalidAnalysisData on any mismatch."""
    check_schema(table.schema)
    embedding_size = int((table.schema.metadata or {})[METADATA_EMBEDDING_SIZE])
    faces_column = table.column("faces").combine_chunks()
    if faces_column.null_count:
        raise InvalidAnalysisData("a row has no face list")
    face_offsets = faces_column.offsets.to_numpy() - faces_column.offsets[0].as_py()
    structs = faces_column.flatten()
    count = len(structs)
    bboxes = _fixed_values(structs.field("bbox"), 4, count).reshape(count, 4)
    scores = structs.field("score").to_numpy(zero_copy_only=False)
    landmarks_5 = _fixed_values(structs.field("landmarks_5"), LANDMARK_5_VALUES, count)
    landmarks_68 = _fixed_values(structs.field("landmarks_68"), LANDMARK_68_VALUES, count)
    landmarks_68_valid = _valid_mask(structs.field("landmarks_68"))
    embeddings = _embedding_rows(structs, "embedding", embedding_size, count)
    normed_embeddings = _embedding_rows(structs, "normed_embedding", embedding_size, count)
    faces = [
        Face(
            bbox=bboxes[number].copy(),
            score=float(scores[number]),
            landmarks_5=landmarks_5[number].reshape(5, 2).copy(),
            embedding=embeddings[number],
            normed_embedding=normed_embeddings[number],
        )
        for number in range(count)
    ]
    marks = [
        landmarks_68[number].reshape(68, 2).copy() if landmarks_68_valid[number] else None
        for number in range(count)
    ]
    indices = table.column("frame_index").to_pylist()
    fingerprints = table.column("frame_fingerprint").to_pylist()
    records = []
    for row, (frame_index, fingerprint) in enumerate(zip(indices, fingerprints, strict=True)):
        first, last = int(face_offsets[row]), int(face_offsets[row + 1])
        row_marks = marks[first:last]
        records.append(
            FrameAnalysis(
                frame_index=frame_index,
                frame_fingerprint=fingerprint,
                faces=faces[first:last],
                landmarks_68=row_marks if any(m is not None for m in row_marks) else None,
            )
        )
    return records


def check_schema(schema: pa.Schema) -> None:
    metadata = schema.metadata or {}
    version = metadata.get(METADATA_SCHEMA_VERSION)
    if version != str(SCHEMA_VERSION).encode():
        raise InvalidAnalysisData(f"schema version {version!r}, expected {SCHEMA_VERSION}")
    size = metadata.get(METADATA_EMBEDDING_SIZE, b"")
    if not size.isdigit():
        raise InvalidAnalysisData("no embedding size in the schema metadata")
    if not schema.equals(analysis_schema(int(size)), check_metadata=False):
        raise InvalidAnalysisData("not an analysis cache schema")


def table_to_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    # Dictionary-encoding float columns costs ~15x the write time for no gain (they are
    # near-random); only the constant string columns benefit from it.
    pq.write_table(
        table,
        sink,
        compression=COMPRESSION,
        use_dictionary=["video_fingerprint", "analysis_key"],
        write_page_checksum=True,
    )
    return sink.getvalue()


def parquet_to_table(payload: bytes) -> pa.Table:
    """Parses Parquet only; raises InvalidAnalysisData for anything that is not valid Parquet."""
    try:
        return pq.read_table(pa.BufferReader(payload), page_checksum_verification=True)
    except (pa.ArrowException, OSError, ValueError) as error:
        raise InvalidAnalysisData(f"unreadable Parquet ({type(error).__name__})") from None


def _embedding_size(records: Sequence[FrameAnalysis]) -> int:
    """The one length shared by every raw and normalised embedding; 0 when there is none."""
    sizes = {
        int(np.asarray(vector).size)
        for record in records
        for face in record.faces
        for vector in (face.embedding, face.normed_embedding)
        if vector is not None
    }
    if len(sizes) > 1:
        raise InvalidAnalysisData(f"embeddings of different sizes {sorted(sizes)} in one chunk")
    return sizes.pop() if sizes else 0


def _fixed_lists(
    arrays: Sequence[np.ndarray | None], size: int, name: str
) -> pa.FixedSizeListArray:
    values = np.zeros((len(arrays), size), np.float32)
    valid = np.zeros(len(arrays), bool)
    for number, array in enumerate(arrays):
        if array is None:
            continue
        flat = np.asarray(array, np.float32).reshape(-1)
        if flat.size != size:
            raise InvalidAnalysisData(f"{name} has {flat.size} values, expected {size}")
        values[number] = flat
        valid[number] = True
    mask = None if valid.all() else pa.array(~valid)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), size, mask=mask)


def _fixed_values(column: pa.FixedSizeListArray, size: int, count: int) -> np.ndarray:
    # `.values` ignores the parent's offset, so slice the child to this array's window.
    values = column.values.slice(column.offset * size, count * size)
    flat = values.to_numpy(zero_copy_only=False)
    if flat.size != count * size:
        raise InvalidAnalysisData("fixed-size list values do not match the row count")
    return flat.astype(np.float32, copy=False).reshape(count, size)


def _valid_mask(column: pa.Array) -> np.ndarray:
    if column.null_count == 0:
        return np.ones(len(column), bool)
    return column.is_valid().to_numpy(zero_copy_only=False)


def _embedding_rows(
    structs: pa.StructArray, name: str, size: int, count: int
) -> list[np.ndarray | None]:
    if size == 0:
        return [None] * count
    column = structs.field(name)
    values = _fixed_values(column, size, count)
    valid = _valid_mask(column)
    return [values[number].copy() if valid[number] else None for number in range(count)]
