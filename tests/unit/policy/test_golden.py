"""Scenarios of peer-nftables.md §5: their truth tables (checked against compile and the oracle) and the rendered
ruleset of the policed pod, compared byte for byte with ``tests/golden/policy/<scenario>.nft``.

Regenerate after an intended change with ``TRINET_REGEN_GOLDEN=1 pytest tests/unit/policy/test_golden.py`` and
review the diff.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.policy.builders import World, nad, namespace, pod, policy
from trinet.policy import CompileOptions
from trinet.policy.render import render

GOLDEN = Path(__file__).parents[2] / "golden" / "policy"


def _pods(ns: str, names: dict[str, dict[str, str]], net: str, subnet: str, **kw: Any) -> list[Any]:
    return [
        pod(f"{ns}/{name}", labels, [(net, "net1", [f"{subnet}.{i + 1}"])], **kw)
        for i, (name, labels) in enumerate(names.items())
    ]


def simple_v4_ingress() -> World:
    """§5.2 scenario 1."""
    ns, net = "test-simple-v4-ingress", "default/macvlan1-simple"
    pods = _pods(
        ns, {"s": {"name": "pod-server"}, "a": {"name": "pod-client-a"}, "b": {"name": "pod-client-b"}}, net, "2.2.6"
    )
    spec = {
        "podSelector": {"matchLabels": {"name": "pod-server"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"name": "pod-client-a"}}}]}],
    }
    return World(pods, [policy(f"{ns}/test-multinetwork-policy", spec, net)], [], [nad(net)])


def advanced_ipblock() -> World:
    """§5.2 scenario 11 (dual-stack addresses added)."""
    ns, net = "test-advanced-ipblock", "default/macvlan1-ipblock"
    pods = [
        pod(f"{ns}/{n}", {"name": n}, [(net, "net1", [f"2.2.8.{i}", f"2001:db8:8::{i}"])])
        for n, i in (("s", 1), ("a", 11), ("b", 12), ("c", 13), ("d", 20))
    ]
    block = {"ipBlock": {"cidr": "2.2.8.0/24", "except": ["2.2.8.13/32", "2.2.8.14/32"]}}
    policies = [
        policy(
            f"{ns}/ingress",
            {"podSelector": {"matchLabels": {"name": "s"}}, "policyTypes": ["Ingress"], "ingress": [{"from": [block]}]},
            net,
        ),
        policy(
            f"{ns}/egress",
            {"podSelector": {"matchLabels": {"name": "s"}}, "policyTypes": ["Egress"], "egress": [{"to": [block]}]},
            net,
        ),
    ]
    return World(pods, policies, [], [nad(net)])


def port_range_and_protocols() -> World:
    """§5.2 scenarios 12 and 13 in one pod."""
    ns, net = "test-ports", "default/macvlan1-ports"
    pods = _pods(ns, {"pod-a": {"app": "a"}, "pod-b": {"app": "b"}}, net, "2.2.6")
    spec = {
        "podSelector": {"matchLabels": {"app": "a"}},
        "policyTypes": ["Egress", "Ingress"],
        "egress": [{"ports": [{"port": 5000, "endPort": 5900}]}, {"ports": [{"protocol": "TCP"}]}],
        "ingress": [{"ports": [{"port": 6000, "endPort": 6900}]}, {"ports": [{"protocol": "UDP"}]}],
    }
    return World(pods, [policy(f"{ns}/ports", spec, net)], [], [nad(net)])


def deny_all_with_specific_allow() -> World:
    """§5.2 scenario 16."""
    ns, net = "test-deny-all", "default/macvlan1-deny-all"
    pods = _pods(
        ns,
        {
            "s": {"role": "server"},
            "a": {"role": "allowed-client"},
            "b": {"role": "blocked-client"},
            "c": {"role": "other-client"},
        },
        net,
        "192.168.210",
    )
    sel = {"podSelector": {"matchLabels": {"role": "server"}}, "policyTypes": ["Ingress"]}
    policies = [
        policy(f"{ns}/deny-all-policy", {**sel, "ingress": []}, net),
        policy(
            f"{ns}/specific-allow-policy",
            {
                **sel,
                "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"role": "allowed-client"}}}], "ports": [{"port": 80}]}
                ],
            },
            net,
        ),
    ]
    return World(pods, policies, [], [nad(net)])


def mixed_selectors() -> World:
    """§5.2 scenario 20."""
    ns, blue, net = "test-mixed-selectors", "test-mixed-selectors-blue", "default/macvlan1-mixed"
    pods = _pods(
        ns, {"s": {"role": "server"}, "a": {"role": "allowed-client"}, "b": {"role": "blocked-client"}}, net, "2.2.9"
    ) + [
        pod(f"{blue}/{n}", {"role": r}, [(net, "net1", [f"2.2.9.{i}"])])
        for n, r, i in (("c", "allowed-client", 21), ("d", "blocked-client", 22), ("e", "other-client", 23))
    ]
    staging = {"namespaceSelector": {"matchLabels": {"environment": "staging"}}}
    allowed = {"podSelector": {"matchLabels": {"role": "allowed-client"}}}
    sel = {"podSelector": {"matchLabels": {"role": "server"}}}
    p5555 = [{"port": 5555}]
    policies = [
        policy(
            f"{ns}/p1",
            {**sel, "policyTypes": ["Ingress"], "ingress": [{"from": [{**staging, **allowed}], "ports": p5555}]},
            net,
        ),
        policy(
            f"{ns}/p2",
            {**sel, "policyTypes": ["Ingress"], "ingress": [{"from": [allowed, staging], "ports": p5555}]},
            net,
        ),
        policy(
            f"{ns}/p3",
            {**sel, "policyTypes": ["Egress"], "egress": [{"to": [{**staging, **allowed}], "ports": p5555}]},
            net,
        ),
    ]
    namespaces = [namespace(ns, environment="production"), namespace(blue, environment="staging")]
    return World(pods, policies, namespaces, [nad(net)])


def stacked_multinet(options: CompileOptions | None = None) -> World:
    """Ours (peer §5.3 gap): two networks with different policies, dual stack, named ports both ways, SCTP."""
    nets = [nad("ns/red"), nad("ns/blue")]
    pods = [
        pod(
            "ns/s",
            {"app": "s"},
            [
                ("ns/red", "ethred", ["10.0.1.1", "2001:db8:1::1"]),
                ("ns/blue", "ethblue", ["10.0.2.1", "2001:db8:2::1"]),
            ],
            ports=[("http", "TCP", 8080), ("sig", "SCTP", 2905)],
        ),
        pod("ns/a", {"app": "a"}, [("ns/red", "ethred", ["10.0.1.10", "2001:db8:1::10"])], ports=[("http", "TCP", 80)]),
        pod(
            "ns/b",
            {"app": "b"},
            [("ns/blue", "ethblue", ["10.0.2.11", "2001:db8:2::11"])],
            ports=[("http", "TCP", 8443)],
        ),
    ]
    policies = [
        policy(
            "ns/red",
            {
                "podSelector": {"matchLabels": {"app": "s"}},
                "ingress": [
                    {
                        "from": [{"podSelector": {"matchLabels": {"app": "a"}}}],
                        "ports": [{"port": "http"}, {"protocol": "SCTP", "port": "sig"}],
                    }
                ],
                "egress": [{"to": [{"podSelector": {}}], "ports": [{"port": "http"}]}],
            },
            "red",
        ),
        policy(
            "ns/blue",
            {
                "podSelector": {"matchLabels": {"app": "s"}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {"ipBlock": {"cidr": "10.0.2.0/24", "except": ["10.0.2.128/25"]}},
                            {"ipBlock": {"cidr": "2001:db8:2::/64"}},
                        ]
                    }
                ],
            },
            "blue",
        ),
    ]
    return World(pods, policies, [], nets, options=options)


SCENARIOS: dict[str, tuple[Callable[[], World], str, list[tuple[str, str, str, int | None, int, bool]]]] = {
    "simple-v4-ingress": (
        simple_v4_ingress,
        "test-simple-v4-ingress/s",
        [
            ("test-simple-v4-ingress/a", "test-simple-v4-ingress/s", "TCP", 5555, 4, True),
            ("test-simple-v4-ingress/b", "test-simple-v4-ingress/s", "TCP", 5555, 4, False),
            ("test-simple-v4-ingress/s", "test-simple-v4-ingress/a", "TCP", 5555, 4, True),
            ("test-simple-v4-ingress/s", "test-simple-v4-ingress/b", "TCP", 5555, 4, True),
        ],
    ),
    "advanced-ipblock": (
        advanced_ipblock,
        "test-advanced-ipblock/s",
        [
            ("test-advanced-ipblock/a", "test-advanced-ipblock/s", "TCP", 5555, 4, True),
            ("test-advanced-ipblock/b", "test-advanced-ipblock/s", "TCP", 5555, 4, True),
            ("test-advanced-ipblock/c", "test-advanced-ipblock/s", "TCP", 5555, 4, False),
            ("test-advanced-ipblock/d", "test-advanced-ipblock/s", "TCP", 5555, 4, True),
            ("test-advanced-ipblock/s", "test-advanced-ipblock/a", "TCP", 5555, 4, True),
            ("test-advanced-ipblock/s", "test-advanced-ipblock/c", "TCP", 5555, 4, False),
            ("test-advanced-ipblock/a", "test-advanced-ipblock/s", "TCP", 5555, 6, False),  # v4 block: no v6
        ],
    ),
    "port-range-and-protocols": (
        port_range_and_protocols,
        "test-ports/pod-a",
        [
            ("test-ports/pod-a", "test-ports/pod-b", "TCP", 5555, 4, True),
            ("test-ports/pod-a", "test-ports/pod-b", "TCP", 6666, 4, True),  # protocol-only TCP rule
            ("test-ports/pod-a", "test-ports/pod-b", "UDP", 6666, 4, False),
            ("test-ports/pod-b", "test-ports/pod-a", "TCP", 5555, 4, False),
            ("test-ports/pod-b", "test-ports/pod-a", "TCP", 6666, 4, True),
            ("test-ports/pod-b", "test-ports/pod-a", "UDP", 9, 4, True),
        ],
    ),
    "deny-all-with-specific-allow": (
        deny_all_with_specific_allow,
        "test-deny-all/s",
        [
            ("test-deny-all/a", "test-deny-all/s", "TCP", 80, 4, True),
            ("test-deny-all/a", "test-deny-all/s", "TCP", 8080, 4, False),
            ("test-deny-all/b", "test-deny-all/s", "TCP", 80, 4, False),
            ("test-deny-all/c", "test-deny-all/s", "TCP", 8080, 4, False),
        ],
    ),
    "mixed-selectors": (
        mixed_selectors,
        "test-mixed-selectors/s",
        [
            (f"{src}", "test-mixed-selectors/s", "TCP", 5555, 4, ok)
            for src, ok in (
                ("test-mixed-selectors/a", True),
                ("test-mixed-selectors/b", False),
                ("test-mixed-selectors-blue/c", True),
                ("test-mixed-selectors-blue/d", True),
                ("test-mixed-selectors-blue/e", True),
            )
        ]
        + [
            ("test-mixed-selectors/s", f"{dst}", "TCP", 5555, 4, ok)
            for dst, ok in (
                ("test-mixed-selectors/a", False),
                ("test-mixed-selectors/b", False),
                ("test-mixed-selectors-blue/c", True),
                ("test-mixed-selectors-blue/d", False),
                ("test-mixed-selectors-blue/e", False),
            )
        ],
    ),
    "stacked-multinet": (
        stacked_multinet,
        "ns/s",
        [
            ("ns/a", "ns/s", "TCP", 8080, 4, True),
            ("ns/a", "ns/s", "TCP", 8080, 6, True),
            ("ns/a", "ns/s", "TCP", 80, 4, False),
            ("ns/a", "ns/s", "SCTP", 2905, 6, True),
            ("ns/s", "ns/a", "TCP", 80, 4, True),
            ("ns/s", "ns/a", "TCP", 8080, 4, False),
            ("ns/b", "ns/s", "UDP", 53, 4, True),
            ("10.0.2.200", "ns/s", "UDP", 53, 4, False),
            ("ns/s", "ns/b", "TCP", 1, 4, True),  # blue is not egress-isolated
        ],
    ),
}


def _network(world: World, subject: str) -> str:
    return sorted({n.network for n in world.snapshot.info(world.pods[subject]).attachments})[0]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_truth_table(name: str) -> None:
    build, _, table = SCENARIOS[name]
    world = build()
    for src, dst, proto, port, family, expected in table:
        network = _network(world, dst if dst in world.pods else src)
        if name == "stacked-multinet":
            network = "ns/blue" if "ns/b" in (src, dst) or src.startswith("10.0.2") else "ns/red"
        assert world.allowed(src, dst, proto, port, family, network) is expected, (src, dst, proto, port, family)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_golden_nft(name: str) -> None:
    build, subject, _ = SCENARIOS[name]
    text = render(build().ruleset(subject))
    path = GOLDEN / f"{name}.nft"
    if os.environ.get("TRINET_REGEN_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()
