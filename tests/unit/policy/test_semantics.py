"""One test (at least) per numbered point of semantics.md §2; every check also asserts the oracle agrees.

Points 13 (self and node traffic) and 44 (daemon shutdown) are implementation-defined or belong to the daemon, so
the pure core has nothing to prove for them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.policy.builders import World, nad, namespace, pod, policy
from trinet.policy import CompileOptions, Packet, evaluate
from trinet.policy.ruleset import CtState, Drop

NADS = [nad("ns/net1"), nad("ns/net2"), nad("x/net1"), nad("ns/vlan", "ipvlan")]


def net1(i: int, *extra: tuple[str, str, list[str]]) -> list[tuple[str, str, list[str]]]:
    return [("ns/net1", "net1", [f"10.1.0.{i}", f"fd00:1::{i}"]), *extra]


def cluster(*policies: Any, pods: list[Any] | None = None, **kw: Any) -> World:
    """Server s and clients a, b in ns; c in x (labels team=blue). All on ns/net1."""
    default_pods = [
        pod("ns/s", {"app": "s"}, net1(1), ports=[("http", "TCP", 8080), ("dns", "UDP", 53)]),
        pod("ns/a", {"app": "a"}, net1(2), ports=[("http", "TCP", 9090)]),
        pod("ns/b", {"app": "b"}, net1(3)),
        pod("x/c", {"app": "a"}, net1(4)),
    ]
    namespaces = [namespace("ns", team="red"), namespace("x", team="blue")]
    return World(pods if pods is not None else default_pods, policies, namespaces, NADS, **kw)


def server(spec: dict[str, Any], name: str = "p", policy_for: str | None = "net1") -> Any:
    return policy(f"ns/{name}", {"podSelector": {"matchLabels": {"app": "s"}}, **spec}, policy_for)


FROM_A = {"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}
TO_A = {"to": [{"podSelector": {"matchLabels": {"app": "a"}}}]}


# §2.1 Selection of subject pods ------------------------------------------------------------------------------


def test_2_1_1_policy_applies_only_to_pods_of_its_namespace() -> None:
    w = cluster(policy("x/deny", {"podSelector": {}}, "ns/net1"))
    assert w.allowed("ns/a", "ns/s")
    assert not w.allowed("ns/a", "x/c")


def test_2_1_2_empty_pod_selector_selects_every_pod_of_the_namespace() -> None:
    w = cluster(policy("ns/deny", {"podSelector": {}}))
    assert not w.allowed("ns/a", "ns/s")
    assert not w.allowed("ns/s", "ns/b")


@pytest.mark.parametrize(
    ("expression", "s_selected", "a_selected"),
    [
        ({"key": "app", "operator": "In", "values": ["s", "z"]}, True, False),
        ({"key": "app", "operator": "NotIn", "values": ["s"]}, False, True),
        ({"key": "app", "operator": "Exists"}, True, True),
        ({"key": "app", "operator": "DoesNotExist"}, False, False),
        ({"key": "missing", "operator": "NotIn", "values": ["v"]}, True, True),
    ],
)
def test_2_1_2_every_selector_operator(expression: dict[str, Any], s_selected: bool, a_selected: bool) -> None:
    w = cluster(policy("ns/deny", {"podSelector": {"matchExpressions": [expression]}}))
    assert w.allowed("ns/b", "ns/s") is not s_selected
    assert w.allowed("ns/b", "ns/a") is not a_selected


def test_2_1_2_match_labels_and_expressions_are_anded() -> None:
    sel = {"matchLabels": {"app": "s"}, "matchExpressions": [{"key": "app", "operator": "In", "values": ["a"]}]}
    w = cluster(policy("ns/deny", {"podSelector": sel}))
    assert w.allowed("ns/b", "ns/s")
    assert w.allowed("ns/b", "ns/a")


def test_2_1_3_only_interfaces_on_policy_for_networks_are_policed() -> None:
    """D6: a pod on net1 and net2 with a policy for net1 keeps net2 fully open."""
    pods = [
        pod("ns/s", {"app": "s"}, net1(1, ("ns/net2", "net2", ["10.2.0.1"]))),
        pod("ns/a", {"app": "a"}, net1(2, ("ns/net2", "net2", ["10.2.0.2"]))),
    ]
    w = cluster(server({"policyTypes": ["Ingress", "Egress"]}), pods=pods)
    assert not w.allowed("ns/a", "ns/s", network="ns/net1")
    assert w.allowed("ns/a", "ns/s", network="ns/net2")
    assert w.allowed("ns/s", "ns/a", network="ns/net2")
    chains = {c.name for c in w.ruleset("ns/s").table.chains}
    assert chains == {"input", "output", "ingress-net1", "egress-net1"}


def test_2_1_3_interface_names_nft_cannot_take_bare_get_collision_free_chain_names() -> None:
    pods = [pod("ns/s", {"app": "s"}, [("ns/net1", "nét1", ["10.1.0.1"])]), pod("ns/a", {"app": "a"}, net1(2))]
    w = cluster(server({"ingress": [FROM_A]}), pods=pods)
    assert [c.name for c in w.ruleset("ns/s").table.chains] == ["input", "output", "ingress/x6ec3a97431"]
    assert w.allowed("ns/a", "ns/s") and not w.allowed("10.1.0.9", "ns/s")


def test_2_1_4_host_network_pods_are_never_subjects() -> None:
    pods = [pod("ns/s", {"app": "s"}, net1(1), host_network=True), pod("ns/a", {"app": "a"}, net1(2))]
    w = cluster(server({}), pods=pods)
    assert not w.ruleset("ns/s").enforces
    assert w.allowed("ns/a", "ns/s")


def test_2_1_4_pending_pods_are_policed_before_running() -> None:
    """Upstream wants filtering from the first instant: a pod with interfaces is policed whatever its phase."""
    pods = [pod("ns/s", {"app": "s"}, net1(1), phase="Pending"), pod("ns/a", {"app": "a"}, net1(2))]
    w = cluster(server({}), pods=pods)
    assert w.ruleset("ns/s").enforces
    assert not w.allowed("ns/a", "ns/s")


@pytest.mark.parametrize(("plugins", "policed"), [(frozenset({"macvlan"}), False), (frozenset({"ipvlan"}), True)])
def test_2_1_5_nad_cni_type_filter(plugins: frozenset[str], policed: bool) -> None:
    pods = [
        pod("ns/s", {"app": "s"}, [("ns/vlan", "net9", ["10.9.0.1"])]),
        pod("ns/a", {"app": "a"}, [("ns/vlan", "net9", ["10.9.0.2"])]),
    ]
    w = cluster(server({}, policy_for="vlan"), pods=pods, options=CompileOptions(network_plugins=plugins))
    assert w.ruleset("ns/s").enforces is policed
    assert w.allowed("ns/a", "ns/s", network="ns/vlan") is not policed


def test_2_1_5_conflist_type_is_the_first_plugin() -> None:
    pods = [pod("ns/s", {"app": "s"}, [("ns/bond", "net1", ["10.3.0.1"])])]
    w = World(
        pods,
        [server({}, policy_for="bond")],
        [],
        [nad("ns/bond", "bond", conflist=True)],
        options=CompileOptions(network_plugins=frozenset({"bond"})),
    )
    assert w.ruleset("ns/s").enforces


# §2.2 Direction isolation and policyTypes --------------------------------------------------------------------


def test_2_2_6_no_policy_types_and_no_rules_isolates_ingress() -> None:
    """D1: ``spec: {podSelector: {}}`` is the canonical default-deny-ingress."""
    w = cluster(server({}))
    assert not w.allowed("ns/a", "ns/s")
    assert w.allowed("ns/s", "ns/a")


def test_2_2_6_egress_rules_without_policy_types_isolate_both_directions() -> None:
    w = cluster(server({"egress": [TO_A]}))
    assert not w.allowed("ns/a", "ns/s")
    assert w.allowed("ns/s", "ns/a")
    assert not w.allowed("ns/s", "ns/b")


def test_2_2_6_explicit_egress_only() -> None:
    w = cluster(server({"policyTypes": ["Egress"], "ingress": [{}]}))
    assert w.allowed("ns/a", "ns/s")
    assert not w.allowed("ns/s", "ns/a")


def test_2_2_7_policy_types_are_accepted_case_insensitively() -> None:
    w = cluster(server({"policyTypes": ["egress"]}))
    assert w.allowed("ns/a", "ns/s")
    assert not w.allowed("ns/s", "ns/a")
    assert any("accepted as 'Egress'" in m for m in w.snapshot.policies["ns/p"].warnings)


def test_2_2_7_unknown_policy_type_isolates_both_directions_and_counts_only_valid_ones() -> None:
    w = cluster(server({"policyTypes": ["Egress", "Ingres"], "ingress": [{}], "egress": [TO_A]}))
    assert not w.allowed("ns/a", "ns/s")  # ingress isolated, its rules do not count (type invalid)
    assert w.allowed("ns/s", "ns/a")
    assert not w.allowed("ns/s", "ns/b")


def test_2_2_8_isolation_needs_selection_network_and_type() -> None:
    w = cluster(
        server({"policyTypes": ["Egress"]}, name="egress-only"),
        server({}, name="other-net", policy_for="net2"),
        policy("ns/other-pod", {"podSelector": {"matchLabels": {"app": "b"}}}),
    )
    assert w.allowed("ns/a", "ns/s")  # nothing isolates s for ingress on net1


def test_2_2_9_non_isolated_direction_allows_everything() -> None:
    w = cluster(server({"policyTypes": ["Ingress"]}))
    for dst in ("ns/a", "ns/b", "x/c", "10.1.0.99"):
        assert w.allowed("ns/s", dst, "UDP", 5353)


def test_2_2_10_policies_are_a_union_and_zero_rules_still_isolate() -> None:
    w = cluster(
        server({"ingress": []}, name="deny"),
        server({"ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}]}, name="a"),
        server({"ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]}, name="b"),
    )
    assert w.allowed("ns/a", "ns/s")
    assert w.allowed("ns/b", "ns/s")
    assert not w.allowed("x/c", "ns/s")


def test_2_2_11_a_connection_needs_egress_of_source_and_ingress_of_destination() -> None:
    w = cluster(
        policy(
            "ns/a-out",
            {
                "podSelector": {"matchLabels": {"app": "a"}},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "s"}}}]}],
            },
        ),
        server({"ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]}),
    )
    assert not w.allowed("ns/a", "ns/s")  # egress ok, ingress not
    assert w.allowed("ns/b", "ns/s")
    assert not w.allowed("ns/a", "ns/b")  # egress not


def test_2_2_12_replies_are_allowed_by_conntrack_first() -> None:
    w = cluster(server({"policyTypes": ["Ingress", "Egress"]}))
    for chain in w.ruleset("ns/s").table.chains:
        if chain.hook is None:
            assert chain.rules[0].matches == (CtState(("established", "related")),)
    reply = Packet(
        hook="output",
        ifname="net1",
        family=4,
        saddr=1,
        daddr=2,
        protocol=6,
        sport=80,
        dport=4000,
        ct_state="established",
    )
    assert evaluate(w.ruleset("ns/s"), reply) == "accept"
    assert evaluate(w.ruleset("ns/s"), Packet(**{**_fields(reply), "ct_state": "new"})) == "drop"


def test_2_2_13_loopback_and_unpoliced_interfaces_never_meet_a_rule() -> None:
    """Self traffic goes over ``lo`` and the default network is ``eth0``: the dispatch maps know neither."""
    rs = cluster(server({"policyTypes": ["Ingress", "Egress"]})).ruleset("ns/s")
    for ifname in ("lo", "eth0"):
        for hook in ("input", "output"):
            p = Packet(hook=hook, ifname=ifname, family=4, saddr=1, daddr=1, protocol=6, sport=1, dport=80)  # type: ignore[arg-type]
            assert evaluate(rs, p) == "accept"


def _fields(p: Packet) -> dict[str, Any]:
    return {f: getattr(p, f) for f in p.__struct_fields__}


# §2.3 Rules --------------------------------------------------------------------------------------------------


def test_2_3_14_ingress_omitted_denies_all_ingress() -> None:
    w = cluster(server({"policyTypes": ["Ingress"]}))
    assert not w.allowed("ns/a", "ns/s")
    assert not w.allowed("10.1.0.99", "ns/s", "UDP", 53)


def test_2_3_15_empty_rule_allows_everything_including_icmp() -> None:
    w = cluster(server({"policyTypes": ["Ingress", "Egress"], "ingress": [{}], "egress": [{}]}))
    for proto, port in (("TCP", 1), ("UDP", 53), ("SCTP", 9), ("ICMP", None)):
        assert w.allowed("10.1.0.99", "ns/s", proto, port)
        assert w.allowed("ns/s", "10.9.9.9", proto, port)
        assert w.allowed("ns/s", "fd00:1::99", proto, port, family=6)


def test_2_3_16_empty_egress_without_policy_types_does_not_enable_egress() -> None:
    w = cluster(server({"egress": []}))
    assert w.allowed("ns/s", "ns/a")
    assert not w.allowed("ns/a", "ns/s")


def test_2_3_17_ports_and_peers_are_anded_within_a_rule_and_rules_ored() -> None:
    w = cluster(server({"ingress": [{**FROM_A, "ports": [{"port": 80}]}, {"ports": [{"port": 81}]}]}))
    assert w.allowed("ns/a", "ns/s", port=80)
    assert not w.allowed("ns/b", "ns/s", port=80)
    assert w.allowed("ns/b", "ns/s", port=81)
    assert not w.allowed("ns/a", "ns/s", port=82)


# §2.4 Peers ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("peers", [None, []])
def test_2_4_18_empty_from_allows_all_sources(peers: list[Any] | None) -> None:
    rule: dict[str, Any] = {"ports": [{"port": 80}]}
    if peers is not None:
        rule["from"] = peers
    w = cluster(server({"ingress": [rule]}))
    for src in ("ns/a", "x/c", "10.1.0.99", "198.51.100.1"):
        assert w.allowed(src, "ns/s")
    assert w.allowed("2001:db8::1", "ns/s", family=6)


def test_2_4_19_peers_are_ored() -> None:
    w = cluster(
        server(
            {
                "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"app": "b"}}}, {"ipBlock": {"cidr": "10.1.0.2/32"}}]}
                ]
            }
        )
    )
    assert w.allowed("ns/a", "ns/s")
    assert w.allowed("ns/b", "ns/s")
    assert not w.allowed("x/c", "ns/s")


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        ({"podSelector": {"matchLabels": {"app": "a"}}}, {"ns/a"}),  # D2: namespace-scoped
        ({"podSelector": {}}, {"ns/a", "ns/b"}),
        ({"namespaceSelector": {"matchLabels": {"team": "blue"}}}, {"x/c"}),
        ({"namespaceSelector": {}}, {"ns/a", "ns/b", "x/c"}),
        ({"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "a"}}}, {"ns/a", "x/c"}),
        ({"namespaceSelector": {"matchLabels": {"team": "blue"}}, "podSelector": {"matchLabels": {"app": "b"}}}, set()),
    ],
)
def test_2_4_20_peer_kinds(peer: dict[str, Any], allowed: set[str]) -> None:
    w = cluster(server({"ingress": [{"from": [peer]}]}))
    for src in ("ns/a", "ns/b", "x/c"):
        assert w.allowed(src, "ns/s") is (src in allowed)


def test_2_4_20_selectors_in_separate_peers_are_a_union() -> None:
    peers = [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}, {"podSelector": {"matchLabels": {"app": "b"}}}]
    w = cluster(server({"ingress": [{"from": peers}]}))
    assert [w.allowed(s, "ns/s") for s in ("ns/a", "ns/b", "x/c")] == [False, True, True]


def test_2_4_21_peers_count_only_with_their_address_on_the_same_network() -> None:
    pods = [
        pod("ns/s", {"app": "s"}, net1(1, ("ns/net2", "net2", ["10.2.0.1"]))),
        pod("ns/a", {"app": "a"}, net1(2, ("ns/net2", "net2", ["10.2.0.2"]))),
        pod("ns/b", {"app": "b"}, [("ns/net2", "net2", ["10.2.0.3"])]),
    ]
    w = cluster(server({"ingress": [{"from": [{"podSelector": {}}]}]}, policy_for="net1,net2"), pods=pods)
    assert w.allowed("ns/a", "ns/s", network="ns/net1")
    assert w.allowed("ns/b", "ns/s", network="ns/net2")
    assert not w.allowed("10.2.0.2", "ns/s", network="ns/net1")  # a's net2 address arriving on net1
    v4 = next(s for s in w.ruleset("ns/s").table.sets if s.name.startswith("ingress-net1"))
    assert not v4.interval  # pod addresses go into a plain (hash) set: churn commits in constant time
    assert v4.elements == (((0x0A010001, 0x0A010001),), ((0x0A010002, 0x0A010002),))  # s itself and a


@pytest.mark.parametrize("variant", [{"phase": "Pending"}, {"phase": "Succeeded"}, {"host_network": True}])
def test_2_4_22_pending_finished_and_host_network_peers_contribute_nothing(variant: dict[str, Any]) -> None:
    pods = [pod("ns/s", {"app": "s"}, net1(1)), pod("ns/a", {"app": "a"}, net1(2), **variant)]
    w = cluster(server({"ingress": [FROM_A]}), pods=pods)
    assert not w.allowed("10.1.0.2", "ns/s")


def test_2_4_23_selector_matching_no_pod_allows_nothing_but_isolates() -> None:
    w = cluster(server({"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"foo": "bar"}}}]}]}))
    assert not w.allowed("ns/a", "ns/s")
    assert not w.allowed("x/c", "ns/s")


def test_2_4_24_except_subtracts_only_from_its_own_block() -> None:
    """D4: another peer, another rule and another policy still allow an excepted address."""
    block = {"ipBlock": {"cidr": "10.1.0.0/24", "except": ["10.1.0.2/32"]}}
    assert not cluster(server({"ingress": [{"from": [block]}]})).allowed("ns/a", "ns/s")
    assert cluster(server({"ingress": [{"from": [block]}]})).allowed("ns/b", "ns/s")
    assert cluster(server({"ingress": [{"from": [block, {"ipBlock": {"cidr": "10.1.0.2/31"}}]}]})).allowed(
        "ns/a", "ns/s"
    )
    assert cluster(server({"ingress": [{"from": [block]}, FROM_A]})).allowed("ns/a", "ns/s")
    w = cluster(server({"ingress": [{"from": [block]}]}), server({"ingress": [FROM_A]}, name="q"))
    assert w.allowed("ns/a", "ns/s")


def test_2_4_24_cidr_minus_except_is_exact() -> None:
    block = {"ipBlock": {"cidr": "10.1.0.0/24", "except": ["10.1.0.0/30", "10.1.0.2/31"]}}
    w = cluster(server({"ingress": [{"from": [block]}]}))
    (v4,) = [s for s in w.ruleset("ns/s").table.sets]
    assert v4.elements == (((0x0A010004, 0x0A0100FF),),)


@pytest.mark.parametrize(
    "peer",
    [
        {"ipBlock": {"cidr": "10.1.0.0/24"}, "podSelector": {}},
        {},
        {"ipBlock": {"cidr": "10.1.0.0/24"}, "namespaceSelector": {}},
    ],
)
def test_2_4_25_invalid_peer_kinds_match_nothing(peer: dict[str, Any]) -> None:
    w = cluster(server({"ingress": [{"from": [peer]}]}))
    assert not w.allowed("ns/a", "ns/s")
    assert not w.allowed("10.1.0.99", "ns/s")


def test_2_4_26_cidr_host_bits_are_ignored() -> None:
    w = cluster(server({"ingress": [{"from": [{"ipBlock": {"cidr": "10.1.0.77/24"}}]}]}))
    assert w.allowed("ns/a", "ns/s")


def test_2_4_27_ip_block_never_matches_the_other_family() -> None:
    w = cluster(server({"ingress": [{"from": [{"ipBlock": {"cidr": "10.1.0.0/24"}}]}]}))
    assert w.allowed("ns/a", "ns/s", family=4)
    assert not w.allowed("ns/a", "ns/s", family=6)
    w = cluster(server({"ingress": [FROM_A]}))
    assert w.allowed("ns/a", "ns/s", family=6)  # selector peers: both families


def test_2_4_28_ip_block_matches_pod_addresses_too() -> None:
    w = cluster(server({"policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "10.1.0.3/32"}}]}]}))
    assert w.allowed("ns/s", "ns/b")
    assert not w.allowed("ns/s", "ns/a")


# §2.5 Ports ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ports", [None, []])
def test_2_5_29_ports_omitted_or_empty_mean_all_ports_and_protocols(ports: list[Any] | None) -> None:
    rule: dict[str, Any] = dict(FROM_A)
    if ports is not None:
        rule["ports"] = ports
    w = cluster(server({"ingress": [rule]}))
    for proto, port in (("TCP", 1), ("UDP", 65535), ("SCTP", 7), ("ICMP", None)):
        assert w.allowed("ns/a", "ns/s", proto, port)


def test_2_5_30_protocol_only_item_allows_all_ports_of_that_protocol() -> None:
    """Even next to a numbered item of the same protocol (peer-nftables §9.1.8)."""
    w = cluster(server({"ingress": [{"ports": [{"protocol": "UDP"}, {"protocol": "UDP", "port": 53}]}]}))
    assert w.allowed("ns/a", "ns/s", "UDP", 9999)
    assert not w.allowed("ns/a", "ns/s", "TCP", 9999)


def test_2_5_31_port_without_protocol_is_tcp() -> None:
    w = cluster(server({"ingress": [{"ports": [{"port": 80}]}]}))
    assert w.allowed("ns/a", "ns/s", "TCP", 80)
    assert not w.allowed("ns/a", "ns/s", "UDP", 80)
    assert not w.allowed("ns/a", "ns/s", "SCTP", 80)


def test_2_5_32_sctp_is_never_tcp_and_icmp_never_matches_a_port_item() -> None:
    w = cluster(server({"ingress": [{"ports": [{"protocol": "SCTP", "port": 80}, {"protocol": "SCTP"}]}]}))
    assert w.allowed("ns/a", "ns/s", "SCTP", 80)
    assert not w.allowed("ns/a", "ns/s", "TCP", 80)
    assert not w.allowed("ns/a", "ns/s", "ICMP", None)


@pytest.mark.parametrize(("port", "ok"), [(0, False), (1, True), (65535, True), (65536, False)])
def test_2_5_33_numeric_port_range(port: int, ok: bool) -> None:
    w = cluster(server({"ingress": [{"ports": [{"port": port}]}]}))
    if ok:
        assert w.allowed("ns/a", "ns/s", port=port)
    else:
        assert not w.allowed("ns/a", "ns/s", port=port % 65536)
        assert w.snapshot.policies["ns/p"].errors


def test_2_5_34_end_port_is_an_inclusive_range() -> None:
    w = cluster(server({"ingress": [{"ports": [{"port": 8000, "endPort": 8010}]}]}))
    assert [w.allowed("ns/a", "ns/s", port=p) for p in (7999, 8000, 8005, 8010, 8011)] == [
        False,
        True,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize(
    "item",
    [{"endPort": 90}, {"port": "http", "endPort": 90}, {"port": 90, "endPort": 80}, {"port": 80, "endPort": 70000}],
)
def test_2_5_34_invalid_end_port_matches_nothing(item: dict[str, Any]) -> None:
    """D9: ``endPort`` without ``port`` must not mean all ports."""
    w = cluster(server({"ingress": [{"ports": [item]}]}))
    for port in (80, 85, 8080):
        assert not w.allowed("ns/a", "ns/s", port=port)


def test_2_5_35_ingress_named_port_resolves_on_the_subject() -> None:
    w = cluster(server({"ingress": [{"ports": [{"port": "http"}, {"port": "dns", "protocol": "UDP"}]}]}))
    assert w.allowed("ns/a", "ns/s", port=8080)
    assert w.allowed("ns/a", "ns/s", "UDP", 53)
    assert not w.allowed("ns/a", "ns/s", port=80)  # "http" is not /etc/services here (D5)
    assert not w.allowed("ns/a", "ns/s", port=9090)  # a's http


def test_2_5_35_egress_named_port_resolves_per_destination() -> None:
    w = cluster(server({"policyTypes": ["Egress"], "egress": [{"ports": [{"port": "http"}]}]}))
    assert w.allowed("ns/s", "ns/a", port=9090)
    assert not w.allowed("ns/s", "ns/a", port=8080)
    assert not w.allowed("ns/s", "ns/b", port=9090)
    assert not w.allowed("ns/s", "10.1.0.99", port=9090)  # not a pod: a name cannot resolve


def test_2_5_35_egress_named_port_with_ip_block_resolves_on_pods_inside_it() -> None:
    w = cluster(
        server(
            {
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "10.1.0.0/30"}}], "ports": [{"port": "http"}]}],
            }
        )
    )
    assert w.allowed("ns/s", "ns/a", port=9090)
    assert not w.allowed("ns/s", "x/c", port=9090)


@pytest.mark.parametrize("item", [{"port": "nope"}, {"port": "http", "protocol": "UDP"}])
def test_2_5_35_unresolved_or_wrong_protocol_name_matches_nothing_but_isolates(item: dict[str, Any]) -> None:
    w = cluster(server({"ingress": [{"ports": [item]}]}))
    for proto in ("TCP", "UDP"):
        for port in (80, 8080):
            assert not w.allowed("ns/a", "ns/s", proto, port)


# §2.6 Multiple networks and policy-for -----------------------------------------------------------------------


def test_2_6_36_policy_without_policy_for_has_no_effect() -> None:
    w = cluster(server({}, policy_for=None))
    assert w.allowed("ns/a", "ns/s")
    assert any("missing" in m for m in w.snapshot.policies["ns/p"].warnings)


@pytest.mark.parametrize("value", [" net1 ", "ns/net1", ",net1,,", "net2, ns/net1", "x/other,net1"])
def test_2_6_37_policy_for_is_normalised(value: str) -> None:
    assert not cluster(server({}, policy_for=value)).allowed("ns/a", "ns/s")


def test_2_6_37_bare_policy_for_names_use_the_policy_namespace() -> None:
    """The policy in x names ``net1``: that is x/net1, not the pod's ns/net1."""
    pods = [pod("x/s", {"app": "s"}, [("ns/net1", "net1", ["10.1.0.1"])]), pod("ns/a", {}, net1(2))]
    w = cluster(policy("x/p", {"podSelector": {}}, "net1"), pods=pods)
    assert w.allowed("ns/a", "x/s")
    w = cluster(policy("x/p", {"podSelector": {}}, "ns/net1"), pods=pods)
    assert not w.allowed("ns/a", "x/s")


