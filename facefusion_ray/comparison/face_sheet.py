"""The face sheet: every source's swapped faces up close, beside the target's own face.

One block of rows per person (people are numbered left to right in each frame): the target's
face first, then one row per source whose first cell is the source photo. Columns are the
sampled moments. Face crops are drawn at their own size (the renders crop them at least 160 px
a face), so nothing is shrunk to fit a row.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facefusion_ray.comparison.contact_sheet import (
    BACKGROUND,
    PLACEHOLDER,
    _fit_into,
    _put_text,
    _text_height,
)
from facefusion_ray.media.images import read_image, write_image_atomic

SEPARATOR = (16, 16, 16)
BLOCK_SEPARATOR = (200, 200, 200)
JPEG_QUALITY = 90
TARGET_LABEL = "target"

# frame index -> the faces there, left to right (BGR crops, all the same square size)
FacesByFrame = Mapping[int, Sequence[np.ndarray]]


@dataclass(frozen=True)
class FaceSheetRow:
    """One source: its label, its photo and its swapped faces (None when the render failed)."""

    label: str
    source_image: Path
    faces: FacesByFrame | None


@dataclass(frozen=True)
class SheetRow:
    """A drawn row: whose faces ("target" or a source label), which person, and the columns
    (0-based among the moments) that show a face."""

    label: str
    person: int
    faces_at: tuple[int, ...]


@dataclass(frozen=True)
class FaceSheetLayout:
    cell: int
    header: int
    rows: tuple[SheetRow, ...]


def build_face_sheet(
    target_faces: FacesByFrame,
    rows: Sequence[FaceSheetRow],
    frame_indices: Sequence[int],
    path: str | os.PathLike[str],
) -> FaceSheetLayout:
    """Write the sheet (JPEG or PNG by `path`'s suffix) atomically and return its layout.

    `target_faces` are the target's own faces at `frame_indices`, in the order the rows'
    faces are in; the cell size is the crops' size (256 px when nothing was cropped).
    """
    if not rows:
        raise ValueError("a face sheet needs at least one source")
    cell = _cell_size(target_faces, rows)
    people = max((len(faces) for faces in target_faces.values()), default=0)
    people = max(people, 1)
    font_scale = max(0.4, cell / 400)
    header = _text_height(font_scale) + 16
    drawn: list[SheetRow] = []
    block_rows = 1 + len(rows)
    sheet = np.full(
        (header + people * block_rows * cell, (1 + len(frame_indices)) * cell, 3),
        BACKGROUND,
        dtype=np.uint8,
    )
    titles = ["", *(f"frame {index}" for index in frame_indices)]
    for column, title in enumerate(titles):
        _put_text(sheet, title, column * cell + 6, header - 8, cell - 12, font_scale)
    for person in range(people):
        top = header + person * block_rows * cell
        label = f"{TARGET_LABEL}, person {person + 1}"
        first = np.full((cell, cell, 3), PLACEHOLDER, dtype=np.uint8)
        _put_text(first, label, 6, cell // 2, cell - 12, font_scale)
        drawn.append(_draw_row(sheet, top, first, target_faces, person, frame_indices, cell))
        drawn[-1] = SheetRow(TARGET_LABEL, person, drawn[-1].faces_at)
        for number, row in enumerate(rows):
            y = top + (1 + number) * cell
            photo = _fit_into(read_image(row.source_image), (cell, cell))
            _label_band(photo, row.label, font_scale)
            faces = row.faces if row.faces is not None else {}
            placed = _draw_row(sheet, y, photo, faces, person, frame_indices, cell)
            drawn.append(SheetRow(row.label, person, placed.faces_at))
        sheet[top, :] = BLOCK_SEPARATOR
    for column in range(1, 1 + len(frame_indices)):
        sheet[header:, column * cell] = SEPARATOR
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    params = (
        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        if target.suffix.lower() in {".jpg", ".jpeg"}
        else []
    )
    write_image_atomic(target, sheet, params)
    return FaceSheetLayout(cell, header, tuple(drawn))


def _cell_size(target_faces: FacesByFrame, rows: Sequence[FaceSheetRow]) -> int:
    for faces in [target_faces, *(row.faces for row in rows if row.faces is not None)]:
        for crops in faces.values():
            if crops:
                return int(crops[0].shape[0])
    return 256


def _draw_row(
    sheet: np.ndarray,
    y: int,
    first: np.ndarray,
    faces: FacesByFrame,
    person: int,
    frame_indices: Sequence[int],
    cell: int,
) -> SheetRow:
    sheet[y : y + cell, :cell] = first
    shown = []
    for column, frame in enumerate(frame_indices):
        crops = faces.get(frame, ())
        x = (1 + column) * cell
        if person < len(crops):
            sheet[y : y + cell, x : x + cell] = _fit_into(crops[person], (cell, cell))
            shown.append(column)
        else:
            sheet[y : y + cell, x : x + cell] = PLACEHOLDER
    sheet[y, :] = SEPARATOR
    return SheetRow("", person, tuple(shown))


def _label_band(cell: np.ndarray, label: str, font_scale: float) -> None:
    band_height = _text_height(font_scale) + 10
    band = cell[-band_height:]
    band[:] = (band.astype(np.uint16) * 2 // 7).astype(np.uint8)
    _put_text(cell, label, 6, cell.shape[0] - 5, cell.shape[1] - 12, font_scale)
