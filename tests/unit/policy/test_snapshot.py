"""Snapshot reuse across instants (§2.7.41: every change is reflected; unchanged objects are not re-parsed)."""

from __future__ import annotations

from tests.unit.policy.builders import nad, pod, policy
from trinet.policy import CompileOptions, Snapshot, compile

S = pod("ns/s", {"app": "s"}, [("ns/net1", "net1", ["10.1.0.1"])])
A = pod("ns/a", {"app": "a"}, [("ns/net1", "net1", ["10.1.0.2"])])
P = policy("ns/p", {"podSelector": {"matchLabels": {"app": "s"}}})


def test_unchanged_objects_are_reused() -> None:
    first = Snapshot([S, A], [], [P], [nad("ns/net1")])
    info = first.info(S)
    second = Snapshot([S, A], [], [P], [nad("ns/net1")], previous=first)
    assert second.info(S) is info
    assert second.policies["ns/p"] is first.policies["ns/p"]


def test_changed_objects_are_parsed_again() -> None:
    first = Snapshot([S, A], [], [P], [nad("ns/net1")])
    first.info(S)
    moved = pod("ns/s", {"app": "s"}, [("ns/net1", "net1", ["10.1.0.7"])])
    edited = policy("ns/p", {"podSelector": {}})
    second = Snapshot([moved, A], [], [edited], [nad("ns/net1")], previous=first)
    assert second.info(moved).attachments[0].v4 == (0x0A010007,)
    assert second.policies["ns/p"].subjects is not None and second.policies["ns/p"].subjects.labels == ()


def test_2_7_41_a_nad_type_change_refreshes_existing_pods() -> None:
    """D11: the Go peer kept a stale plugin type for existing pods."""
    first = Snapshot([S, A], [], [P], [nad("ns/net1", "ipvlan")])
    assert not compile(first, S, CompileOptions()).enforces
    second = Snapshot([S, A], [], [P], [nad("ns/net1", "macvlan")], previous=first)
    assert compile(second, S, CompileOptions()).enforces


def test_a_pod_object_newer_than_the_snapshot_is_parsed_not_served_stale() -> None:
    snapshot = Snapshot([S, A], [], [P], [nad("ns/net1")])
    snapshot.info(S)
    newer = pod("ns/s", {"app": "s"}, [("ns/net1", "net1", ["10.1.0.9"])])
    assert snapshot.info(newer).attachments[0].v4 == (0x0A010009,)
    assert snapshot.info(S).attachments[0].v4 == (0x0A010001,)
