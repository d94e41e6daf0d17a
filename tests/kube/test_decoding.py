"""Pure parts: decoding list/watch bytes (malformed objects skipped, not fatal), errors, backoff, store identity."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from trinet.kube import PODS, ApiError
from trinet.kube.backoff import Backoff
from trinet.kube.store import ClusterStore
from trinet.logs import event_fields
from trinet.objects import ObjectMeta, Pod

GOOD = b'{"metadata":{"name":"a","namespace":"n","resourceVersion":"5"},"spec":{"nodeName":"x"}}'
BAD = b'{"metadata":{"name":"b","namespace":"n"},"spec":{"nodeName":7}}'


def test_list_with_a_malformed_item_keeps_the_others(caplog: pytest.LogCaptureFixture) -> None:
    body = b'{"metadata":{"resourceVersion":"9","continue":"tok"},"items":[' + GOOD + b"," + BAD + b"]}"
    meta, items = PODS.decode_list(body)
    assert (meta.resource_version, meta.continue_) == ("9", "tok")
    assert [p.metadata.name for p in items] == ["a"]
    (record,) = [r for r in caplog.records if r.getMessage() == "object-malformed"]
    assert (event_fields(record)["kind"], event_fields(record)["object"]) == ("Pod", "n/b")


def test_watch_events() -> None:
    kind, obj, _ = PODS.decode_event(b'{"type":"MODIFIED","object":' + GOOD + b"}")
    assert kind == "MODIFIED" and obj is not None and obj.spec.node_name == "x"
    kind, obj, _ = PODS.decode_event(b'{"type":"ADDED","object":' + BAD + b"}")
    assert (kind, obj) == ("ADDED", None)
    bookmark = b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"},"spec":{"containers":null}}}'
    kind, obj, _ = PODS.decode_event(bookmark)
    assert kind == "BOOKMARK" and obj is not None and obj.metadata.resource_version == "12"
    error = b'{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}}'
    kind, obj, raw = PODS.decode_event(error)
    assert kind == "ERROR" and obj is None and raw is not None and b"410" in raw
    with pytest.raises(msgspec.DecodeError):
        PODS.decode_event(b'{"type":"ADDED","obj')


def test_api_error_from_response_honours_retry_after() -> None:
    response = httpx.Response(429, headers={"Retry-After": "7"})
    body = b'{"kind":"Status","code":429,"reason":"TooManyRequests","message":"slow","details":{"retryAfterSeconds":3}}'
    error = ApiError.from_response(response, body)
    assert (error.code, error.reason, error.retry_after) == (429, "TooManyRequests", 7.0)
    plain = ApiError.from_response(httpx.Response(503), b"upstream down")
    assert (plain.code, plain.message, plain.expired) == (503, "upstream down", False)
    assert ApiError(410, "Expired", "x").expired and ApiError(500, "Gone", "x").expired


def test_backoff_is_exponential_capped_and_jittered() -> None:
    backoff = Backoff(initial=1, factor=2, cap=10, jitter=1.0, rng=lambda: 0.5)
    assert [backoff.next_delay() for _ in range(6)] == [1.5, 3.0, 6.0, 10.0, 10.0, 10.0]
    quiet = Backoff(initial=1, reset_after=-1, rng=lambda: 0.0)  # every failure comes after a "quiet period"
    assert [quiet.next_delay() for _ in range(3)] == [1.0, 1.0, 1.0]


def test_replace_reports_true_deltas_and_keeps_identity() -> None:
    store = ClusterStore().pods

    def pod(name: str, rv: str) -> Pod:
        return Pod(metadata=ObjectMeta(name=name, namespace="n", resource_version=rv))

    a, b, c = pod("a", "1"), pod("b", "1"), pod("c", "1")
    store.replace([a, b, c])
    changes = store.replace([pod("a", "1"), pod("b", "2"), pod("d", "1")])
    assert sorted((ch.key, ch.old is None, ch.new is None) for ch in changes) == [
        ("n/b", False, False),
        ("n/c", False, True),
        ("n/d", True, False),
    ]
    assert store.get("n/a") is a  # unchanged: the same object
    assert store.upsert(pod("a", "1")) is None
