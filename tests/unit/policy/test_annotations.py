"""Annotation parsing (semantics.md §1.3, §2.6) and the NAD CNI type."""

from __future__ import annotations

from tests.unit.policy.builders import nad
from trinet.objects import NetworkAttachmentDefinition, NetworkAttachmentDefinitionSpec, ObjectMeta
from trinet.policy.annotations import (
    NetworkSelection,
    nad_cni_type,
    parse_network_status,
    parse_networks,
    parse_policy_for,
)


def test_1_3_networks_text_form() -> None:
    selections, problems = parse_networks("net-a, other/net-b@eth9 ,,net-c@x", "ns")
    assert selections == (
        NetworkSelection("ns", "net-a"),
        NetworkSelection("other", "net-b", "eth9"),
        NetworkSelection("ns", "net-c", "x"),
    )
    assert problems == []


def test_1_3_networks_text_form_rejects_bad_items() -> None:
    selections, problems = parse_networks("a/b/c,Bad,ok", "ns")
    assert selections == (NetworkSelection("ns", "ok"),)
    assert problems == [
        "networks[0]: 'a/b/c' is not [<namespace>/]<name>[@<ifname>]",
        "networks[1]: 'Bad' is not [<namespace>/]<name>[@<ifname>]",
    ]


def test_1_3_networks_json_form() -> None:
    value = '[{"name":"net-b","namespace":"other","interface":"net2","ips":["1.2.3.4/24"]},{"name":"net-a"}]'
    selections, problems = parse_networks(value, "ns")
    assert selections == (NetworkSelection("other", "net-b", "net2"), NetworkSelection("ns", "net-a"))
    assert problems == []
    assert parse_networks("[{]", "ns")[0] == ()


def test_1_3_network_status_strips_prefix_lengths() -> None:
    """D10: an address written with a prefix length is the address, never the subnet."""
    entries, problems = parse_network_status(
        '[{"name":"","interface":"eth0","ips":["192.168.1.1"],"default":true},'
        '{"name":"ns/n","interface":"net1","ips":["10.1.1.1/24","2001:db8:a::11/64","bogus"]}]'
    )
    assert [(e.v4, e.v6) for e in entries] == [
        ((0xC0A80101,), ()),
        ((0x0A010101,), (0x20010DB8000A << 80 | 0x11,)),
    ]
    assert entries[0].default and not entries[1].default
    assert problems == ["network-status[1].ips[2]: 'bogus' is not an IP address"]
    assert parse_network_status("not json")[0] == ()


def test_2_6_37_policy_for_parsing() -> None:
    assert parse_policy_for(" a , other/b,, ", "ns") == {"ns/a", "other/b"}
    assert parse_policy_for(None, "ns") == frozenset()
    assert parse_policy_for("", "ns") == frozenset()


def test_1_3_nad_cni_type() -> None:
    assert nad_cni_type(nad("ns/a", "macvlan")) == "macvlan"
    assert nad_cni_type(nad("ns/a", "bond", conflist=True)) == "bond"
    for config in ("", "[]", "{", '{"plugins": []}', '{"type": 3}'):
        empty = NetworkAttachmentDefinition(
            metadata=ObjectMeta(name="a"), spec=NetworkAttachmentDefinitionSpec(config=config)
        )
        assert nad_cni_type(empty) is None
