"""Whatever a user writes into an annotation or a NAD, it is reported for that object alone: every parser is total
(arbitrary JSON, arbitrary text, JSON nested far deeper than a decoder recurses), and a malformed object neither
breaks the ``Snapshot`` nor changes the rulesets of pods that do not depend on it (the oracle copes too)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.policy.builders import World, nad, pod, policy, property_settings
from tests.unit.policy.test_semantics import FROM_A, cluster, net1, server
from trinet.objects import NetworkAttachmentDefinition, Pod
from trinet.policy import Snapshot, compile
from trinet.policy.annotations import (
    NETWORK_STATUS_ANNOTATION,
    NETWORKS_ANNOTATION,
    POLICY_FOR_ANNOTATION,
    parse_cni_config,
    parse_network_status,
    parse_networks,
    parse_policy_for,
)

DEPTHS = (1, 100, 1_000, 10_000, 100_000)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def deep(draw: st.DrawFn) -> str:
    """JSON nested ``depth`` levels (arrays or objects), alone or where a parser looks for a field."""
    depth = draw(st.sampled_from(DEPTHS))
    nested = "[" * depth + "]" * depth if draw(st.booleans()) else '{"a":' * depth + "1" + "}" * depth
    where = draw(st.sampled_from(["{}", '[{{"name": "n", "ips": {}}}]', '{{"type": "macvlan", "x": {}}}',
                                  '{{"plugins": [{}]}}', '[{{"name": "x", "extra": {}}}]']))  # fmt: skip
    return where.format(nested) if where != "{}" else nested


texts = (
    st.text()
    | json_values.map(json.dumps)
    | deep()
    | st.sampled_from(["\ud800", '"\\ud800"', '["\\udfff"]', "1" * 5000, "[" + "1" * 5000 + "]", ""])
)

PARSERS = {
    "networks": lambda text: parse_networks(text, "ns"),
    "network-status": parse_network_status,
    "policy-for": lambda text: (parse_policy_for(text, "ns"), []),
    "cni config": parse_cni_config,
}


@property_settings
@given(text=texts)
def test_every_parser_is_total(text: str) -> None:
    for name, parse in PARSERS.items():
        _, problems = parse(text)
        assert isinstance(problems, list | tuple), name
        assert all(isinstance(p, str) for p in problems), name


def test_deep_nesting_is_reported_not_raised() -> None:
    nested = "[" * 100_000 + "]" * 100_000
    in_a_field = '[{"name": "net1", "extra": ' + nested + "}]"  # skipped by the typed decoders, recursively
    assert parse_cni_config(nested) == (None, ("spec.config: invalid JSON: nested too deeply",))
    assert parse_network_status(in_a_field) == ((), ["network-status: invalid JSON: nested too deeply"])
    assert parse_networks(in_a_field, "ns") == ((), ["networks: invalid JSON: nested too deeply"])
    assert parse_cni_config('{"type": "macvlan"}') == ("macvlan", ())
    assert parse_cni_config("") == (None, ())  # config on the node's disk: unknown, not malformed


def _with_annotation(base: Pod, key: str, value: str) -> Pod:
    raw = msgspec.to_builtins(base)
    raw["metadata"]["annotations"][key] = value
    return msgspec.convert(raw, Pod)


def _nad_with_config(ref: str, config: str) -> NetworkAttachmentDefinition:
    ns, name = ref.split("/")
    return msgspec.convert({"metadata": {"namespace": ns, "name": name}, "spec": {"config": config}},
                           NetworkAttachmentDefinition)  # fmt: skip


SPEC: dict[str, Any] = {"ingress": [FROM_A], "egress": [{"to": [{"podSelector": {}}]}]}


@property_settings
@given(text=texts, where=st.sampled_from(["networks", "network-status", "nad", "policy-for"]))
def test_a_malformed_object_is_reported_for_itself_alone(text: str, where: str) -> None:
    """One odd object beside a healthy cluster: the snapshot builds, every pod compiles, the problem is reported
    on that object, and the subject's ruleset is exactly what it is without the odd object."""
    healthy = cluster(server(SPEC))
    odd_pod = pod("y/odd", {"app": "nobody"}, [("y/other", "net1", ["10.9.0.1"])])
    policies, nads, pods = list(healthy.policies), list(healthy.nads), list(healthy.pods.values())
    if where == "nad":
        nads.append(_nad_with_config("y/other", text))
    elif where == "policy-for":
        raw = msgspec.to_builtins(policy("y/p", {}))
        raw["metadata"]["annotations"][POLICY_FOR_ANNOTATION] = text
        policies.append(msgspec.convert(raw, type(policies[0])))
    else:
        key = NETWORKS_ANNOTATION if where == "networks" else NETWORK_STATUS_ANNOTATION
        odd_pod = _with_annotation(odd_pod, key, text)
    world = World([*pods, odd_pod], policies, healthy.namespaces, nads)  # the oracle is built here too
    for p in world.pods.values():
        compile(world.snapshot, p, world.options)
        for network in ("ns/net1", "y/other"):
            world.oracle.allowed(p, world.pods["ns/s"], "TCP", 80, 4, network)
            world.oracle.allowed(world.pods["ns/s"], p, "UDP", 53, 6, network)
    assert world.ruleset("ns/s") == healthy.ruleset("ns/s")
    info = world.snapshot.info(odd_pod)
    if where == "nad":
        assert world.snapshot.nad_problems.get("y/other", ()) == parse_cni_config(text)[1]
    elif where != "policy-for" and text:  # an empty annotation is an absent one
        parser = parse_networks if where == "networks" else parse_network_status
        problems = parser(text, "y") if where == "networks" else parser(text)  # type: ignore[operator]
        assert set(problems[1]) <= set(info.problems)


def test_a_nad_nested_too_deeply_leaves_its_network_unpoliced_and_the_rest_enforced() -> None:
    deep_nad = _nad_with_config("ns/net2", '{"type": "macvlan", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    pods = [pod("ns/s", {"app": "s"}, net1(1, ("ns/net2", "net2", ["10.2.0.1"]))), pod("ns/a", {"app": "a"}, net1(2))]
    healthy = cluster(server({"ingress": [FROM_A]}, policy_for="net1,net2"), pods=pods)
    snapshot = Snapshot(healthy.pods.values(), healthy.namespaces, healthy.policies,
                        [n for n in healthy.nads if n.metadata.name != "net2"] + [deep_nad])  # fmt: skip
    assert snapshot.nad_problems == {"ns/net2": ("spec.config: invalid JSON: nested too deeply",)}
    chains = {c.name for c in compile(snapshot, healthy.pods["ns/s"]).table.chains}
    assert chains == {"input", "output", "ingress-net1"}  # net2's interface is not policed (DECISIONS 2)
    assert nad("ns/net2").spec.config  # the healthy NAD would police it
