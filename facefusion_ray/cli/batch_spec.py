"""A batch spec: the renders of one catalog job (every target x every source), read from YAML.

```yaml
targets: ["videos/*.mp4", "s3://bucket/in/*.mov"]     # paths, globs, s3:// URLs or globs
sources: ["faces/a.jpg", ["faces/b1.jpg", "faces/b2.jpg"]]  # a list: several images, one person
output: "out/{target_stem}__{source_stem}.mp4"         # may be s3://...
options: {face_swapper_model: classic, output_video_quality: 80}  # the swap command's options
workers: 2
report: out/batch_report.json
storage_options: {client_kwargs.endpoint_url: "http://127.0.0.1:8333"}
nightly:                        # read by `python -m ray_jobs.nightly`, ignored by `batch`
  report_dir: out/reports       # dated run reports (default: the first output's folder)
  cache_max_bytes: 50GiB        # prune the analysis cache to this size after the run
  keep_reports: 30              # keep the newest 30 dated reports (default: all)
```

Output fields: target_stem, source_stem, target_name, source_name (the file names, with and
without suffix; of the first image for a list of sources) and index (the render's position,
from 0; `{index:03d}` pads it). Relative paths and globs are relative to the spec's folder.
Options are checked against the swap options' table, the one the command line is built
from, so the spec accepts exactly what `facefusion-ray swap` accepts.
"""

from __future__ import annotations

import difflib
import glob
import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from facefusion_ray.cli.nightly_spec import NightlySettings, parse_nightly
from facefusion_ray.cli.spec_yaml import read_document
from facefusion_ray.cli.swap_options import (
    SWAP_OPTIONS,
    option_named,
    option_value,
    settings_from_values,
)
from facefusion_ray.engine.job_options import JobOptions
from facefusion_ray.errors import SettingsError
from facefusion_ray.file_names import safe_file_name, stays_in_pattern_folder
from facefusion_ray.pipeline.render_request import RenderRequest
from facefusion_ray.settings import SwapSettings
from facefusion_ray.storage.filesystem import redact
from facefusion_ray.storage.locations import expand_glob, is_remote, same_location

SPEC_KEYS = (
    "targets",
    "sources",
    "output",
    "options",
    "workers",
    "report",
    "storage_options",
    "nightly",
)
REQUIRED_KEYS = ("targets", "sources", "output")
OUTPUT_FIELDS = ("target_stem", "source_stem", "target_name", "source_name", "index")
# Swap options that belong to the whole job, not to each render.
_JOB_OPTIONS = {
    "workers": "set 'workers' at the top level of the spec",
    "report": "set 'report' at the top level of the spec",
    "address": "it belongs to the batch command line",
    "no_progress": "it belongs to the batch command line",
}
# Option values that are locations, resolved against the spec's folder like targets are.
_LOCATION_OPTIONS = frozenset({"analysis_cache", "model_store"})


@dataclass(frozen=True)
class BatchSpec:
    renders: list[RenderRequest]
    workers: int | None = None
    report: Path | str | None = None
    # fsspec options for the remote locations (flat, dotted keys as parse_storage_options gives).
    storage_options: dict[str, str] = field(default_factory=dict)
    nightly: NightlySettings = field(default_factory=lambda: NightlySettings(report_dir="."))


def load_batch_spec(path: Path) -> BatchSpec:
    """Read, check and expand a batch spec; SettingsError names what is wrong and where."""
    document = read_document(path)
    where = f"batch spec {path}"
    unknown = sorted(set(document) - set(SPEC_KEYS))
    if unknown:
        raise SettingsError(
            f"{where}: unknown key {unknown[0]!r} (known keys: {', '.join(SPEC_KEYS)})"
        )
    missing = [key for key in REQUIRED_KEYS if document.get(key) is None]
    if missing:
        raise SettingsError(f"{where}: {missing[0]!r} is required")
    folder = path.resolve().parent
    storage_options = _storage_options(document.get("storage_options"), where)
    workers = _workers(document.get("workers"), where)
    settings = swap_settings_from_options(document.get("options"), workers, folder, where)
    targets = _expand_locations(
        _string_items(document["targets"], "targets", where), folder, storage_options, where
    )
    sources = _source_sets(document["sources"], folder, storage_options, where)
    output_pattern = _output_pattern(document["output"], where)
    renders = _renders(targets, sources, output_pattern, settings, folder, where)
    _check_outputs(renders, where)
    return BatchSpec(
        renders=renders,
        workers=workers,
        report=_report(document.get("report"), folder, where),
        storage_options=storage_options,
        nightly=parse_nightly(
            document.get("nightly"),
            _parent_location(renders[0].output) if renders else str(folder),
            lambda location: _resolve_location(location, folder),
            where,
        ),
    )


