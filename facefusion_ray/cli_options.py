"""Options shared by the rendering commands: what a render does, and how the job runs."""

import argparse
from pathlib import Path

from facefusion_ray.analysis.select import (
    DEFAULT_REFERENCE_FACE_DISTANCE,
    FACE_SELECTOR_MODES,
    FACE_SELECTOR_ORDERS,
    FaceSelection,
)
from facefusion_ray.media.encode import X264_PRESETS
from facefusion_ray.media.pixel_limit import MAX_PIXELS_OPTION
from facefusion_ray.models.execution import ExecutionConfig
from facefusion_ray.settings import SwapSettings
from facefusion_ray.storage import parse_storage_options


def add_swap_options(parser: argparse.ArgumentParser) -> None:
    defaults = SwapSettings()
    parser.add_argument(
        "--chunk-frames",
        type=int,
        default=defaults.chunk_frames,
        help="frames per chunk, the unit of scheduling (default %(default)s)",
    )
    parser.add_argument(
        "--workers", type=int, default=defaults.workers, help="render actors (default %(default)s)"
    )
    parser.add_argument(
        "--face-detector-score",
        type=float,
        default=defaults.face_detector_score,
        help="minimum detection score, 0-1 (default %(default)s)",
    )
    parser.add_argument(
        "--face-detector-model",
        default=defaults.face_detector_model,
        help="yunet (embedded), scrfd_2.5g, retinaface_10g or yoloface_8n (default %(default)s)",
    )
    parser.add_argument(
        "--face-detector-angles",
        type=int,
        nargs="+",
        default=list(defaults.face_detector_angles),
        choices=[0, 90, 180, 270],
        help="also detect faces turned by these angles (default 0)",
    )
    parser.add_argument(
        "--face-landmarker-model",
        help="refine landmarks with 68 points, e.g. 2dfan4 (default: the detector's 5 points)",
    )
    parser.add_argument(
        "--face-landmarker-score",
        type=float,
        default=defaults.face_landmarker_score,
        help="68-point estimates scoring above this replace the 5 points (default %(default)s)",
    )
    parser.add_argument(
        "--face-occluder-model",
        help="occlusion mask for neural swappers, e.g. xseg_1 (default none)",
    )
    parser.add_argument(
        "--face-swapper-model",
        default=defaults.face_swapper_model,
        help="classic (no weights) or a manifest swapper such as inswapper_128, "
        "hyperswap_1a_256, simswap_256 (default %(default)s)",
    )
    parser.add_argument(
        "--face-enhancer-model",
        help="enhance the swapped faces with a manifest enhancer, e.g. gfpgan_1.4 (default none)",
    )
    parser.add_argument(
        "--face-enhancer-blend",
        type=int,
        default=defaults.face_enhancer_blend,
        help="how much of the enhanced face to keep, 0-100 (default %(default)s)",
    )
    parser.add_argument(
        "--face-mask-blur",
        type=float,
        default=defaults.face_mask_blur,
        help="box mask blur of the neural swappers, 0-1 (default %(default)s)",
    )
    parser.add_argument(
        "--face-mask-padding",
        type=int,
        nargs=4,
        default=list(defaults.face_mask_padding),
        metavar=("TOP", "RIGHT", "BOTTOM", "LEFT"),
        help="box mask padding in percent (default 0 0 0 0)",
    )
    parser.add_argument(
        "--analysis-cache",
        help="per-frame analysis cache URL, e.g. s3://bucket/analysis (default: local folder)",
    )
    parser.add_argument(
        "--no-analysis-cache",
        action="store_true",
        help="analyse every frame and store nothing",
    )
    parser.add_argument(
        "--model-store", help="model store URL, e.g. s3://bucket/models (default: local store)"
    )
    parser.add_argument(
        "--output-video-quality",
        type=int,
        default=defaults.output_video_quality,
        help="0-100, mapped to libx264 CRF like FaceFusion (default %(default)s)",
    )
    parser.add_argument(
        "--output-video-preset",
        default=defaults.output_video_preset,
        choices=X264_PRESETS,
        help="libx264 preset (default %(default)s)",
    )
    parser.add_argument(
        MAX_PIXELS_OPTION,
        type=int,
        default=defaults.max_pixels,
        metavar="N",
        help="refuse images and video frames of more than N pixels, read from their header "
        "before decoding (default %(default)s: 8192x8192)",
    )
    parser.add_argument(
        "--face-selector-mode",
        choices=FACE_SELECTOR_MODES,
        default="many",
        help="which target faces to swap: every face, the first in order, or the faces "
        "matching a reference face (default %(default)s)",
    )
    parser.add_argument(
        "--face-selector-order",
        choices=FACE_SELECTOR_ORDERS,
        default="large-small",
        help="order of the faces for 'one' and the reference position (default %(default)s)",
    )
    parser.add_argument(
        "--reference-face-position",
        type=int,
        default=0,
        help="index of the reference face in the reference frame, in the selector order",
    )
    parser.add_argument(
        "--reference-face-distance",
        type=float,
        default=DEFAULT_REFERENCE_FACE_DISTANCE,
        help="faces closer than this to the reference are swapped, 0-1 (default %(default)s)",
    )
    parser.add_argument(
        "--reference-frame-number",
        type=int,
        default=0,
        help="frame of the target that holds the reference face (default %(default)s)",
    )
    parser.add_argument(
        "--debug-overlay",
        action="store_true",
        help="draw boxes, landmarks, scores and the selected faces onto the output",
    )
    parser.add_argument(
        "--execution-provider",
        choices=["cpu", "cuda", "tensorrt"],
        default="cpu",
        help="where the models run in each actor (default %(default)s)",
    )
    parser.add_argument(
        "--allow-cpu-fallback",
        action="store_true",
        help="continue on CPU (FP32) when a GPU session cannot start or runs out of memory",
    )
    parser.add_argument(
        "--gpu-fraction", type=float, help="GPUs per render actor, e.g. 0.25 (default 1)"
    )
    parser.add_argument("--gpu-memory-limit", type=int, help="ORT CUDA arena limit in bytes")
    parser.add_argument("--actor-memory", type=int, help="Ray memory reservation per actor, bytes")
    parser.add_argument(
        "--threads-per-worker", type=int, default=1, help="CPUs per render actor (default 1)"
    )


