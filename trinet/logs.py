"""Structured logs: one event per line, as ``key=value`` text or JSON objects, each naming what it is about.

Call ``event(logger, level, "name", pod="ns/name", ...)``; the fields travel in the record's ``fields`` extra.
Shared by every part of trinet (the daemon, ``trinet.kube``), so it depends on nothing of them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

__all__ = ["JsonFormatter", "TextFormatter", "configure", "event", "event_fields"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def event(logger: logging.Logger, level: int, name: str, **fields: object) -> None:
    """Log event ``name`` with ``fields`` (values None are left out)."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"fields": {k: v for k, v in fields.items() if v is not None}})


def event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields of an ``event`` record (with ``error`` from its exception, if any); empty for other records."""
    fields = getattr(record, "fields", None)
    out: dict[str, Any] = dict(fields) if isinstance(fields, dict) else {}
    if record.exc_info and record.exc_info[1] is not None:
        out.setdefault("error", f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}")
    return out


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        body.update(event_fields(record))
        return json.dumps(body, default=str, separators=(",", ":"))


def _text_value(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return json.dumps(text)
    return text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"ts={_timestamp(record)}",
            f"level={record.levelname.lower()}",
            f"event={_text_value(record.getMessage())}",
        ]
        parts += [f"{k}={_text_value(v)}" for k, v in event_fields(record).items()]
        parts.append(f"logger={record.name}")
        return " ".join(parts)


def configure(level: str, fmt: str, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stderr), one line each, in ``fmt`` ("text" or "json")."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS[level])
    logging.getLogger("httpx").setLevel(max(logging.WARNING, _LEVELS[level]))
    logging.getLogger("httpcore").setLevel(max(logging.WARNING, _LEVELS[level]))
