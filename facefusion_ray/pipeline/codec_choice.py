"""The encoder and decode acceleration a video render really uses, chosen once on the driver.

Every segment of an output must come from the same encoder (they are joined without
re-encoding), so the choice is made once per render, before the keys: with a fallback, the
render key names the encoder that made the pixels, not the one that was asked for.
"""

import dataclasses
import logging

from facefusion_ray.media.video_codecs import choose_codecs
from facefusion_ray.settings import SwapSettings

logger = logging.getLogger(__name__)


def with_usable_codecs(settings: SwapSettings) -> tuple[SwapSettings, tuple[str, ...]]:
    """`settings` with an encoder and decode hwaccel that open here, and a note per fallback.

    CodecUnavailable (one line naming the cause) when one cannot open and the settings do not
    allow falling back to the CPU."""
    choice = choose_codecs(
        settings.output_video_encoder,
        settings.decode_hwaccel,
        settings.execution.allow_cpu_fallback,
    )
    for note in choice.notes:
        logger.warning("%s", note)
    if (choice.encoder, choice.hwaccel) == (settings.output_video_encoder, settings.decode_hwaccel):
        return settings, choice.notes
    usable = dataclasses.replace(
        settings, output_video_encoder=choice.encoder, decode_hwaccel=choice.hwaccel
    )
    return usable, choice.notes
