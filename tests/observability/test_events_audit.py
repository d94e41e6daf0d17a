"""``audit``: which problems this node reports, on which object, and that each note says what was ignored."""

from __future__ import annotations

import json
from typing import Literal

import msgspec
import trio

from tests.unit.policy.builders import nad, namespace, pod, policy
from trinet.objects import MultiNetworkPolicy, Pod
from trinet.observability.events import NOTE_LIMIT, Finding, Reporter, audit
from trinet.observability.metrics import Metrics
from trinet.policy import Snapshot

NET1 = [("ns/net1", "net1", ["10.1.0.1"])]


def on_node(p: Pod, node: str) -> Pod:
    return msgspec.structs.replace(p, spec=msgspec.structs.replace(p.spec, node_name=node))


def malformed(p: Pod) -> Pod:
    status = json.dumps([{"name": "ns/net1", "interface": "net1", "ips": ["not-an-ip"]}])
    annotations = {**p.metadata.annotations, "k8s.v1.cni.cncf.io/network-status": status}
    return msgspec.structs.replace(p, metadata=msgspec.structs.replace(p.metadata, annotations=annotations))


def snapshot(pods: list[Pod], policies: list[MultiNetworkPolicy]) -> Snapshot:
    nads = [nad("ns/net1"), nad("ns/vlan", "ipvlan")]
    return Snapshot(pods, [namespace("ns"), namespace("far")], policies, nads)


def test_each_kind_of_problem_on_its_object() -> None:
    policies = [
        policy("ns/bad", {"ingress": [{"ports": [{"protocol": "GRE"}]}]}),
        policy("ns/missing", {}, policy_for="net1,nowhere"),
        policy("ns/vlan", {}, policy_for="vlan"),
        policy("ns/fine", {}),
    ]
    pods = [pod("ns/s", {}, NET1), malformed(pod("ns/m", {}, NET1))]
    findings = audit(snapshot(pods, policies), "node1", ["macvlan"])
    assert [(f.resource, f.key, f.reason) for f in findings] == [
        ("policies", "ns/bad", "InvalidPolicy"),
        ("policies", "ns/missing", "PolicyNetworkMissing"),
        ("policies", "ns/vlan", "PolicyNetworkUnsupported"),
        ("pods", "ns/m", "MalformedAnnotation"),
    ]
    notes = {f.reason: f.note for f in findings}
    assert notes["InvalidPolicy"].startswith("spec.ingress[0].ports[0].protocol: 'GRE' is not one of TCP, UDP, SCTP.")
    assert "policy-for names ns/nowhere, which does not exist" in notes["PolicyNetworkMissing"]
    assert (
        "of CNI type 'ipvlan', which trinet does not police (network plugins: macvlan)"
        in notes["PolicyNetworkUnsupported"]
    )
    assert notes["MalformedAnnotation"].startswith("network-status[0].ips[0]: 'not-an-ip' is not an IP address.")
    for note in notes.values():
        assert "Ignored: " in note and "isolation kept" in note


def test_only_this_nodes_pods_and_their_namespaces_policies_are_reported() -> None:
    policies = [
        policy("ns/bad", {"ingress": [{"ports": [{"protocol": "GRE"}]}]}),
        policy("far/bad", {"ingress": [{"ports": [{"protocol": "GRE"}]}]}),
    ]
    pods = [on_node(malformed(pod("ns/m", {}, NET1)), "node2"), pod("ns/s", {}, NET1)]
    findings = audit(snapshot(pods, policies), "node1", ["macvlan"])
    assert [(f.key, f.reason) for f in findings] == [("ns/bad", "InvalidPolicy")]
    assert audit(snapshot(pods, policies), "node3", ["macvlan"]) == []


def test_notes_fit_the_events_api_limit() -> None:
    long = policy("ns/long", {"ingress": [{"ports": [{"protocol": f"P{i}"} for i in range(200)]}]})
    [finding] = audit(snapshot([pod("ns/s", {}, NET1)], [long]), "node1", ["macvlan"])
    assert len(finding.note) == NOTE_LIMIT and finding.note.endswith("…")


class Recorder:
    """Records what it is asked to emit (the real EventWriter is exercised against the API server)."""

    def __init__(self) -> None:
        self.emitted: list[tuple[object, str, str]] = []

    async def emit(
        self, obj: object, *, type: Literal["Normal", "Warning"], reason: str, note: str, action: str
    ) -> None:
        self.emitted.append((obj, reason, note))


async def test_reporter_emits_new_findings_once_and_again_after_a_fix() -> None:
    sink = Recorder()
    target = object()
    reporter = Reporter(sink, Metrics(), lambda resource, key: target)  # type: ignore[arg-type,return-value]
    one = Finding("policies", "ns/bad", "InvalidPolicy", "x", "Validate")
    assert await reporter.report([one]) == 1
    assert await reporter.report([one]) == 0
    changed = Finding("policies", "ns/bad", "InvalidPolicy", "y", "Validate")
    assert await reporter.report([changed]) == 1
    assert await reporter.report([]) == 0
    assert await reporter.report([changed]) == 1
    assert [(o is target, r, n) for o, r, n in sink.emitted] == [(True, "InvalidPolicy", n) for n in "xyy"]
    await trio.lowlevel.checkpoint()


async def test_standing_findings_are_handed_over_again_every_refresh(autojump_clock: trio.abc.Clock) -> None:
    sink = Recorder()
    bad = policy("ns/bad", {"ingress": [{"ports": [{"protocol": "GRE"}]}]})
    snap = snapshot([pod("ns/s", {}, NET1)], [bad])
    reporter = Reporter(sink, Metrics(), lambda resource, key: bad)
    with trio.move_on_after(1250):
        await reporter.run(lambda: snap, "node1", ["macvlan"], interval=1.0, refresh=600.0)
    assert [reason for _, reason, _ in sink.emitted] == ["InvalidPolicy"] * 3  # at 0 s, 600 s and 1200 s
