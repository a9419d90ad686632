"""The swap options, declared once: this table builds the command line's flags, checks the
options of batch specs and fills `SwapSettings`.

A row names the flag, the settings field it fills (a dotted path into `SwapSettings`) and its
help. The value's type, default, choices and bounds come from the field's own declaration, so
the command line, batch specs and the settings cannot disagree.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from facefusion_ray.errors import SettingsError
from facefusion_ray.media.pixel_limit import MAX_PIXELS_OPTION
from facefusion_ray.option_scopes import choices_of
from facefusion_ray.settings import SwapSettings


@dataclass(frozen=True)
class SwapOption:
    flag: str
    field: str  # dotted path into SwapSettings, e.g. "face_selector.mode"
    help: str
    metavar: tuple[str, ...] | str | None = None
    # A switch that stores the opposite of the field (`--no-analysis-cache`).
    negates: bool = False

    @property
    def name(self) -> str:
        """The option's name in batch specs: the flag without dashes, in snake case."""
        return self.flag.removeprefix("--").replace("-", "_")


SWAP_OPTIONS: tuple[SwapOption, ...] = (
    SwapOption("--chunk-frames", "chunk_frames", "frames per chunk, the unit of scheduling"),
    SwapOption("--workers", "workers", "render actors"),
    SwapOption(
        "--face-detector-score",
        "face_detector_score",
        "minimum detection score, 0-1, as FaceFusion scores it (cls * obj for YuNet)",
    ),
    SwapOption(
        "--face-detector-size",
        "face_detector_size",
        "detector input, the frame letterboxed into it as in FaceFusion: 640x640 for every "
        "model, also 160x160 to 512x512 for scrfd/retinaface",
        metavar="WIDTHxHEIGHT",
    ),
    SwapOption(
        "--face-detector-frame-aspect",
        "face_detector_frame_aspect",
        "run YuNet at the frame's own aspect ratio: faster, but faces cut by the frame's edge "
        "may differ from FaceFusion's (default: FaceFusion's square letterbox)",
    ),
    SwapOption(
        "--face-detector-model",
        "face_detector_model",
        "yunet (embedded), scrfd_2.5g, retinaface_10g, yoloface_8n or a registered detector",
    ),
    SwapOption(
        "--face-detector-angles",
        "face_detector_angles",
        "also detect faces turned by these angles",
    ),
    SwapOption(
        "--face-landmarker-model",
        "face_landmarker_model",
        "refine landmarks with 68 points, e.g. 2dfan4 (default: the detector's 5 points)",
    ),
    SwapOption(
        "--face-landmarker-score",
        "face_landmarker_score",
        "68-point estimates scoring above this replace the 5 points",
    ),
    SwapOption(
        "--face-recognizer-model",
        "face_recognizer_model",
        "embeds target faces for the reference and identity-map selectors: auto is "
        "arcface_w600k_r50 (FaceFusion's) with a neural swapper, sface with the classic one",
    ),
    SwapOption(
        "--face-occluder-model",
        "face_occluder_model",
        "occlusion mask for neural swappers, e.g. xseg_1 (default none)",
    ),
    SwapOption(
        "--face-swapper-model",
        "face_swapper_model",
        "classic (no weights) or a manifest swapper such as inswapper_128, hyperswap_1a_256, "
        "simswap_256",
    ),
    SwapOption(
        "--face-enhancer-model",
        "face_enhancer_model",
        "enhance the swapped faces with a manifest enhancer, e.g. gfpgan_1.4 (default none)",
    ),
    SwapOption(
        "--face-enhancer-blend",
        "face_enhancer_blend",
        "how much of the enhanced face to keep, 0-100",
    ),
    SwapOption("--face-mask-blur", "face_mask_blur", "box mask blur of the neural swappers, 0-1"),
    SwapOption(
        "--face-mask-padding",
        "face_mask_padding",
        "box mask padding in percent",
        metavar=("TOP", "RIGHT", "BOTTOM", "LEFT"),
    ),
    SwapOption(
        "--analysis-cache",
        "analysis_cache",
        "per-frame analysis cache URL, e.g. s3://bucket/analysis (default: local folder)",
    ),
    SwapOption(
        "--no-analysis-cache",
        "use_analysis_cache",
        "analyse every frame and store nothing",
        negates=True,
    ),
    SwapOption(
        "--model-store",
        "model_store",
        "model store URL, e.g. s3://bucket/models (default: local store)",
    ),
    SwapOption(
        "--target-identity",
        "target_reads.identity",
        "what names an s3:// target in the keys: metadata (ETag, size, version id; nothing "
        "downloaded) or content (SHA-256 of the whole object, read once by the driver)",
    ),
    SwapOption(
        "--stage-below-bytes",
        "target_reads.stage_below_bytes",
        "s3:// targets smaller than this are downloaded whole to each node; larger ones are "
        "read by range, each chunk only its own part",
        metavar="N",
    ),
    SwapOption(
        "--signed-url-seconds",
        "target_reads.signed_url_seconds",
        "lifetime of the signed URL through which a chunk reads an s3:// target by range: "
        "longer than one chunk takes",
        metavar="N",
    ),
    SwapOption(
        "--output-video-quality",
        "output_video_quality",
        "0-100, mapped per encoder like FaceFusion: CRF for libx264/libx265/libvpx-vp9/"
        "libsvtav1, CQ for NVENC",
    ),
    SwapOption(
        "--output-video-preset",
        "output_video_preset",
        "x264 preset names, mapped per encoder like FaceFusion (NVENC: fast/medium/slow)",
    ),
    SwapOption(
        "--output-video-encoder",
        "output_video_encoder",
        "video encoder; a missing or failing one is an error, or libx264 with --allow-cpu-fallback",
    ),
    SwapOption(
        "--decode-hwaccel",
        "decode_hwaccel",
        "decode the target on the GPU (cuda: ffmpeg -hwaccel cuda); falls back like the encoder",
    ),
    SwapOption(
        MAX_PIXELS_OPTION,
        "max_pixels",
        "refuse images and video frames of more than N pixels (width x height), read from "
        "their header before decoding; the default is 8192x8192",
        metavar="N",
    ),
    SwapOption(
        "--face-selector-mode",
        "face_selector.mode",
        "which target faces to swap: every face, the first in order, the faces matching a "
        "reference face, or each source to its own person of the video (identity-map)",
    ),
    SwapOption(
        "--face-selector-order",
        "face_selector.order",
        "order of the faces for 'one' and the reference position",
    ),
    SwapOption(
        "--reference-face-position",
        "face_selector.reference_face_position",
        "index of the reference face in the reference frame, in the selector order",
    ),
    SwapOption(
        "--reference-face-distance",
        "face_selector.reference_face_distance",
        "faces closer than this to the reference are swapped, 0-1",
    ),
    SwapOption(
        "--reference-frame-number",
        "reference_frame_number",
        "frame of the target that holds the reference face",
    ),
    SwapOption(
        "--debug-overlay",
        "debug_overlay",
        "draw boxes, landmarks, scores and the selected faces onto the output",
    ),
    SwapOption("--execution-provider", "execution.device", "where the models run in each actor"),
    SwapOption(
        "--precision",
        "execution.precision",
        "model weights: auto (FP16 variants on a GPU, FP32 on the CPU), fp16 or fp32",
    ),
    SwapOption(
        "--allow-cpu-fallback",
        "execution.allow_cpu_fallback",
        "continue on CPU (FP32) when a GPU session cannot start or runs out of memory, and "
        "with libx264 / CPU decoding when the chosen encoder or decode hwaccel cannot open",
    ),
    SwapOption("--gpu-fraction", "execution.gpu_fraction", "GPUs per render actor, e.g. 0.25"),
    SwapOption(
        "--gpu-memory-limit", "execution.gpu_memory_limit_bytes", "ORT CUDA arena limit in bytes"
    ),
    SwapOption(
        "--actor-memory", "execution.memory_bytes", "Ray memory reservation per actor, bytes"
    ),
    SwapOption("--threads-per-worker", "execution.intra_op_threads", "CPUs per render actor"),
)