def test_2_6_38_bare_network_status_names_are_normalised_with_the_pod_namespace() -> None:
    """D7: un-namespaced status names are recognised and policed."""
    pods = [pod("ns/s", {"app": "s"}, [("net1", "net1", ["10.1.0.1"])]), pod("ns/a", {}, net1(2))]
    assert not cluster(server({}), pods=pods).allowed("ns/a", "ns/s")


def test_2_6_38_bare_status_name_takes_its_namespace_from_the_networks_annotation() -> None:
    pods = [
        pod("x/s", {"app": "s"}, [("net1", "net1", ["10.1.0.1"])], networks="ns/net1@net1"),
        pod("ns/a", {}, net1(2)),
    ]
    w = cluster(policy("x/p", {"podSelector": {}}, "ns/net1"), pods=pods)
    assert w.ruleset("x/s").enforces
    assert not w.allowed("ns/a", "x/s", network="ns/net1")  # the oracle reads the status name the same way
    elsewhere = cluster(policy("x/p", {"podSelector": {}}, "x/net1"), pods=pods)
    assert not elsewhere.ruleset("x/s").enforces
    assert elsewhere.allowed("ns/a", "x/s", network="ns/net1")


def test_2_6_39_policy_for_may_list_nads_of_other_namespaces() -> None:
    pods = [pod("x/s", {"app": "s"}, [("ns/net1", "net1", ["10.1.0.1"])]), pod("ns/a", {"app": "a"}, net1(2))]
    peer = {"namespaceSelector": {"matchLabels": {"team": "red"}}}
    w = cluster(policy("x/p", {"podSelector": {}, "ingress": [{"from": [peer]}]}, "ns/net1"), pods=pods)
    assert w.allowed("ns/a", "x/s")
    assert not w.allowed("10.1.0.99", "x/s")


