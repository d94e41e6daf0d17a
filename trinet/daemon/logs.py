"""The daemon's structured logs: ``trinet.logs`` (shared with ``trinet.kube``), re-exported where it was."""

from __future__ import annotations

from trinet.logs import JsonFormatter, TextFormatter, configure, event, event_fields

__all__ = ["JsonFormatter", "TextFormatter", "configure", "event", "event_fields"]
