"""Structured JSON logs; the complaint id travels as correlation id in a contextvar."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pythonjsonlogger.json import JsonFormatter

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)

# Defence in depth: contact details must never reach a log line, even through an exception text.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# 8-15 digits with the usual separators, not glued to other word characters and not an ISO
# date, so UUIDs and timestamps stay readable.
_PHONE = re.compile(r"(?<![\w.:-])(?!\d{4}-\d\d-\d\d)\+?\(?\d(?:[ ()./-]{0,2}\d){7,14}(?![\w:-])")


def redact(text: str) -> str:
    """Mask e-mail addresses and phone numbers."""
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "service",
    "correlation_id",
}


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        cid = correlation_id.get()
        if cid is not None and not hasattr(record, "correlation_id"):
            record.correlation_id = cid
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                record.__dict__[key] = redact(value)  # values passed with `extra=`
        return True


class _RedactingJsonFormatter(JsonFormatter):
    """Scrubs the free text of a record (message, exception); structured fields stay intact."""

    def formatException(self, ei: Any) -> str:
        return redact(str(super().formatException(ei)))


def configure_logging(service: str, level: str = "INFO", stream: object = None) -> None:
    """Send every log record to stdout as one JSON object per line."""
    handler = logging.StreamHandler(stream or sys.stdout)  # type: ignore[arg-type]
    handler.setFormatter(
        _RedactingJsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    )
    handler.addFilter(_ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("kafka", "uvicorn.access", "httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def correlated(cid: str | None) -> Iterator[None]:
    """Log everything inside with this correlation id."""
    token = correlation_id.set(cid)
    try:
        yield
    finally:
        correlation_id.reset(token)