@dataclass(frozen=True)
class ValueShape:
    """What a field holds, read from its type annotation and declaration."""

    convert: Callable[[str], object]
    nargs: int | str | None
    choices: tuple[object, ...] | None
    is_switch: bool
    default: object


def field_shape(path: str) -> ValueShape:
    owner, name = _owner_of(path)
    hint = _strip_optional(typing.get_type_hints(owner)[name])
    default = _default_at(path)
    choices = choices_of(owner, name)
    if typing.get_origin(hint) is typing.Literal:
        choices = typing.get_args(hint)
        hint = type(choices[0])
    if hint is bool:
        return ValueShape(bool, 0, None, True, default)
    if typing.get_origin(hint) is tuple:
        items = typing.get_args(hint)
        nargs: int | str = "+" if items[-1] is Ellipsis else len(items)
        return ValueShape(_converter(items[0]), nargs, choices, False, default)
    return ValueShape(_converter(hint), None, choices, False, default)


def add_swap_options(parser: argparse.ArgumentParser) -> None:
    for option in SWAP_OPTIONS:
        shape = field_shape(option.field)
        if shape.is_switch:
            parser.add_argument(option.flag, action="store_true", help=option.help)
            continue
        default = list(shape.default) if isinstance(shape.default, tuple) else shape.default
        shown = " ".join(map(str, default)) if isinstance(default, list) else default
        parser.add_argument(
            option.flag,
            type=shape.convert,
            nargs=shape.nargs,
            choices=shape.choices,
            default=default,
            metavar=option.metavar,
            help=option.help if shown is None else f"{option.help} (default {shown})",
        )


