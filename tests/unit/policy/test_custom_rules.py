"""Custom rule files: the documented nft subset, family guards, placement, and file:line rejection."""

from __future__ import annotations

import pytest

from tests.unit.policy.test_semantics import cluster, server
from trinet.policy import CompileOptions, Packet, evaluate
from trinet.policy.custom_rules import CustomRuleError, CustomRuleFile, build_custom_rules, parse_custom_rules
from trinet.policy.render import render_rule
from trinet.policy.ruleset import Accept, Addr, CtState, Drop, IcmpType, IfName, L4Proto, NfProto, Port, Rule


def one(text: str, family: int = 4) -> Rule:
    rules, problems = parse_custom_rules(CustomRuleFile("f", text), family)  # type: ignore[arg-type]
    assert problems == []
    (rule,) = rules
    return rule


@pytest.mark.parametrize(
    ("text", "family", "nft"),
    [
        ("tcp dport 9999 accept", 4, "meta nfproto ipv4 tcp dport 9999 accept"),
        ("udp sport != { 53, 67-68 } drop", 4, "meta nfproto ipv4 udp sport != { 53, 67-68 } drop"),
        (
            "ip saddr { 10.0.0.0/8, 192.168.1.1-192.168.1.9 } accept",
            4,
            "ip saddr { 10.0.0.0/8, 192.168.1.1-192.168.1.9 } accept",
        ),
        ("ip6 daddr != fe80::/10 accept", 6, "ip6 daddr != fe80::/10 accept"),
        ("meta l4proto { udp, tcp } accept", 4, "meta nfproto ipv4 meta l4proto { tcp, udp } accept"),
        (
            "icmp type { redirect, 3 } accept",
            4,
            "icmp type { destination-unreachable, redirect } accept",
        ),
        (
            "icmpv6 type { nd-neighbor-solicit, packet-too-big } accept",
            6,
            "icmpv6 type { packet-too-big, nd-neighbor-solicit } accept",
        ),
        (
            'iifname { "net2", "net1" } ct state established,new accept',
            4,
            'meta nfproto ipv4 iifname { "net1", "net2" } ct state new,established accept',
        ),
        ("  drop", 6, "meta nfproto ipv6 drop"),
    ],
)
def test_supported_subset(text: str, family: int, nft: str) -> None:
    assert render_rule(one(text, family)) == nft + ' comment "custom rule"'


def test_parsed_model() -> None:
    assert one("tcp dport 80 ip saddr 10.0.0.1 accept").matches == (
        NfProto(4),
        L4Proto((6,)),
        Port("dport", elements=((80, 80),)),
        Addr(4, "saddr", elements=((0x0A000001,) * 2,)),
    )
    assert one("ct state invalid drop", 6).verdict == Drop()
    assert one('oifname != "eth0" icmpv6 type 128 accept', 6).matches[1:] == (
        IfName("oifname", ("eth0",), True),
        IcmpType(6, (128,)),
    )
    assert one("ct state related accept").matches[1] == CtState(("related",))
    assert one("accept").verdict == Accept()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("tcp dport http accept", "'http' is not a port number or range (service names are not resolved)"),
        ("ip saddr 10.0.0.1/8 accept", "'10.0.0.1/8' is not an IPv4 address, prefix or range"),
        ("ip6 saddr ::1 accept", "'ip6' in an IPv4 rule file"),
        ("icmpv6 type 128 accept", "'icmpv6' in an IPv4 rule file"),
        ("counter accept", "unsupported expression 'counter'"),
        ("tcp dport 80", "expected a match or a verdict, found end of line"),
        ("tcp dport 80 accept comment x", "unexpected 'comment x' after the verdict"),
        ("meta mark 1 accept", "only 'meta l4proto' is supported, found 'meta mark'"),
        ("ct state bogus accept", "ct state must be a comma list of"),
        ("iifname eth0 accept", "iifname needs quoted names, found eth0"),
        ('iifname "net*" drop', "iifname wildcards are not supported, found 'net*'"),
        ('oifname { "x", "*" } drop', "oifname wildcards are not supported, found '*'"),
        ('iifname "abcdefghijklmnopq" accept', "iifname 'abcdefghijklmnopq' is not a valid interface name"),
        ('iifname "" accept', "iifname '' is not a valid interface name"),
        ("tcp dport { 80 81 } accept", "expected ',' or '}', found '81'"),
        ("tcp dport 70000 accept", "'70000' is not a port number or range in 0-65535"),
        ("icmp type nope accept", "'nope' is not a known icmp type"),
        ("jump somewhere", "unsupported expression 'jump'"),
    ],
)
def test_malformed_or_unsupported_lines_are_rejected_with_file_and_line(line: str, reason: str) -> None:
    text = f"# comment\n\ntcp dport 1 accept\n{line}\n"
    with pytest.raises(CustomRuleError) as info:
        build_custom_rules(v4_egress=CustomRuleFile("/etc/rules/v4-egress", text))
    (problem,) = info.value.problems
    assert problem.startswith("/etc/rules/v4-egress:4: "), problem
    assert reason in problem


def test_all_problems_of_all_files_are_reported() -> None:
    with pytest.raises(CustomRuleError) as info:
        build_custom_rules(v4_ingress=CustomRuleFile("a", "bad accept\n"), v6_egress=CustomRuleFile("b", "x\nok\n"))
    assert [p.split(": ")[0] for p in info.value.problems] == ["a:1", "b:1", "b:2"]


def test_custom_rules_run_after_conntrack_and_before_policy_rules_in_their_direction() -> None:
    """peer §5.2 scenario 15: a custom accept opens a port the policy does not allow."""
    custom = build_custom_rules(
        v4_ingress=CustomRuleFile("v4-in", "tcp dport 9999 accept\n"),
        v6_ingress=CustomRuleFile("v6-in", "tcp dport 9998 accept\n"),
    )
    w = cluster(server({"policyTypes": ["Ingress", "Egress"]}), options=CompileOptions(custom=custom))
    rs = w.ruleset("ns/s")

    def verdict(hook: str, family: int, port: int) -> str:
        p = Packet(hook=hook, ifname="net1", family=family, saddr=1, daddr=2, protocol=6, sport=1, dport=port)  # type: ignore[arg-type]
        return evaluate(rs, p)

    assert verdict("input", 4, 9999) == "accept"
    assert verdict("input", 6, 9999) == "drop"  # the v4 file does not apply to IPv6
    assert verdict("input", 6, 9998) == "accept"
    assert verdict("output", 4, 9999) == "drop"  # ingress files do not apply to egress
    chain = next(c for c in rs.table.chains if c.name == "ingress-net1")
    assert [r.comment for r in chain.rules[2:4]] == ["custom rule", "custom rule"]
