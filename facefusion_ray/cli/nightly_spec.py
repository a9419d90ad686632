"""The `nightly:` section of a batch spec: where dated run reports go and what is tidied up."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from facefusion_ray.errors import SettingsError

NIGHTLY_KEYS = ("report_dir", "cache_max_bytes", "keep_reports")
_BYTE_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]i?)?B?\s*$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
_BINARY_BYTE_UNITS = {"ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4}


@dataclass(frozen=True)
class NightlySettings:
    """How a scheduled run of the spec reports and tidies up (the spec's `nightly:` section)."""

    # Folder (or s3:// prefix) of the dated run reports.
    report_dir: str
    # Prune the analysis cache to at most this many bytes after the run; None: no pruning.
    cache_max_bytes: int | None = None
    # Keep the newest this many dated reports in report_dir; None: keep all.
    keep_reports: int | None = None


def parse_nightly(
    value: object, default_report_dir: str, resolve: Callable[[str], str], where: str
) -> NightlySettings:
    """The spec's `nightly:` section; `resolve` places a relative report folder."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise SettingsError(f"{where}: 'nightly' must be a mapping ({', '.join(NIGHTLY_KEYS)})")
    unknown = sorted(set(value) - set(NIGHTLY_KEYS))
    if unknown:
        raise SettingsError(
            f"{where}: unknown key 'nightly.{unknown[0]}' (known keys: {', '.join(NIGHTLY_KEYS)})"
        )
    report_dir = value.get("report_dir")
    if report_dir is None:
        report_dir = default_report_dir
    elif isinstance(report_dir, str) and report_dir:
        report_dir = resolve(report_dir).rstrip("/")
    else:
        raise SettingsError(f"{where}: 'nightly.report_dir' must be a folder path or URL")
    keep_reports = value.get("keep_reports")
    if keep_reports is not None and (
        isinstance(keep_reports, bool) or not isinstance(keep_reports, int) or keep_reports < 1
    ):
        raise SettingsError(
            f"{where}: 'nightly.keep_reports' must be a whole number of at least 1, "
            f"not {keep_reports!r}"
        )
    return NightlySettings(
        report_dir=report_dir,
        cache_max_bytes=_byte_size(value.get("cache_max_bytes"), "nightly.cache_max_bytes", where),
        keep_reports=keep_reports,
    )


def _byte_size(value: object, key: str, where: str) -> int | None:
    """A whole number of bytes, or a size such as `500MB`, `20GB` or `50GiB`."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    matched = _BYTE_SIZE.match(value) if isinstance(value, str) else None
    if matched is None:
        raise SettingsError(
            f"{where}: '{key}' must be a number of bytes or a size such as 500MB or 50GiB, "
            f"not {value!r}"
        )
    number, unit = int(matched.group(1)), (matched.group(2) or "").lower()
    return number * (_BINARY_BYTE_UNITS.get(unit) or _BYTE_UNITS[unit])