def settings_from(args: argparse.Namespace) -> SwapSettings:
    """The settings of parsed flags (every row of the table must have been added)."""
    return settings_from_values(
        {option.field: _parsed_value(option, getattr(args, option.name)) for option in SWAP_OPTIONS}
    )


def settings_from_values(values: Mapping[str, object]) -> SwapSettings:
    """`SwapSettings` from `{dotted field path: value}`; absent fields keep their defaults."""
    return _build(SwapSettings, values, "")


def option_value(option: SwapOption, value: object) -> object:
    """A batch spec's (YAML) value for `option`, converted as the command line converts it.

    SettingsError messages start with ": " or " ", to follow the option's name."""
    shape = field_shape(option.field)
    if shape.is_switch:
        if not isinstance(value, bool):
            raise SettingsError(f" is true or false, not {value!r}")
        return not value if option.negates else value
    if isinstance(value, bool | Mapping):
        raise SettingsError(f" takes a value, not {value!r}")
    if isinstance(value, list):
        if shape.nargs is None:
            raise SettingsError(" takes one value, not a list")
        if any(isinstance(item, bool | Mapping | list) for item in value):
            raise SettingsError(" takes a list of plain values")
        items = value
    else:
        items = [value]
    if shape.nargs is None:
        return _converted(shape, items[0])
    if isinstance(shape.nargs, int) and len(items) != shape.nargs:
        raise SettingsError(f": expected {shape.nargs} arguments")
    return tuple(_converted(shape, item) for item in items)


def _converted(shape: ValueShape, raw: object) -> object:
    """argparse's conversion and its messages, for values that come from YAML."""
    try:
        value = shape.convert(str(raw))
    except ValueError:
        kind = getattr(shape.convert, "__name__", "")
        raise SettingsError(f": invalid {kind} value: {str(raw)!r}") from None
    if shape.choices is not None and value not in shape.choices:
        listed = ", ".join(map(repr, shape.choices))
        raise SettingsError(f": invalid choice: {value!r} (choose from {listed})")
    return value


def _parsed_value(option: SwapOption, value: object) -> object:
    if option.negates:
        return not value
    return tuple(value) if isinstance(value, list) else value


def _build(owner: type, values: Mapping[str, object], prefix: str) -> Any:
    arguments: dict[str, object] = {}
    hints = typing.get_type_hints(owner)
    for field in dataclasses.fields(owner):
        path = prefix + field.name
        if dataclasses.is_dataclass(hints[field.name]):
            if any(key.startswith(path + ".") for key in values):
                arguments[field.name] = _build(hints[field.name], values, path + ".")
        elif path in values:
            arguments[field.name] = values[path]
    return owner(**arguments)


def _owner_of(path: str) -> tuple[type, str]:
    owner: type = SwapSettings
    *parents, name = path.split(".")
    for parent in parents:
        owner = typing.get_type_hints(owner)[parent]
    return owner, name


def _default_at(path: str) -> object:
    value: object = SwapSettings()
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _strip_optional(hint: Any) -> Any:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [member for member in typing.get_args(hint) if member is not type(None)]
        if len(members) == 1:
            return members[0]
    return hint


def _converter(kind: Any) -> Callable[[str], object]:
    if kind in (int, float, str):
        return kind
    raise TypeError(f"no command-line conversion for {kind!r}")


def option_named(name: str) -> SwapOption | None:
    return next((option for option in SWAP_OPTIONS if option.name == name), None)
