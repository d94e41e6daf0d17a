"""One test per row of semantics.md §2.9: the message names the object path and the reason, the invalid item drops
only itself, and the policy keeps isolating."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.policy.builders import World, nad, pod, policy
from trinet.policy import validate_policy
from trinet.policy.model import Direction, IPBlockPeer, PortItem, SelectorPeer


def errors_of(spec: dict[str, Any]) -> tuple[str, ...]:
    return validate_policy(policy("ns/p", spec)).errors


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (
            {"matchExpressions": [{"key": "app", "operator": "In", "values": []}]},
            "spec.ingress[0].from[0].podSelector.matchExpressions[0].values: must be non-empty when operator is In",
        ),
        (
            {"matchExpressions": [{"key": "app", "operator": "NotIn"}]},
            "spec.ingress[0].from[0].podSelector.matchExpressions[0].values: must be non-empty when operator is NotIn",
        ),
        (
            {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]},
            "spec.ingress[0].from[0].podSelector.matchExpressions[0].values: must be empty when operator is Exists",
        ),
        (
            {"matchExpressions": [{"key": "app", "operator": "DoesNotExist", "values": ["x"]}]},
            "spec.ingress[0].from[0].podSelector.matchExpressions[0].values: must be empty when operator is "
            "DoesNotExist",
        ),
        (
            {"matchExpressions": [{"key": "app", "operator": "Like"}]},
            "spec.ingress[0].from[0].podSelector.matchExpressions[0].operator: 'Like' is not one of In, NotIn, "
            "Exists, DoesNotExist",
        ),
        ({"matchLabels": {"bad key": "v"}}, "spec.ingress[0].from[0].podSelector.matchLabels: label key 'bad key'"),
        ({"matchLabels": {"k": "-v"}}, "spec.ingress[0].from[0].podSelector.matchLabels: label value '-v'"),
        ({"matchLabels": {"UPPER.example/k": "v"}}, "label key 'UPPER.example/k': prefix must be a DNS subdomain"),
    ],
)
def test_2_9_selectors_must_be_valid_label_selectors(selector: dict[str, Any], message: str) -> None:
    spec = {"ingress": [{"from": [{"podSelector": selector}, {"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}
    effective = validate_policy(policy("ns/p", spec))
    assert any(message in e for e in effective.errors), effective.errors
    (rule,) = effective.ingress
    assert rule.peers is not None
    assert [type(p) for p in rule.peers] == [IPBlockPeer]  # only the invalid peer is dropped


def test_2_9_invalid_pod_selector_isolates_the_namespace_and_allows_nothing() -> None:
    effective = validate_policy(
        policy("ns/p", {"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}, "ingress": [{}]})
    )
    assert effective.subjects is None
    assert effective.isolates == {Direction.INGRESS}
    assert effective.ingress == ()
    assert "spec.podSelector.matchExpressions[0].values: must be non-empty when operator is In" in effective.errors


@pytest.mark.parametrize(
    ("types", "message"),
    [
        (["Ingress", "Egress", "Ingress"], "spec.policyTypes: must have at most 2 items, has 3"),
        (["Ingress", "Sideways"], "spec.policyTypes[1]: 'Sideways' is not one of Ingress, Egress"),
    ],
)
def test_2_9_policy_types_at_most_two_ingress_or_egress(types: list[str], message: str) -> None:
    effective = validate_policy(policy("ns/p", {"policyTypes": types}))
    assert message in effective.errors
    assert effective.isolates == set(Direction)  # fail closed


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"protocol": "ICMP", "port": 1}, "spec.ingress[0].ports[0].protocol: 'ICMP' is not one of TCP, UDP, SCTP"),
        ({"port": 0}, "spec.ingress[0].ports[0].port: 0 is not in 1-65535"),
        ({"port": 65536}, "spec.ingress[0].ports[0].port: 65536 is not in 1-65535"),
        ({"port": "Http"}, "spec.ingress[0].ports[0].port: 'Http' is neither a number nor a valid IANA_SVC_NAME"),
        ({"port": "a--b"}, "spec.ingress[0].ports[0].port: 'a--b' is neither a number nor a valid IANA_SVC_NAME"),
        ({"port": "1234"}, "spec.ingress[0].ports[0].port: '1234' is neither a number nor a valid IANA_SVC_NAME"),
        ({"port": "abcdefghijklmnop"}, "is neither a number nor a valid IANA_SVC_NAME"),
        ({"endPort": 90}, "spec.ingress[0].ports[0].endPort: may not be specified when port is not specified"),
        (
            {"port": "http", "endPort": 90},
            "spec.ingress[0].ports[0].endPort: may not be specified when port is non-numeric",
        ),
        ({"port": 90, "endPort": 80}, "spec.ingress[0].ports[0].endPort: 80 must be greater than or equal to port 90"),
        ({"port": 90, "endPort": 65536}, "spec.ingress[0].ports[0].endPort: 65536 is not in 1-65535"),
    ],
)
def test_2_9_port_items(item: dict[str, Any], message: str) -> None:
    effective = validate_policy(policy("ns/p", {"ingress": [{"ports": [item, {"port": 443}]}]}))
    assert any(message in e for e in effective.errors), effective.errors
    assert effective.ingress[0].ports == (PortItem("TCP", 443, 443),)


def test_2_9_lower_case_protocol_is_accepted_with_a_warning() -> None:
    effective = validate_policy(policy("ns/p", {"ingress": [{"ports": [{"protocol": "udp", "port": 53}]}]}))
    assert effective.ingress[0].ports == (PortItem("UDP", 53, 53),)
    assert "spec.ingress[0].ports[0].protocol: 'udp' accepted as 'UDP'" in effective.warnings


@pytest.mark.parametrize(
    ("peer", "message"),
    [
        ({}, "spec.egress[0].to[0]: must specify a peer"),
        (
            {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}},
            "spec.egress[0].to[0]: may not specify both ipBlock and another peer",
        ),
        (
            {"ipBlock": {"cidr": "10.0.0.0/33"}},
            "spec.egress[0].to[0].ipBlock.cidr: '10.0.0.0/33' is not a valid CIDR (address/prefix-length)",
        ),
        (
            {"ipBlock": {"cidr": "10.1.0.0/16", "except": ["10.0.0.0/8"]}},
            "spec.egress[0].to[0].ipBlock.except[0]: 10.0.0.0/8 is not inside cidr 10.1.0.0/16",
        ),
        (
            {"ipBlock": {"cidr": "10.1.0.0/16", "except": ["10.1.0.0/16"]}},
            "spec.egress[0].to[0].ipBlock.except[0]: 10.1.0.0/16 must be a strict subset of cidr 10.1.0.0/16",
        ),
        (
            {"ipBlock": {"cidr": "10.1.0.0/16", "except": ["fd00::/64"]}},
            "spec.egress[0].to[0].ipBlock.except[0]: fd00::/64 is not inside cidr 10.1.0.0/16",
        ),
        (
            {"ipBlock": {"cidr": "10.1.0.0/16", "except": ["nope"]}},
            "spec.egress[0].to[0].ipBlock.except[0]: 'nope' is not a valid CIDR (address/prefix-length)",
        ),
    ],
)
def test_2_9_peers_and_ip_blocks(peer: dict[str, Any], message: str) -> None:
    effective = validate_policy(policy("ns/p", {"egress": [{"to": [peer, {"podSelector": {}}]}]}))
    assert message in effective.errors, effective.errors
    assert effective.egress[0].peers is not None
    assert [type(p) for p in effective.egress[0].peers] == [SelectorPeer]
    assert effective.isolates == set(Direction)


@pytest.mark.parametrize(
    "cidr", ["10.0.0.0/0.0.0.0", "10.0.0.0/255.0.0.0", "10.0.0.2", " 10.0.0.0/8", "10.0.0.0/8\t", "fe80::%eth0/64"]
)
def test_2_9_ip_block_cidr_is_parsed_as_upstream_does(cidr: str) -> None:
    """Forms Python's ipaddress accepts but Go's net.ParseCIDR rejects: the peer is dropped, nothing opens."""
    p = policy("ns/p", {"ingress": [{"from": [{"ipBlock": {"cidr": cidr}}]}]})
    assert validate_policy(p).errors == (f"spec.ingress[0].from[0].ipBlock.cidr: {cidr!r} is not a valid CIDR "
                                         "(address/prefix-length)",)  # fmt: skip
    world = World([pod("ns/s", {}, [("ns/net1", "net1", ["10.1.0.1"])])], [p], nads=[nad("ns/net1")])
    assert not world.allowed("10.0.0.2", "ns/s")
    assert not world.allowed("192.168.7.7", "ns/s")


def test_2_9_a_rule_whose_items_are_all_invalid_matches_nothing() -> None:
    effective = validate_policy(policy("ns/p", {"ingress": [{"ports": [{"port": 0}], "from": [{}]}]}))
    assert effective.ingress[0].ports == ()
    assert effective.ingress[0].peers == ()


def test_2_9_valid_policy_has_no_findings() -> None:
    effective = validate_policy(
        policy(
            "ns/p",
            {
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "x"}}}],
                        "ports": [{"port": "http"}, {"protocol": "SCTP", "port": 1, "endPort": 65535}],
                    }
                ],
                "egress": [{"to": [{"ipBlock": {"cidr": "fd00::/48", "except": ["fd00::/64"]}}]}],
            },
        )
    )
    assert effective.errors == () and effective.warnings == ()
