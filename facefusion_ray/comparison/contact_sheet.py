"""A contact sheet of renders: one row per source, its face photo then the sampled frames."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facefusion_ray.comparison.frames import iter_selected_frames
from facefusion_ray.media.images import read_image, write_image_atomic
from facefusion_ray.media.probe import probe_media

BACKGROUND = (32, 32, 32)
PLACEHOLDER = (64, 64, 64)
TEXT_COLOUR = (240, 240, 240)
SEPARATOR = (16, 16, 16)
FONT = cv2.FONT_HERSHEY_SIMPLEX
MIN_THUMB_HEIGHT = 32
# Used for the frame cells when no row has a video to take the aspect ratio from.
FALLBACK_ASPECT = 16 / 9


@dataclass(frozen=True)
class ContactRow:
    """One source: its label, its photo and its rendered video (None when the render failed).

    `frames` may hold the video's frames at the sheet's indices, already decoded (any size:
    they are fitted into their cells); without them the video is decoded here.
    """

    label: str
    source_image: Path
    video: Path | None
    frames: Mapping[int, np.ndarray] | None = None


def header_height(thumb_height: int) -> int:
    """Height of the strip of frame numbers above the rows."""
    return max(24, thumb_height // 6)


def build_contact_sheet(
    rows: Sequence[ContactRow],
    frame_indices: Sequence[int],
    path: str | os.PathLike[str],
    thumb_height: int = 180,
) -> None:
    """Write an image (format from `path`'s suffix, normally PNG) of `rows` by columns.

    Column 0 shows each source photo, the others the frames `frame_indices` of each row's
    video; every cell is `thumb_height` high and as wide as the first video's aspect ratio
    makes it, with a header strip of frame numbers on top. Images of another shape are fitted
    inside their cell. Rows without a video show placeholders. Written atomically.
    """
    if not rows:
        raise ValueError("a contact sheet needs at least one row")
    if thumb_height < MIN_THUMB_HEIGHT:
        raise ValueError(f"thumb_height must be at least {MIN_THUMB_HEIGHT}, got {thumb_height}")
    thumb_width = _thumb_width(rows, thumb_height)
    top = header_height(thumb_height)
    columns = 1 + len(frame_indices)
    sheet = np.full(
        (top + len(rows) * thumb_height, columns * thumb_width, 3), BACKGROUND, dtype=np.uint8
    )
    cell = (thumb_width, thumb_height)
    font_scale = max(0.35, thumb_height / 360)
    _draw_header(sheet, frame_indices, thumb_width, top, font_scale)
    for row_number, row in enumerate(rows):
        y = top + row_number * thumb_height
        thumbnails = [_fit_into(read_image(row.source_image), cell)]
        thumbnails += _frame_thumbnails(row, frame_indices, cell, font_scale)
        for column, thumbnail in enumerate(thumbnails):
            sheet[y : y + thumb_height, column * thumb_width : (column + 1) * thumb_width] = (
                thumbnail
            )
        _draw_label(sheet, row.label, y + thumb_height, thumb_width, font_scale)
    _draw_separators(sheet, columns, len(rows), cell, top)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_image_atomic(target, sheet)


def _thumb_width(rows: Sequence[ContactRow], thumb_height: int) -> int:
    aspect = FALLBACK_ASPECT
    first_video = next((row.video for row in rows if row.video is not None), None)
    if first_video is not None:
        info = probe_media(first_video)
        aspect = info.width / info.height
    return max(1, round(thumb_height * aspect))


def _frame_thumbnails(
    row: ContactRow,
    frame_indices: Sequence[int],
    cell: tuple[int, int],
    font_scale: float,
) -> list[np.ndarray]:
    if row.video is None:
        return [_placeholder(cell, "no video", font_scale) for _ in frame_indices]
    frames = row.frames
    if frames is None:
        frames = dict(iter_selected_frames(row.video, frame_indices))
    return [_fit_into(frames[index], cell) for index in frame_indices]


def _fit_into(image: np.ndarray, cell: tuple[int, int]) -> np.ndarray:
    """`image` scaled to fit `cell` (width, height), aspect kept, centred on the background."""
    width, height = cell
    image_height, image_width = image.shape[:2]
    scale = min(width / image_width, height / image_height)
    fitted_width = max(1, min(width, round(image_width * scale)))
    fitted_height = max(1, min(height, round(image_height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (fitted_width, fitted_height), interpolation=interpolation)
    canvas = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
    x = (width - fitted_width) // 2
    y = (height - fitted_height) // 2
    canvas[y : y + fitted_height, x : x + fitted_width] = resized
    return canvas


def _placeholder(cell: tuple[int, int], text: str, font_scale: float) -> np.ndarray:
    width, height = cell
    canvas = np.full((height, width, 3), PLACEHOLDER, dtype=np.uint8)
    _put_text(canvas, text, 6, height // 2, width - 12, font_scale)
    return canvas


def _draw_header(
    sheet: np.ndarray,
    frame_indices: Sequence[int],
    thumb_width: int,
    top: int,
    font_scale: float,
) -> None:
    titles = ["source", *(f"frame {index}" for index in frame_indices)]
    baseline = (top + _text_height(font_scale)) // 2
    for column, title in enumerate(titles):
        _put_text(sheet, title, column * thumb_width + 6, baseline, thumb_width - 12, font_scale)


def _draw_label(
    sheet: np.ndarray, label: str, row_bottom: int, thumb_width: int, font_scale: float
) -> None:
    """The label on a darkened band along the bottom of the row's source cell."""
    band_height = _text_height(font_scale) + 10
    band = sheet[row_bottom - band_height : row_bottom, :thumb_width]
    band[:] = (band.astype(np.uint16) * 2 // 7).astype(np.uint8)
    _put_text(sheet, label, 6, row_bottom - 5, thumb_width - 12, font_scale)


def _draw_separators(
    sheet: np.ndarray, columns: int, rows: int, cell: tuple[int, int], top: int
) -> None:
    width, height = cell
    for column in range(1, columns):
        sheet[:, column * width] = SEPARATOR
    for row in range(rows):
        sheet[top + row * height] = SEPARATOR


def _text_height(font_scale: float) -> int:
    (_, height), _ = cv2.getTextSize("Ag", FONT, font_scale, 1)
    return height


def _put_text(
    canvas: np.ndarray, text: str, x: int, baseline: int, max_width: int, font_scale: float
) -> None:
    """Draw one line, shortened with '..' to fit `max_width`; Hershey fonts are ASCII only."""
    line = _ascii_text(text)
    shortened = line
    while shortened and _text_width(shortened, font_scale) > max_width:
        line = line[:-1]
        shortened = line + ".." if line else ""
    if shortened:
        cv2.putText(canvas, shortened, (x, baseline), FONT, font_scale, TEXT_COLOUR, 1, cv2.LINE_AA)


def _ascii_text(text: str) -> str:
    """Accents dropped ("Zoë" -> "Zoe"), other non-ASCII characters shown as '?'."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return bare.encode("ascii", errors="replace").decode("ascii")


def _text_width(text: str, font_scale: float) -> int:
    (width, _), _ = cv2.getTextSize(text, FONT, font_scale, 1)
    return width