def swap_settings_from_options(
    options: object, workers: int | None, folder: Path, where: str
) -> SwapSettings:
    """`{option name: value}` checked and converted by the swap options' table."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise SettingsError(f"{where}: 'options' must be a mapping of option names to values")
    values: dict[str, object] = {}
    for raw_name, value in options.items():
        name = str(raw_name).replace("-", "_")
        if name in _JOB_OPTIONS:
            raise SettingsError(f"{where}: option {name} is not per render: {_JOB_OPTIONS[name]}")
        option = option_named(name)
        if option is None:
            raise SettingsError(f"{where}: unknown option {name!r}{_suggestion(name)}")
        if name in _LOCATION_OPTIONS and isinstance(value, str):
            value = _resolve_location(value, folder)
        try:
            if value is not None:
                values[option.field] = option_value(option, value)
        except SettingsError as error:
            raise SettingsError(f"{where}: option {name}{error}") from None
    if workers is not None:
        values["workers"] = workers
    try:
        return settings_from_values(values)
    except SettingsError as error:
        raise SettingsError(f"{where}: {error}") from None


def _suggestion(name: str) -> str:
    known = [option.name for option in SWAP_OPTIONS if option.name not in _JOB_OPTIONS]
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(sorted(known))})"


def _string_items(value: object, key: str, where: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
        raise SettingsError(f"{where}: {key!r} must be a list of paths, globs or URLs")
    if not items:
        raise SettingsError(f"{where}: {key!r} is empty")
    return items


def _expand_locations(
    patterns: Sequence[str], folder: Path, storage_options: Mapping[str, str], where: str
) -> list[str]:
    """Every pattern's matches, sorted per pattern, in spec order; repeats are kept once."""
    locations: dict[str, None] = {}
    for pattern in patterns:
        matches = expand_glob(_anchored_pattern(pattern, folder), storage_options)
        if not matches:
            raise SettingsError(redact(f"{where}: {pattern!r} matches no file"))
        locations.update(dict.fromkeys(_normalized(match) for match in matches))
    return list(locations)


