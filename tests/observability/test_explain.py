"""``explain`` over small clusters: verdicts, reasons, and disagreement between the oracle and compiled rulesets."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.policy.builders import nad, namespace, pod, policy
from trinet.objects import MultiNetworkPolicy, Pod
from trinet.observability.explain import (
    EXIT_ALLOWED,
    EXIT_BUG,
    EXIT_DENIED,
    ExplainError,
    Explanation,
    Flow,
    exit_status,
    explain,
    format_explanations,
)
from trinet.policy import CompileOptions, Snapshot
from trinet.policy.oracle import Oracle

NADS = [nad("ns/net1"), nad("ns/net2"), nad("ns/vlan", "ipvlan")]
FROM_A = {"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}


def pods() -> list[Pod]:
    def on(i: int, *extra: tuple[str, str, list[str]]) -> list[tuple[str, str, list[str]]]:
        return [("ns/net1", "net1", [f"10.1.0.{i}"]), *extra]

    return [
        pod("ns/s", {"app": "s"}, on(1, ("ns/vlan", "net3", ["10.3.0.1"])), ports=[("http", "TCP", 8080)]),
        pod("ns/a", {"app": "a"}, on(2)),
        pod("ns/b", {"app": "b"}, on(3)),
        pod("ns/v", {"app": "v"}, on(5, ("ns/vlan", "net3", ["10.3.0.5"]))),
        pod("ns/lone", {"app": "lone"}, [("ns/net2", "net2", ["10.2.0.9"])]),
    ]


def run(
    policies: list[MultiNetworkPolicy], flow: Flow, options: CompileOptions | None = None, plugins: Any = ("macvlan",)
) -> list[Explanation]:
    all_pods = pods()
    namespaces = [namespace("ns")]
    snapshot = Snapshot(all_pods, namespaces, policies, NADS)
    oracle = Oracle(all_pods, namespaces, policies, NADS, plugins)
    return explain(snapshot, policies, oracle, flow, options or CompileOptions())


def server(name: str, spec: dict[str, Any], policy_for: str = "net1") -> MultiNetworkPolicy:
    return policy(f"ns/{name}", {"podSelector": {"matchLabels": {"app": "s"}}, **spec}, policy_for)


def test_allowed_names_the_policy_rule_peer_and_port() -> None:
    p = server("web", {"ingress": [{"ports": [{"protocol": "TCP", "port": 80}], **FROM_A}]})
    [e] = run([p], Flow("ns/a", "ns/s", "TCP", 80))
    assert e.oracle_allowed and e.compiled_allowed and not e.bugs
    assert e.network == "ns/net1" and e.family == 4 and (e.src_address, e.dst_address) == ("10.1.0.2", "10.1.0.1")
    assert e.egress.isolating == () and e.egress.compiled == "accept" and e.egress.compiled_rule is None
    assert e.ingress.isolating == ("ns/web",)
    [a] = e.ingress.allowances
    assert (a.policy, a.rule) == ("ns/web", "ingress[0]")
    assert a.peer == 'from[0] {"podSelector":{"matchLabels":{"app":"a"}}}'
    assert a.port == 'ports[0] {"protocol":"TCP","port":80}'
    assert e.ingress.compiled_rule is not None
    assert e.ingress.compiled_rule.startswith("chain ingress-net1 rule ")
    assert 'accept comment "ns/web ingress[0]"' in e.ingress.compiled_rule
    assert exit_status([e]) == EXIT_ALLOWED
    text = format_explanations([e])
    assert text.startswith("ns/a -> ns/s TCP/80 IPv4 10.1.0.2 -> 10.1.0.1 on ns/net1: ALLOWED\n")
    assert "allowed by ns/web ingress[0]" in text


def test_isolated_and_unmatched_is_denied_by_the_final_drop() -> None:
    p = server("web", {"ingress": [{"ports": [{"protocol": "TCP", "port": 80}], **FROM_A}]})
    [e] = run([p], Flow("ns/b", "ns/s", "TCP", 80))
    assert not e.oracle_allowed and not e.compiled_allowed and not e.bugs
    assert e.ingress.isolating == ("ns/web",) and e.ingress.allowances == ()
    assert e.ingress.compiled == "drop"
    assert e.ingress.compiled_rule is not None and e.ingress.compiled_rule.endswith(" drop")
    assert exit_status([e]) == EXIT_DENIED
    assert "denied: the direction is isolated and no rule of ns/web matches" in format_explanations([e])
    [wrong_port] = run([p], Flow("ns/a", "ns/s", "TCP", 81))
    assert not wrong_port.oracle_allowed and wrong_port.ingress.allowances == ()


def test_two_policies_each_allow_their_own_flow() -> None:
    web = server("web", {"ingress": [{"ports": [{"protocol": "TCP", "port": 80}], **FROM_A}]})
    tls = server("tls", {"ingress": [{"ports": [{"port": 443}], "from": [{"podSelector": {}}]}]})
    [b443] = run([web, tls], Flow("ns/b", "ns/s", "TCP", 443))
    assert b443.oracle_allowed and b443.compiled_allowed and not b443.bugs
    assert b443.ingress.isolating == ("ns/tls", "ns/web")
    assert [(a.policy, a.rule) for a in b443.ingress.allowances] == [("ns/tls", "ingress[0]")]
    assert b443.ingress.compiled_rule is not None and "ns/tls ingress[0]" in b443.ingress.compiled_rule
    [b80] = run([web, tls], Flow("ns/b", "ns/s", "TCP", 80))
    assert not b80.oracle_allowed and not b80.compiled_allowed
    assert [n.policy for n in b80.ingress.selecting] == ["ns/tls", "ns/web"]


def test_egress_isolation_of_the_source() -> None:
    deny = policy("ns/deny-out", {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Egress"]})
    [e] = run([deny], Flow("ns/a", "ns/s", "UDP", 53))
    assert not e.oracle_allowed and e.egress.compiled == "drop" and e.ingress.compiled == "accept"
    assert e.egress.isolating == ("ns/deny-out",)
    assert e.egress.compiled_rule is not None and e.egress.compiled_rule.startswith("chain egress-net1 ")


def test_a_policy_of_another_network_is_listed_but_does_not_apply() -> None:
    other = server("other", {"ingress": []}, policy_for="net2")
    [e] = run([other], Flow("ns/a", "ns/s", "TCP", 80))
    assert e.oracle_allowed and e.ingress.isolating == ()
    [note] = e.ingress.selecting
    assert (note.policy, note.networks, note.applies) == ("ns/other", ("ns/net2",), False)
    assert "not this network" in format_explanations([e])


def test_an_unsupported_cni_type_is_not_policed() -> None:
    deny = server("deny", {"ingress": []}, policy_for="vlan")
    [e] = run([deny], Flow("ns/v", "ns/s", "TCP", 80, network="ns/vlan"))
    assert e.oracle_allowed and e.compiled_allowed
    assert e.ingress.not_policed == "ns/vlan is of CNI type 'ipvlan', not a policed plugin (macvlan)"


def test_every_shared_network_is_explained_unless_one_is_chosen() -> None:
    flows = run([], Flow("ns/v", "ns/s", "ICMP", None))
    assert [e.network for e in flows] == ["ns/net1", "ns/vlan"]
    assert all(e.oracle_allowed for e in flows)
    [bare] = run([], Flow("ns/v", "ns/s", "ICMP", None, network="vlan"))
    assert bare.network == "ns/vlan"


def test_disagreement_between_oracle_and_compiled_rulesets_is_a_bug() -> None:
    """The daemon polices ipvlan here but the oracle is told it does not: the readings must differ, loudly."""
    deny = server("deny", {"ingress": []}, policy_for="vlan")
    options = CompileOptions(network_plugins=frozenset({"macvlan", "ipvlan"}))
    [e] = run([deny], Flow("ns/v", "ns/s", "TCP", 80, network="ns/vlan"), options=options)
    assert e.oracle_allowed and not e.compiled_allowed
    assert e.bugs == ("ingress of ns/s: the oracle allows but the compiled ruleset drops",)
    assert exit_status([e]) == EXIT_BUG
    assert "BUG: ingress of ns/s" in format_explanations([e])


@pytest.mark.parametrize(
    ("flow", "message"),
    [
        (Flow("ns/a", "ns/nope", "TCP", 80), "pod ns/nope not found"),
        (Flow("a", "ns/s", "TCP", 80), "give a pod as NAMESPACE/NAME"),
        (Flow("ns/a", "ns/lone", "TCP", 80), "share no secondary network"),
        (Flow("ns/a", "ns/s", "TCP", 80, network="ns/net2"), "not both attached to ns/net2"),
        (Flow("ns/a", "ns/s", "TCP", 80, family=6), "do not both have an IPv6 address"),
        (Flow("ns/a", "ns/s", "GRE", 80), "protocol 'GRE'"),
        (Flow("ns/a", "ns/s", "TCP", None), "TCP needs --port"),
        (Flow("ns/a", "ns/s", "ICMP", 8), "ICMP has no port"),
    ],
)
def test_questions_that_cannot_be_asked(flow: Flow, message: str) -> None:
    with pytest.raises(ExplainError, match=message):
        run([], flow)
