"""Source images shared by a job's renders, prepared once per job on the driver.

A catalog renders many targets with the same few faces: each source is staged (downloaded when
remote), checked against the pixel limit and hashed once, and each set of sources is detected
and embedded once per analysis setup, however many renders use it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from facefusion_ray.assets.fetch import file_sha256
from facefusion_ray.media.pixel_limit import check_image_file
from facefusion_ray.pipeline.content_keys import analysis_key
from facefusion_ray.pipeline.model_plan import ModelPlan, Role
from facefusion_ray.pipeline.sources import SourceIdentity
from facefusion_ray.settings import SwapSettings
from facefusion_ray.storage.locations import stage_input

IdentityKey = tuple[tuple[str, ...], str, str]


class SharedSources:
    """The job's memory of its source images; one per job (the driver's preparation thread)."""

    def __init__(self, storage_options: Mapping[str, str] | None = None) -> None:
        self._storage_options = dict(storage_options or {})
        self._files: dict[str, Path] = {}
        self._checked: set[tuple[Path, int]] = set()
        self._hashes: dict[Path, str] = {}
        self._identities: dict[IdentityKey, SourceIdentity] = {}

    def local_files(self, locations: Sequence[str], max_pixels: int) -> list[Path]:
        """Each source as a local file, held to `max_pixels` from its header."""
        files: list[Path] = []
        for location in locations:
            path = self._files.get(location)
            if path is None:
                path = self._files[location] = stage_input(location, self._storage_options)
            if (path, max_pixels) not in self._checked:
                check_image_file(path, max_pixels)  # from the header, before any decoding
                self._checked.add((path, max_pixels))
            files.append(path)
        return files

    def fingerprints(self, paths: Sequence[Path]) -> list[str]:
        """SHA-256 of each source's content, for the render key."""
        for path in paths:
            if path not in self._hashes:
                self._hashes[path] = file_sha256(path)
        return [self._hashes[path] for path in paths]

    def identity(
        self,
        paths: Sequence[Path],
        settings: SwapSettings,
        plan: ModelPlan,
        prepare: Callable[[], SourceIdentity],
    ) -> SourceIdentity:
        """The identity of `paths` under this analysis setup, from `prepare` the first time."""
        recognizer = plan.get(Role.SOURCE_RECOGNIZER)
        embedder = {} if recognizer is None else recognizer.identity()
        names = tuple(str(path) for path in paths)
        embedder_text = json.dumps(embedder, sort_keys=True, default=str)
        key = (names, analysis_key(settings, plan), embedder_text)
        identity = self._identities.get(key)
        if identity is None:
            identity = self._identities[key] = prepare()
        return identity
