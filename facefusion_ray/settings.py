"""Options of a swap job, as plain data that travels from the driver to every actor."""

from dataclasses import dataclass, field

from facefusion_ray.analysis.select import FACE_SELECTOR_MODES, FACE_SELECTOR_ORDERS, FaceSelection
from facefusion_ray.errors import SettingsError
from facefusion_ray.media.encode import X264_PRESETS
from facefusion_ray.media.pixel_limit import DEFAULT_MAX_PIXELS
from facefusion_ray.models.execution import ExecutionConfig

CLASSIC_SWAPPER = "classic"
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True)
class SwapSettings:
    face_detector_model: str = "yunet"
    face_detector_score: float = 0.5
    face_detector_angles: tuple[int, ...] = (0,)
    # 68-point landmarks (2dfan4, with fan_68_5 for its angle estimate) refine the 5 points.
    face_landmarker_model: str | None = None
    face_landmarker_score: float = 0.5
    # Occlusion mask (xseg_1) for the neural swappers: hands or hair in front stay visible.
    face_occluder_model: str | None = None
    face_swapper_model: str = "classic"
    face_mask_feather: float = 0.08
    face_enhancer_model: str | None = None
    face_enhancer_blend: int = 80
    face_mask_blur: float = 0.3
    face_mask_padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    output_video_quality: int = 80
    output_video_preset: str = "veryfast"
    chunk_frames: int = 64
    workers: int = 2
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    face_selector: FaceSelection = field(default_factory=FaceSelection)
    reference_frame_number: int = 0
    debug_overlay: bool = False
    # Where the actors find their models: a store URL (None: this machine's default store)
    # and a manifest file (None: the bundled one). Both travel with the settings to every node.
    model_store: str | None = None
    manifest_path: str | None = None
    # Per-frame analysis results, shared by every render of the same footage (None: this
    # machine's default cache folder); off only when asked.
    analysis_cache: str | None = None
    use_analysis_cache: bool = True
    # Images and video frames larger than this (width x height) are refused from their header,
    # before anything is decoded.
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if not 0.0 <= self.face_detector_score <= 1.0:
            raise SettingsError("face detector score must be between 0 and 1")
        if not 0 <= self.output_video_quality <= 100:
            raise SettingsError("output video quality must be between 0 and 100")
        if self.output_video_preset not in X264_PRESETS:
            raise SettingsError(
                f"unknown output video preset {self.output_video_preset!r} "
                f"(one of {', '.join(X264_PRESETS)})"
            )
        if self.max_pixels < 1:
            raise SettingsError("max pixels must be at least 1")
        if self.chunk_frames < 1:
            raise SettingsError("chunk frames must be at least 1")
        if self.workers < 1:
            raise SettingsError("workers must be at least 1")
        selector = self.face_selector
        if selector.mode not in FACE_SELECTOR_MODES:
            raise SettingsError(f"unknown face selector mode: {selector.mode}")
        if selector.order not in FACE_SELECTOR_ORDERS:
            raise SettingsError(f"unknown face selector order: {selector.order}")
        if not 0.0 <= selector.reference_face_distance <= 1.0:
            raise SettingsError("reference face distance must be between 0 and 1")
        if selector.reference_face_position < 0 or self.reference_frame_number < 0:
            raise SettingsError("reference face position and frame number must not be negative")
        if not self.face_detector_angles or any(
            angle not in (0, 90, 180, 270) for angle in self.face_detector_angles
        ):
            raise SettingsError("face detector angles are some of 0 90 180 270")
        if not 0.0 <= self.face_landmarker_score <= 1.0:
            raise SettingsError("face landmarker score must be between 0 and 1")
        if not 0 <= self.face_enhancer_blend <= 100:
            raise SettingsError("face enhancer blend must be between 0 and 100")
        if not 0.0 <= self.face_mask_blur <= 1.0:
            raise SettingsError("face mask blur must be between 0 and 1")
        if len(self.face_mask_padding) != 4 or not all(
            0 <= value <= 100 for value in self.face_mask_padding
        ):
            raise SettingsError("face mask padding is four percentages: top right bottom left")

    @property
    def uses_classic_swapper(self) -> bool:
        return self.face_swapper_model == CLASSIC_SWAPPER

    @property
    def threads_per_worker(self) -> int:
        return self.execution.intra_op_threads
