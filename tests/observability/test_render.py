"""``render_pod``: the daemon's compile of one pod as nft text, and the problems it ignored."""

from __future__ import annotations

import json

import msgspec
import pytest

from tests.unit.policy.builders import nad, namespace, pod, policy
from trinet.observability.render import RenderError, render_pod
from trinet.policy import CompileOptions, Snapshot, compile, render
from trinet.policy.to_netlink import versioned

POD = pod("ns/s", {"app": "s"}, [("ns/net1", "net1", ["10.1.0.1"])])
PEER = pod("ns/a", {"app": "a"}, [("ns/net1", "net1", ["10.1.0.2"])])
WEB = policy("ns/web", {"ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}]})


def snapshot(*pods: object, policies: tuple[object, ...] = (WEB,)) -> Snapshot:
    return Snapshot(pods or (POD, PEER), [namespace("ns")], policies, [nad("ns/net1")])  # type: ignore[arg-type]


def test_render_is_the_compiled_ruleset_with_the_given_options() -> None:
    options = CompileOptions(accept_icmp=True)
    snap = snapshot()
    text, problems = render_pod(snap, "ns/s", options)
    assert text == render(versioned(compile(snap, POD, options), 1))
    assert "set ingress-net1-0.g1 {" in text
    assert render_pod(snap, "ns/s", options, generation=2)[0] == render(versioned(compile(snap, POD, options), 2))
    assert "meta l4proto icmp accept" in text and "10.1.0.2" in text
    assert problems == []


def test_a_pod_with_nothing_to_enforce_renders_as_one_comment() -> None:
    text, _ = render_pod(snapshot(policies=()), "ns/s", CompileOptions())
    assert text == "# ns/s: nothing to enforce; the daemon installs no table in this pod's network namespace\n"


def test_problems_name_what_was_ignored() -> None:
    broken = msgspec.structs.replace(
        POD,
        metadata=msgspec.structs.replace(
            POD.metadata,
            annotations={
                **POD.metadata.annotations,
                "k8s.v1.cni.cncf.io/network-status": json.dumps(
                    [{"name": "ns/net1", "interface": "net1", "ips": ["x"]}]
                ),
            },
        ),
    )
    bad_policy = policy("ns/bad", {"ingress": [{"ports": [{"protocol": "GRE"}]}]})
    _, problems = render_pod(snapshot(broken, PEER, policies=(bad_policy,)), "ns/s", CompileOptions())
    assert problems == [
        "pod ns/s: network-status[0].ips[0]: 'x' is not an IP address",
        "policy ns/bad: spec.ingress[0].ports[0].protocol: 'GRE' is not one of TCP, UDP, SCTP",
    ]


@pytest.mark.parametrize(("ref", "message"), [("ns/nope", "pod ns/nope not found"), ("s", "NAMESPACE/NAME")])
def test_unknown_or_malformed_pod(ref: str, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        render_pod(snapshot(), ref, CompileOptions())
