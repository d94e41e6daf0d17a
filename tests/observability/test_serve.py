"""``serve_metrics``: /metrics over real HTTP from a trio listener; other paths and methods refused."""

from __future__ import annotations

import httpx
import trio
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from trinet.observability.metrics import Metrics
from trinet.observability.serve import serve_metrics


async def test_metrics_answered_and_nothing_else() -> None:
    metrics = Metrics()
    metrics.transaction("ns/p", "create", "ok")
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_metrics, ("127.0.0.1", 0), metrics)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            got = await client.get("/metrics")
            assert got.status_code == 200 and got.headers["content-type"] == CONTENT_TYPE_LATEST
            names = {f.name for f in text_string_to_metric_families(got.text)}
            assert {"trinet_transactions", "trinet_policed_pods"} <= names
            head = await client.head("/metrics")
            assert head.status_code == 200 and head.content == b""
            assert (await client.get("/")).status_code == 404
            assert (await client.post("/metrics", content=b"x")).status_code == 405
        nursery.cancel_scope.cancel()