def settings_from(args: argparse.Namespace) -> SwapSettings:
    return SwapSettings(
        face_detector_score=args.face_detector_score,
        face_detector_model=args.face_detector_model,
        face_detector_angles=tuple(args.face_detector_angles),
        face_landmarker_model=args.face_landmarker_model,
        face_landmarker_score=args.face_landmarker_score,
        face_occluder_model=args.face_occluder_model,
        face_swapper_model=args.face_swapper_model,
        face_enhancer_model=args.face_enhancer_model,
        face_enhancer_blend=args.face_enhancer_blend,
        face_mask_blur=args.face_mask_blur,
        face_mask_padding=tuple(args.face_mask_padding),
        model_store=args.model_store,
        analysis_cache=args.analysis_cache,
        use_analysis_cache=not args.no_analysis_cache,
        output_video_quality=args.output_video_quality,
        output_video_preset=args.output_video_preset,
        max_pixels=args.max_pixels,
        chunk_frames=args.chunk_frames,
        workers=args.workers,
        face_selector=FaceSelection(
            mode=args.face_selector_mode,
            order=args.face_selector_order,
            reference_face_position=args.reference_face_position,
            reference_face_distance=args.reference_face_distance,
        ),
        reference_frame_number=args.reference_frame_number,
        debug_overlay=args.debug_overlay,
        execution=ExecutionConfig(
            device=args.execution_provider,
            allow_cpu_fallback=args.allow_cpu_fallback,
            intra_op_threads=args.threads_per_worker,
            gpu_fraction=args.gpu_fraction,
            gpu_memory_limit_bytes=args.gpu_memory_limit,
            memory_bytes=args.actor_memory,
        ),
    )


def add_job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report", type=Path, help="write the run report as JSON here")
    parser.add_argument(
        "--address",
        help="join this Ray cluster (auto: the one on this machine; default: $RAY_ADDRESS, "
        "else start a local Ray)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--work-store",
        metavar="URL",
        help="where finished segments wait for assembly and resume: a folder or s3://... "
        "shared by all nodes (default: $FACEFUSION_RAY_WORK_STORE or the user cache)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="render again even when the output was already rendered from the same inputs",
    )
    add_storage_option_argument(
        parser, "s3:// targets, outputs, the analysis cache and the work store"
    )


def add_storage_option_argument(parser: argparse.ArgumentParser, applies_to: str) -> None:
    """`--storage-option KEY=VALUE`, repeatable, for the stores named by `applies_to`."""
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"fsspec option for {applies_to}, repeatable; dotted keys fill nested arguments, "
        "e.g. client_kwargs.endpoint_url=http://127.0.0.1:8333",
    )


def storage_options_from(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    return tuple(parse_storage_options(args.storage_option).items())