def test_2_6_40_the_same_nad_attached_twice_is_governed_on_both_interfaces() -> None:
    pods = [
        pod("ns/s", {"app": "s"}, net1(1, ("ns/net1", "net1b", ["10.1.0.11"]))),
        pod("ns/a", {"app": "a"}, net1(2)),
    ]
    rs = cluster(server({"ingress": [FROM_A]}), pods=pods).ruleset("ns/s")
    assert {c.name for c in rs.table.chains} == {"input", "output", "ingress-net1", "ingress-net1b"}


# §2.7 Lifecycle ------------------------------------------------------------------------------------------------


def test_2_7_41_label_changes_are_reflected_in_a_new_snapshot() -> None:
    before = cluster(server({"ingress": [FROM_A]}))
    relabelled = [pod("ns/s", {"app": "s"}, net1(1)), pod("ns/a", {"app": "z"}, net1(2))]
    after = cluster(server({"ingress": [FROM_A]}), pods=relabelled)
    assert before.allowed("ns/a", "ns/s") and not after.allowed("ns/a", "ns/s")
    assert before.ruleset("ns/s").content_hash() != after.ruleset("ns/s").content_hash()


def test_2_7_42_deleting_the_last_policy_reopens_the_pod() -> None:
    assert cluster(server({})).ruleset("ns/s").enforces
    w = cluster()
    assert not w.ruleset("ns/s").enforces
    assert w.allowed("ns/a", "ns/s")


