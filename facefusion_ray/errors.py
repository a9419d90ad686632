"""User-facing errors: each carries a one-line message the CLI prints before exiting non-zero."""


class FaceFusionRayError(Exception):
    """Base class for errors caused by input, configuration or environment, not by a bug."""


class MediaError(FaceFusionRayError):
    """A file is missing, unreadable, not a video or image, empty or truncated."""


class AssetError(FaceFusionRayError):
    """A pinned asset could not be fetched or failed its SHA-256 check."""


class ModelError(FaceFusionRayError):
    """A model could not be prepared or loaded into an inference session."""


class NoFaceError(FaceFusionRayError):
    """A source image has no detectable face."""


class SettingsError(FaceFusionRayError):
    """An option is out of range or names something that does not exist."""
