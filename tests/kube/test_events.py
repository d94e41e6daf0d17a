"""EventWriter against the real API server (as the daemon's ServiceAccount): series de-dup, rate limit, errors."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from tests.kube.helpers import check, create_namespace, create_pod, pod_body
from trinet.kube import ApiClient, EventWriter
from trinet.logs import event_fields
from trinet.objects import Namespace, ObjectMeta, Pod


async def events_in(admin: httpx.AsyncClient, namespace: str) -> list[dict[str, Any]]:
    body = await check(await admin.get(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events"))
    items: list[dict[str, Any]] = body["items"]
    return items


async def test_repeated_event_becomes_a_series_and_distinct_ones_are_separate(
    admin: httpx.AsyncClient, api: ApiClient
) -> None:
    ns = await create_namespace(admin)
    pod = msgspec.convert(await create_pod(admin, ns, pod_body("p")), Pod)
    writer = EventWriter(api, component="trinet", host="node-a", series_update_interval=0)
    for _ in range(3):
        await writer.emit(pod, type="Warning", reason="InvalidPolicy", note="port 70000 out of range", action="Compile")
    await writer.emit(pod, type="Normal", reason="RulesApplied", note="3 rules", action="Apply")
    events = sorted(await events_in(admin, ns), key=lambda e: e["reason"])
    assert [e["reason"] for e in events] == ["InvalidPolicy", "RulesApplied"]
    warning, normal = events
    assert warning["series"]["count"] == 3
    assert warning["type"] == "Warning" and warning["note"] == "port 70000 out of range"
    assert warning["regarding"] == {
        "kind": "Pod",
        "namespace": ns,
        "name": "p",
        "uid": pod.metadata.uid,
        "apiVersion": "v1",
        "resourceVersion": pod.metadata.resource_version,
    }
    assert warning["reportingController"] == "trinet" and warning["reportingInstance"] == "trinet-node-a"
    assert "series" not in normal


async def test_rate_limit_bounds_the_events_written(admin: httpx.AsyncClient, api: ApiClient) -> None:
    ns = await create_namespace(admin)
    pod = msgspec.convert(await create_pod(admin, ns, pod_body("p")), Pod)
    writer = EventWriter(api, burst=100, per_object_burst=4, per_object_rate=0.0)
    for i in range(50):
        await writer.emit(pod, type="Warning", reason="InvalidPolicy", note=f"problem {i}", action="Compile")
    assert len(await events_in(admin, ns)) == 4
    assert writer.dropped == 46


async def test_api_errors_are_logged_not_raised(api: ApiClient, caplog: Any) -> None:
    writer = EventWriter(api)
    pod = Pod(metadata=ObjectMeta(name="x", namespace="no-such-namespace-anywhere"))
    await writer.emit(pod, type="Warning", reason="R", note="n", action="A")
    (record,) = [r for r in caplog.records if r.getMessage() == "event-write-failed"]
    fields = event_fields(record)
    assert (fields["reason"], fields["action"], fields["regarding"]) == ("R", "A", "Pod no-such-namespace-anywhere/x")
    await writer.emit(object(), type="Warning", reason="R", note="n", action="A")
    assert "no API resource is known for object" in event_fields(caplog.records[-1])["error"]


async def test_cluster_scoped_objects_get_events_in_default(admin: httpx.AsyncClient, api: ApiClient) -> None:
    name = await create_namespace(admin)
    namespace = Namespace(metadata=ObjectMeta(name=name, uid="u-1"))
    await EventWriter(api).emit(namespace, type="Normal", reason="Seen", note=name, action="Watch")
    [event] = [e for e in await events_in(admin, "default") if e["note"] == name]
    assert event["regarding"]["kind"] == "Namespace" and "namespace" not in event["regarding"]