def test_2_7_43_a_deleted_peer_loses_its_address_immediately() -> None:
    w = cluster(server({"ingress": [FROM_A]}), pods=[pod("ns/s", {"app": "s"}, net1(1))])
    assert not w.allowed("10.1.0.2", "ns/s")


# §2.8 Operational needs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("allow_ndp", "verdict"), [(True, "accept"), (False, "drop")])
def test_2_8_45_neighbour_discovery_is_allowed_by_default(allow_ndp: bool, verdict: str) -> None:
    w = cluster(server({"policyTypes": ["Ingress", "Egress"]}), options=CompileOptions(allow_ndp=allow_ndp))
    for icmp_type in (133, 134, 135, 136, 137):
        for hook in ("input", "output"):
            p = Packet(hook=hook, ifname="net1", family=6, saddr=1, daddr=2, protocol=58, icmp_type=icmp_type)  # type: ignore[arg-type]
            assert evaluate(w.ruleset("ns/s"), p) == verdict
    echo = Packet(hook="input", ifname="net1", family=6, saddr=1, daddr=2, protocol=58, icmp_type=128)
    assert evaluate(w.ruleset("ns/s"), echo) == "drop"


def test_2_8_45_accept_icmp_and_icmpv6_options() -> None:
    w = cluster(server({}), options=CompileOptions(accept_icmp=True, accept_icmpv6=True))
    for family, proto in ((4, 1), (6, 58)):
        p = Packet(hook="input", ifname="net1", family=family, saddr=1, daddr=2, protocol=proto, icmp_type=8)  # type: ignore[arg-type]
        assert evaluate(w.ruleset("ns/s"), p) == "accept"
    tcp = Packet(hook="input", ifname="net1", family=4, saddr=1, daddr=2, protocol=6, sport=1, dport=80)
    assert evaluate(w.ruleset("ns/s"), tcp) == "drop"