def _source_sets(
    value: object, folder: Path, storage_options: Mapping[str, str], where: str
) -> list[tuple[str, ...]]:
    """Each source image (or each match of a glob) is one render; a list of images is one
    render whose several images show one person."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise SettingsError(f"{where}: 'sources' must be a non-empty list of paths or globs")
    source_sets: list[tuple[str, ...]] = []
    for item in items:
        if isinstance(item, str) and item:
            matches = _expand_locations([item], folder, storage_options, where)
            source_sets += [(match,) for match in matches]
        elif isinstance(item, list) and item and all(isinstance(part, str) for part in item):
            source_sets.append(tuple(_expand_locations(item, folder, storage_options, where)))
        else:
            raise SettingsError(
                f"{where}: each source is a path, glob or URL, or a list of them, not {item!r}"
            )
    return list(dict.fromkeys(source_sets))


def _anchored_pattern(pattern: str, folder: Path) -> str:
    if is_remote(pattern):
        return pattern
    expanded = os.path.expanduser(pattern)
    if os.path.isabs(expanded):
        return expanded
    # The spec's folder is a literal prefix: brackets in its name are not glob syntax.
    return os.path.join(glob.escape(str(folder)), expanded)


def _normalized(location: str) -> str:
    return location if is_remote(location) else os.path.normpath(location)


def _resolve_location(location: str, folder: Path) -> str:
    if is_remote(location):
        return location
    return os.path.normpath(folder / Path(location).expanduser())


def _output_pattern(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{where}: 'output' must be a path or URL pattern")
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as error:
        raise SettingsError(f"{where}: output pattern {value!r}: {error}") from None
    for _, field_name, format_spec, _ in parsed:
        if field_name is None:
            continue
        if field_name not in OUTPUT_FIELDS:
            raise SettingsError(
                f"{where}: output pattern {value!r} has unknown field {{{field_name}}} "
                f"(fields: {', '.join(OUTPUT_FIELDS)})"
            )
        if format_spec and "{" in format_spec:
            raise SettingsError(f"{where}: output pattern {value!r} nests fields")
    return value


def _renders(
    targets: Sequence[str],
    source_sets: Sequence[tuple[str, ...]],
    output_pattern: str,
    settings: SwapSettings,
    folder: Path,
    where: str,
) -> list[RenderRequest]:
    renders: list[RenderRequest] = []
    for target in targets:
        for sources in source_sets:
            target_name, source_name = _file_name(target), _file_name(sources[0])
            # Names come from folders and buckets others fill: each field is reduced to one
            # safe file name, so no output leaves the folder its pattern names.
            fields: dict[str, str | int] = {
                "target_stem": safe_file_name(_stem(target_name)),
                "source_stem": safe_file_name(_stem(source_name)),
                "target_name": safe_file_name(target_name),
                "source_name": safe_file_name(source_name),
                "index": len(renders),
            }
            try:
                output = output_pattern.format(**fields)
            except (ValueError, TypeError) as error:
                raise SettingsError(
                    f"{where}: output pattern {output_pattern!r}: {error}"
                ) from None
            _check_contained(output_pattern, output, where)
            renders.append(
                RenderRequest(
                    target=target,
                    sources=sources,
                    output=_resolve_location(output, folder),
                    settings=settings,
                    name=f"{fields['target_stem']} <- {fields['source_stem']}",
                )
            )
    return renders


def _check_contained(pattern: str, output: str, where: str) -> None:
    if not stays_in_pattern_folder(pattern, output):
        raise SettingsError(
            redact(f"{where}: output pattern {pattern!r} gives {output!r}, outside its folder")
        )


def _check_outputs(renders: Sequence[RenderRequest], where: str) -> None:
    writers: dict[str, RenderRequest] = {}
    for render in renders:
        if any(same_location(render.output, i) for i in (render.target, *render.sources)):
            raise SettingsError(
                redact(f"{where}: render {render.name!r} would overwrite its input {render.output}")
            )
        earlier = writers.setdefault(render.output, render)
        if earlier is not render:
            raise SettingsError(
                redact(
                    f"{where}: renders {earlier.name!r} ({earlier.target}) and {render.name!r} "
                    f"({render.target}) both write {render.output}; "
                    "add {target_stem}, {source_stem} or {index} to the output pattern"
                )
            )


def _file_name(location: str) -> str:
    if is_remote(location):
        return PurePosixPath(location.split("://", 1)[1]).name
    return Path(location).name


def _stem(name: str) -> str:
    return PurePosixPath(name).stem


def _workers(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{where}: 'workers' must be a whole number, not {value!r}")
    return value


def _report(value: object, folder: Path, where: str) -> Path | str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{where}: 'report' must be a path or URL")
    return value if is_remote(value) else Path(_resolve_location(value, folder))


def _storage_options(value: object, where: str) -> dict[str, str]:
    """Nested mappings become dotted keys; values become the strings parse_storage_options
    gives (true/false, numbers as written), which open_filesystem types again."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingsError(f"{where}: 'storage_options' must be a mapping")
    flat: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, Mapping):
            nested = _storage_options(item, where)
            flat.update({f"{key}.{child}": text for child, text in nested.items()})
        elif isinstance(item, bool):
            flat[str(key)] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            flat[str(key)] = str(item)
        else:
            # The value is not echoed: it may be a credential.
            raise SettingsError(f"{where}: storage option {key} must be a single value")
    return flat


def _parent_location(location: str) -> str:
    if is_remote(location):
        return location.rsplit("/", 1)[0]
    return str(Path(location).parent)


def job_options_for_spec(
    spec: BatchSpec,
    address: str | None,
    work_store: str | None,
    show_progress: bool,
    force: bool = False,
) -> JobOptions:
    """The actor pool of a spec's job: sized and placed by the spec's (shared) render options."""
    first = spec.renders[0].settings if spec.renders else None
    return JobOptions(
        workers=spec.workers or (first.workers if first else JobOptions().workers),
        threads_per_worker=first.threads_per_worker if first else 1,
        execution=first.execution if first else JobOptions().execution,
        address=address,
        work_store=work_store,
        storage_options=tuple(spec.storage_options.items()),
        show_progress=show_progress,
        force=force,
    )
