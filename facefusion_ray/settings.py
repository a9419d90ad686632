"""Options of a render, as plain data that travels from the driver to every actor.

Each field declares its scope beside its definition (`option_scopes`): the analysis-cache key
and the render key are derived from those declarations.
"""

from dataclasses import dataclass

from facefusion_ray.analysis.select import FaceSelection
from facefusion_ray.errors import SettingsError
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.media.pixel_limit import DEFAULT_MAX_PIXELS
from facefusion_ray.media.video_codecs import DECODE_HWACCELS, VIDEO_ENCODERS, VIDEO_PRESETS
from facefusion_ray.option_scopes import Scope, check_declared_values, declared, nested
from facefusion_ray.storage.ranged_reads import TargetReads

CLASSIC_SWAPPER = "classic"
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
DETECTOR_ANGLES = (0, 90, 180, 270)
# The detectors' largest stride: every detector input side is a multiple of it.
DETECTOR_SIZE_STEP = 32

ANALYSIS, PIXELS, NEITHER = Scope.ANALYSIS, Scope.PIXELS, Scope.NEITHER


@dataclass(frozen=True)
class SwapSettings:
    face_detector_model: str = declared("yunet", ANALYSIS)
    face_detector_score: float = declared(0.5, ANALYSIS, bounds=(0, 1))
    face_detector_angles: tuple[int, ...] = declared((0,), ANALYSIS, choices=DETECTOR_ANGLES)
    # 68-point landmarks (2dfan4, with its 68-from-5 estimator) refine the 5 points; cached
    # faces are stored after that choice, so its score shapes the analysis too.
    face_landmarker_model: str | None = declared(None, ANALYSIS)
    face_landmarker_score: float = declared(0.5, ANALYSIS, bounds=(0, 1))
    # Embeds target faces for the reference and identity-map selectors; "auto": ArcFace
    # (arcface_w600k_r50, as FaceFusion) with a neural swapper, SFace with the classic one.
    face_recognizer_model: str = declared("auto", ANALYSIS)
    # Occlusion mask (xseg_1) for the neural swappers: hands or hair in front stay visible.
    face_occluder_model: str | None = declared(None, PIXELS)
    face_swapper_model: str = declared(CLASSIC_SWAPPER, PIXELS)
    face_mask_feather: float = declared(0.08, PIXELS)
    face_enhancer_model: str | None = declared(None, PIXELS)
    face_enhancer_blend: int = declared(80, PIXELS, bounds=(0, 100))
    face_mask_blur: float = declared(0.3, PIXELS, bounds=(0, 1))
    face_mask_padding: tuple[int, int, int, int] = declared((0, 0, 0, 0), PIXELS)
    output_video_quality: int = declared(80, PIXELS, bounds=(0, 100))
    output_video_preset: str = declared("veryfast", PIXELS, choices=VIDEO_PRESETS)
    # FaceFusion's encoder names; every segment of an output comes from the same one.
    output_video_encoder: str = declared("libx264", PIXELS, choices=VIDEO_ENCODERS)
    # ffmpeg's -hwaccel for decoding the target; frames return to system memory. H.264 / HEVC /
    # VP9 / AV1 decoders are bit-exact by their standards, so the pixels do not depend on it.
    decode_hwaccel: str = declared("none", NEITHER, choices=DECODE_HWACCELS)
    # Each chunk pays a fixed cost: a new encoder with its IDR frame, the decoder's pre-roll
    # from the keyframe before it, the set-up of its frame loop. On the overhead profile (10 s
    # 720p, 2 workers, benchmarks/README.md) 150-frame chunks took 0.93x the wall time of
    # 64-frame ones, 0.65 CPU-s less decoding and 0.5 less encoding; a chunk is also the unit
    # of resume and of progress, so longer ones lose more to a crash and update less often.
    chunk_frames: int = declared(150, NEITHER, bounds=(1, None))
    workers: int = declared(2, NEITHER, bounds=(1, None))
    execution: ExecutionConfig = nested(ExecutionConfig)
    face_selector: FaceSelection = nested(FaceSelection)
    # How an s3:// target is read and named in the keys (ranged reads, staging, identity).
    target_reads: TargetReads = nested(TargetReads)
    reference_frame_number: int = declared(0, PIXELS, bounds=(0, None))
    debug_overlay: bool = declared(False, PIXELS)
    # Where the actors find their models: a store URL (None: this machine's default store)
    # and a manifest file (None: the bundled one). The models' hashes, not these locations,
    # are in the keys.
    model_store: str | None = declared(None, NEITHER)
    manifest_path: str | None = declared(None, NEITHER)
    # Per-frame analysis results, shared by every render of the same footage (None: this
    # machine's default cache folder); off only when asked.
    analysis_cache: str | None = declared(None, NEITHER)
    use_analysis_cache: bool = declared(True, NEITHER)
    # Images and video frames larger than this (width x height) are refused from their header,
    # before anything is decoded; it refuses inputs, never changes the pixels of one it accepts.
    max_pixels: int = declared(DEFAULT_MAX_PIXELS, NEITHER, bounds=(1, None))
    # FaceFusion's --face-detector-size, WIDTHxHEIGHT: the detector's input canvas, the frame
    # shrunk into its top left. Shapes the analysis.
    face_detector_size: str = declared("640x640", ANALYSIS)
    # Opt-in fast path: YuNet at the frame's own aspect ratio instead of FaceFusion's square
    # canvas; faster, but faces cut by the frame's edge can differ. Shapes the analysis.
    face_detector_frame_aspect: bool = declared(False, ANALYSIS)

    def __post_init__(self) -> None:
        check_declared_values(self)
        if len(self.face_mask_padding) != 4 or not all(
            0 <= value <= 100 for value in self.face_mask_padding
        ):
            raise SettingsError("face mask padding is four percentages: top right bottom left")
        detector_size(self.face_detector_size)

    @property
    def face_detector_canvas(self) -> tuple[int, int]:
        """--face-detector-size as (width, height)."""
        return detector_size(self.face_detector_size)

    @property
    def uses_classic_swapper(self) -> bool:
        return self.face_swapper_model == CLASSIC_SWAPPER

    @property
    def threads_per_worker(self) -> int:
        return self.execution.intra_op_threads


def detector_size(text: str) -> tuple[int, int]:
    """'640x640' -> (640, 640); SettingsError unless both sides are multiples of the stride."""
    width, separator, height = text.lower().partition("x")
    if (
        separator
        and width.isdigit()
        and height.isdigit()
        and all(int(side) > 0 and int(side) % DETECTOR_SIZE_STEP == 0 for side in (width, height))
    ):
        return int(width), int(height)
    raise SettingsError(
        f"face detector size {text!r} is not WIDTHxHEIGHT in multiples of {DETECTOR_SIZE_STEP}"
    )