@pytest.mark.parametrize("ifname", ["abcdefghijklmnop", "ñññññññññ", "a/b", "net 1", ""])
def test_2_1_3_status_entries_with_impossible_interface_names_are_ignored_and_reported(ifname: str) -> None:
    """Linux cannot have such an interface (nor nft match it exactly): the entry is dropped and reported, and the
    pod's other interfaces are still compiled into a ruleset that encodes."""
    s = pod("ns/s", {"app": "s"}, [("ns/net1", ifname, ["10.1.0.9"]), ("ns/net1", "net1", ["10.1.0.1"])])
    w = cluster(server({"ingress": [FROM_A]}), pods=[s, pod("ns/a", {"app": "a"}, net1(2))])
    ruleset = w.ruleset("ns/s")
    assert [c.name for c in ruleset.table.chains if c.hook is None] == ["ingress-net1"]
    info = w.snapshot.info(w.pods["ns/s"])
    if ifname:
        assert any(repr(ifname) in problem for problem in info.problems), info.problems


def test_2_1_3_an_interface_reported_on_two_networks_is_isolated_with_no_allows() -> None:
    """A contradictory network-status (one interface name on ns/net2 and on ns/net1) must not leave the interface
    open because its first entry is on an unpoliced network (DECISIONS.md 4): fail closed, and report it."""
    contradictory = [("ns/net2", "net1", ["10.2.0.1"]), ("ns/net1", "net1", ["10.1.0.1"])]
    pods = [pod("ns/s", {"app": "s"}, contradictory), pod("ns/a", {"app": "a"}, net1(2))]
    nads = [nad("ns/net1"), nad("ns/net2")]
    w = World(pods, [server({"ingress": [FROM_A]})], nads=nads)
    assert not w.allowed("ns/a", "ns/s", network="ns/net1")  # FROM_A would allow it on a sane interface
    chain = next(c for c in w.ruleset("ns/s").table.chains if c.name == "ingress-net1")
    assert chain.rules[-1].verdict == Drop()
    assert not any(r.comment for r in chain.rules)  # no policy rule, only the preamble and the drop
    assert any("reported on several networks" in p for p in w.snapshot.info(w.pods["ns/s"]).problems)
    open_world = World(pods, [], nads=nads)
    assert open_world.allowed("ns/a", "ns/s", network="ns/net1")  # no policy: nothing to isolate
