"""The dated report of a nightly run: what was rendered, what was up to date, what failed and
why, and how the analysis cache was pruned; as JSON and as a short markdown summary."""

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from facefusion_ray import storage
from facefusion_ray.engine.job_report import FAILED, RENDERED, UP_TO_DATE, JobReport
from facefusion_ray.storage.locations import is_remote

REPORT_PREFIX = "nightly-"
NOTHING_NEW = "Nothing new to render: every output is up to date."
SECTIONS = ((FAILED, "Failed"), (RENDERED, "Rendered"), (UP_TO_DATE, "Up to date"))


@dataclass(frozen=True)
class CachePruning:
    """The analysis cache pruned to `max_bytes` after the renders (or why it could not be)."""

    cache: str
    max_bytes: int
    removed_chunks: int = 0
    freed_bytes: int = 0
    error: str | None = None

    def line(self) -> str:
        if self.error is not None:
            return f"pruning {self.cache} to {self.max_bytes} bytes FAILED: {self.error}"
        return (
            f"pruned {self.cache} to at most {self.max_bytes} bytes: removed "
            f"{self.removed_chunks} chunks, {self.freed_bytes} bytes"
        )


@dataclass(frozen=True)
class NightlyRun:
    spec: str
    started_at: datetime  # UTC
    finished_at: datetime  # UTC
    job: JobReport
    # None when the spec sets no nightly.cache_max_bytes or the renders use no analysis cache.
    cache_pruning: CachePruning | None

    @property
    def succeeded(self) -> bool:
        pruning_failed = self.cache_pruning is not None and self.cache_pruning.error is not None
        return not self.job.failed and not pruning_failed

    @property
    def nothing_new(self) -> bool:
        counts = self.job.counts()
        return counts[RENDERED] == 0 and counts[FAILED] == 0

    def file_stem(self) -> str:
        """`nightly-2026-01-05T020000Z`: sorts by time, and two runs of one day do not collide."""
        return REPORT_PREFIX + self.started_at.strftime("%Y-%m-%dT%H%M%SZ")

    def to_dict(self) -> dict[str, object]:
        return {
            "spec": self.spec,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": self.finished_at.isoformat(timespec="seconds"),
            "succeeded": self.succeeded,
            "nothing_new": self.nothing_new,
            "counts": self.job.counts(),
            "failed": [{"name": r.name, "error": r.error} for r in self.job.failed],
            "cache_pruning": None if self.cache_pruning is None else vars(self.cache_pruning),
            "job": self.job.to_dict(),
        }

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2) + "\n").encode()

    def to_markdown(self) -> bytes:
        counts = self.job.counts()
        lines = [
            f"# Nightly run {self.started_at:%Y-%m-%d %H:%M:%S} UTC",
            "",
            f"Spec `{self.spec}`: {len(self.job.renders)} renders, {counts[RENDERED]} rendered, "
            f"{counts[UP_TO_DATE]} up to date, {counts[FAILED]} failed in "
            f"{self.job.seconds:.1f} s.",
        ]
        if self.nothing_new:
            lines += ["", f"**{NOTHING_NEW}**"]
        for status, title in SECTIONS:
            renders = [render for render in self.job.renders if render.status == status]
            if renders:
                lines += ["", f"## {title}", ""]
                lines += [f"- {_markdown_line(render.line())}" for render in renders]
        lines += ["", "## Analysis cache", ""]
        if self.cache_pruning is None:
            lines.append("Not pruned (no `nightly.cache_max_bytes` in the spec, or no cache).")
        else:
            lines.append(_markdown_line(self.cache_pruning.line()) + ".")
        return ("\n".join(lines) + "\n").encode()

    def summary(self) -> str:
        """What the job prints on stdout."""
        lines = [self.job.summary()]
        if self.nothing_new:
            lines.append(NOTHING_NEW)
        if self.cache_pruning is not None:
            lines.append(self.cache_pruning.line())
        return "\n".join(lines)


def _markdown_line(text: str) -> str:
    """The plain summary line with its padding collapsed (it is column-aligned for terminals)."""
    return " ".join(text.split())


def remove_old_reports(folder: str, keep: int, storage_options: Mapping[str, str]) -> list[str]:
    """Delete all but the newest `keep` dated reports (JSON and markdown) in `folder`."""
    filesystem, root = storage.open_filesystem(folder, storage_options)
    reports = sorted(
        path
        for path in storage.list_files(filesystem, root)
        if posixpath.basename(path).startswith(REPORT_PREFIX)
        and posixpath.dirname(path.rstrip("/")) == root.rstrip("/")
    )
    stems = sorted({posixpath.splitext(path)[0] for path in reports})
    old_stems = set(stems[: max(len(stems) - keep, 0)])
    removed = [path for path in reports if posixpath.splitext(path)[0] in old_stems]
    for path in removed:
        storage.remove(filesystem, path)
    return [_location(folder, posixpath.basename(path)) for path in removed]


def _location(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}" if is_remote(folder) else posixpath.join(folder, name)
