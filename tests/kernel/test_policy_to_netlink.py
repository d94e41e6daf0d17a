"""to_netlink(compile(...)) applied through netlink_nft in one transaction gives the kernel exactly the ruleset
that ``nft -f render(...)`` gives: the mapping is one-to-one (golden scenarios and random clusters)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from netlink_nft import NftSocket, replace_contents
from tests.support.netns import netns_path
from tests.support.nft import listing, nft
from tests.unit.policy.builders import World, pod
from tests.unit.policy.test_golden import SCENARIOS, stacked_multinet
from tests.unit.policy.test_property_oracle import worlds
from tests.unit.policy.test_semantics import FROM_A, cluster, net1, server
from trinet.policy import CompileOptions, CustomRuleFile, PodRuleset, build_custom_rules, render
from trinet.policy.to_netlink import Installed, to_netlink, transaction, versioned


def same_in_kernel(by_text: str, by_netlink: str, ruleset: PodRuleset) -> None:
    nft(by_text, "-f", "-", stdin="flush ruleset\n" + render(ruleset))
    nft(by_netlink, "flush", "ruleset")
    with NftSocket.open(netns_path(by_netlink)) as sock:
        sock.apply(replace_contents(to_netlink(ruleset)))
    assert listing(by_netlink) == listing(by_text)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_scenarios_map_one_to_one(netns_pair: tuple[str, str], name: str) -> None:
    build, subject, _ = SCENARIOS[name]
    same_in_kernel(*netns_pair, build().ruleset(subject))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds())
def test_random_compiled_rulesets_map_one_to_one(netns_pair: tuple[str, str], world: World) -> None:
    for ref in world.pods:
        ruleset = world.ruleset(ref)
        if ruleset.enforces:
            same_in_kernel(*netns_pair, ruleset)


def test_custom_rules_and_icmp_options_map_one_to_one(netns_pair: tuple[str, str]) -> None:
    v4 = "\n".join(
        [
            "tcp dport 9999 accept",
            "udp sport != { 53, 67-68 } drop",
            "ip saddr { 10.0.0.0/8, 192.168.1.1-192.168.1.9 } accept",
            "ip daddr != 10.1.2.0/23 tcp dport 1-1024 accept",
            "meta l4proto { udp, tcp } accept",
            "icmp type redirect accept",
            "icmp type { echo-request, destination-unreachable } accept",
            'iifname { "net2", "net1" } ct state established,new accept',
            'oifname != "eth0" sctp sport 5 accept',
        ]
    )
    v6 = "\n".join(
        [
            "ip6 daddr != fe80::/10 accept",
            "icmpv6 type nd-neighbor-solicit accept",
            "ip6 saddr fd00::1-fd00::9 drop",
            "ip6 saddr ::/1 drop",  # an integer network below 2**32: must not be built as IPv4
            "ip6 daddr != ::/20 accept",
        ]
    )
    custom = build_custom_rules(
        v4_ingress=CustomRuleFile("v4", v4), v6_egress=CustomRuleFile("v6", v6), v6_ingress=CustomRuleFile("x", v6)
    )
    world = stacked_multinet(CompileOptions(custom=custom, accept_icmp=True, accept_icmpv6=True))
    same_in_kernel(*netns_pair, world.ruleset("ns/s"))


def test_unusual_interface_names_load_and_map_one_to_one(netns_pair: tuple[str, str]) -> None:
    pods = [pod("ns/s", {"app": "s"}, [("ns/net1", "nét1", ["10.1.0.1"])]), pod("ns/a", {"app": "a"}, net1(2))]
    world = cluster(server({"ingress": [FROM_A], "egress": [{}]}), pods=pods)
    same_in_kernel(*netns_pair, world.ruleset("ns/s"))


def test_peer_churn_is_a_transaction_of_set_elements_only(netns_pair: tuple[str, str]) -> None:
    """DESIGN.md: when only peer addresses change, the transaction carries only the set-element delta, and the
    kernel ends exactly as after a fresh load of the new ruleset."""
    fresh, updated = netns_pair
    spec = {"ingress": [FROM_A], "egress": [{"ports": [{"port": "http"}]}]}
    old = cluster(server(spec)).ruleset("ns/s")
    moved = [pod("ns/s", {"app": "s"}, net1(1)), pod("ns/a", {"app": "a"}, net1(9), ports=[("http", "TCP", 81)])]
    new = cluster(server(spec), pods=moved).ruleset("ns/s")
    assert transaction(Installed(new, 1), new) == (None, Installed(new, 1))
    with NftSocket.open(netns_path(updated)) as sock:
        first, installed = transaction(None, old)
        assert first is not None and installed == Installed(old, 1)
        sock.apply(first)
        batch, installed = transaction(installed, new)
        assert batch is not None and installed == Installed(new, 1)
        kinds = {m.describe().split()[0] for m in batch.messages}
        assert kinds == {"NEWSETELEM", "DELSETELEM"}, kinds
        sock.apply(batch)
    nft(fresh, "-f", "-", stdin=render(versioned(new, 1)))
    assert listing(updated) == listing(fresh)


def test_a_full_swap_moves_sets_to_the_other_generation_and_deletes_the_old(netns: str) -> None:
    one = cluster(server({"ingress": [FROM_A]})).ruleset("ns/s")
    two = cluster(server({"ingress": [FROM_A, {"ports": [{"port": 80}]}]})).ruleset("ns/s")
    installed = None
    with NftSocket.open(netns_path(netns)) as sock:
        for desired, generation in ((one, 1), (two, 2), (one, 1)):
            batch, installed = transaction(installed, desired)
            assert batch is not None and installed == Installed(desired, generation)
            sock.apply(batch)
            names = {o["set"]["name"] for o in listing(netns) if "set" in o}
            assert names == {f"ingress-net1-0.g{generation}", f"ingress-net1-1.g{generation}"}


def test_a_pod_left_without_policy_loses_its_table(netns: str) -> None:
    old = cluster(server({})).ruleset("ns/s")
    gone = cluster().ruleset("ns/s")
    installed = None
    with NftSocket.open(netns_path(netns)) as sock:
        for ruleset in (old, gone):
            batch, installed = transaction(installed, ruleset)
            assert batch is not None
            sock.apply(batch)
    assert installed is None
    assert listing(netns) == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds())
def test_successive_transactions_leave_exactly_the_desired_ruleset(netns_pair: tuple[str, str], world: World) -> None:
    """One namespace goes through the rulesets of every pod in turn (full swaps, deltas, removals), each applied
    with ``transaction(installed, next)``; after each step it must equal a fresh load of ``next``."""
    fresh, stepped = netns_pair
    nft(stepped, "flush", "ruleset")
    installed: Installed | None = None
    with NftSocket.open(netns_path(stepped)) as sock:
        for ref in sorted(world.pods):
            desired = world.ruleset(ref)
            batch, installed = transaction(installed, desired)
            if batch is not None:
                sock.apply(batch)
            nft(fresh, "flush", "ruleset")
            if installed is not None:
                nft(fresh, "-f", "-", stdin=render(versioned(desired, installed.generation)))
            assert listing(stepped) == listing(fresh), ref
