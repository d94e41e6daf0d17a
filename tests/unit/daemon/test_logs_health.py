"""Log lines (one event per line, text or JSON) and the probe endpoints (a real socket on 127.0.0.1)."""

from __future__ import annotations

import io
import json
import logging

import httpx
import trio

from trinet.daemon.health import Health, serve_health
from trinet.daemon.logs import configure, event


def _capture(fmt: str) -> str:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        configure("info", fmt, stream)
        log = logging.getLogger("trinet.test")
        event(log, logging.INFO, "transaction", pod="ns/p", kind="delta", detail="two words", skipped=None)
        event(log, logging.DEBUG, "hidden", pod="ns/p")
    finally:
        root.handlers[:] = saved[0]  # configure() replaced pytest's handlers
        root.setLevel(saved[1])
    return stream.getvalue()


def test_text_lines_are_key_value() -> None:
    (line,) = _capture("text").splitlines()
    assert "event=transaction" in line and "pod=ns/p" in line and "kind=delta" in line
    assert 'detail="two words"' in line and "skipped" not in line


def test_json_lines_are_objects() -> None:
    (line,) = _capture("json").splitlines()
    record = json.loads(line)
    assert record["event"] == "transaction" and record["pod"] == "ns/p" and record["level"] == "info"


async def test_probes_answer_by_state() -> None:
    alive = [True]
    health = Health(lambda: alive[0])
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_health, ("127.0.0.1", 0), health)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 503
            health.synced = True
            assert (await client.get("/readyz")).status_code == 200
            alive[0] = False  # a worker stuck on one pod
            assert (await client.get("/healthz")).status_code == 503
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/metrics-not-here")).status_code == 404
        nursery.cancel_scope.cancel()
