"""Names from untrusted places (a target's file name, a bucket listing) made safe to use as one
component of a path or object key."""

import re

_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")
REPLACEMENT = "_"


def safe_file_name(text: str) -> str:
    """`text` as one file name: no separators or control characters, never empty, `.`, `..`
    or any other name of dots only, never starting with `~` (a home folder to expanduser)."""
    name = _UNSAFE.sub(REPLACEMENT, text)
    if not name.strip("."):
        name = REPLACEMENT * max(1, len(name))
    if name.startswith("~"):
        name = REPLACEMENT + name[1:]
    return name


def stays_in_pattern_folder(pattern: str, output: str) -> bool:
    """False when filling `pattern`'s fields (format specs included) added a path component,
    a `.` or `..` component or a leading `~` that the pattern does not have itself."""
    literal, formatted = pattern.split("/"), output.split("/")
    if len(literal) != len(formatted) or (output[:1] == "~" != pattern[:1]):
        return False
    pairs = zip(literal, formatted, strict=True)
    return not any(part in (".", "..") and part != fixed for fixed, part in pairs)
