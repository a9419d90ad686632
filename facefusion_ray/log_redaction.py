"""One logging filter that takes credentials out of every record before any handler writes it:
ours and third-party ones alike (botocore's debug lines carry endpoint URLs with passwords,
access key ids, signed headers and query strings), at every level, `-v` included."""

from __future__ import annotations

import logging

from facefusion_ray.storage.filesystem import redact


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, exception text and stack with `redact` (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a third party's bad format string: keep it readable
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Adds the filter to every handler of `logger` (default: the root logger), once. Handler
    filters see the records of every logger that propagates there, which logger filters do not."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(item, RedactingFilter) for item in handler.filters):
            handler.addFilter(RedactingFilter())
