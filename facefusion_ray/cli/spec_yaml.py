"""Reading a spec's YAML: safe types only, a key written twice is an error, errors by line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from facefusion_ray.errors import SettingsError


class UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, but a key written twice in one mapping is an error, not last-one-wins: a
    second `output:` or `options:` would otherwise silently replace the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_document(path: Path) -> dict[str, Any]:
    where = f"batch spec {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise SettingsError(f"{where}: cannot read: {reason}") from None
    try:
        document = yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader: no Python objects
    except yaml.MarkedYAMLError as error:
        raise SettingsError(f"{where}: YAML syntax error{_yaml_error_position(error)}") from None
    except yaml.YAMLError as error:
        raise SettingsError(f"{where}: YAML syntax error: {error}") from None
    if not isinstance(document, dict):
        raise SettingsError(f"{where}: expected a mapping of keys such as targets, sources, output")
    return document


def _yaml_error_position(error: yaml.MarkedYAMLError) -> str:
    """` at line 5, column 1: found unexpected end of stream (while scanning a quoted scalar
    from line 3, column 9)`: where the problem showed and where what it broke began."""
    text = ""
    if error.problem_mark is not None:
        mark = error.problem_mark
        text += f" at line {mark.line + 1}, column {mark.column + 1}"
    text += f": {error.problem}"
    if error.context and error.context_mark is not None:
        mark = error.context_mark
        text += f" ({error.context} from line {mark.line + 1}, column {mark.column + 1})"
    return text
