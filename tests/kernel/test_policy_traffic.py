"""Compiled rulesets applied through netlink_nft in throwaway namespaces, with real traffic.

Three pods (namespaces) on one secondary network: a bridge in a hub namespace, one veth per pod named ``net1``.
The server pod gets ``to_netlink(compile(...))`` in one transaction; every probe must agree with the expectation
and with ``World.allowed`` (the compiled ruleset interpreted, cross-checked against the oracle).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from netlink_nft import NftSocket, replace_contents
from tests.conftest import require_root_and_nftables
from tests.support.netns import ip, netns_path, throwaway_netns, veth_pair
from tests.support.traffic import icmp_echo_answered, sctp_delivered, tcp_connects, udp_delivered
from tests.unit.policy.builders import World, nad, pod, policy
from trinet.policy.to_netlink import to_netlink

ADDRS = {"s": ("10.1.0.1", "fd00:1::1"), "a": ("10.1.0.2", "fd00:1::2"), "b": ("10.1.0.3", "fd00:1::3")}


def world() -> World:
    pods = [
        pod("ns/s", {"app": "s"}, [("ns/net1", "net1", ADDRS["s"])], ports=[("http", "TCP", 8080)]),
        pod("ns/a", {"app": "a"}, [("ns/net1", "net1", ADDRS["a"])], ports=[("http", "TCP", 9090)]),
        pod("ns/b", {"app": "b"}, [("ns/net1", "net1", ADDRS["b"])]),
    ]
    from_a = {"from": [{"podSelector": {"matchLabels": {"app": "a"}}}]}
    sctp = {"protocol": "SCTP", "port": 2905}
    spec = {
        "podSelector": {"matchLabels": {"app": "s"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                **from_a,
                "ports": [{"port": "http"}, {"protocol": "UDP", "port": 53}, sctp],
            },
            {"from": [{"ipBlock": {"cidr": "10.1.0.0/24", "except": ["10.1.0.2/32"]}}], "ports": [{"port": 7000}]},
        ],
        "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "a"}}}], "ports": [{"port": "http"}]}],
    }
    return World(pods, [policy("ns/p", spec)], [], [nad("ns/net1")])


@pytest.fixture(scope="module")
def pods() -> Iterator[dict[str, str]]:
    """Namespaces of s, a and b wired to one bridge; s enforces its compiled ruleset. Maps pod name -> netns."""
    require_root_and_nftables()
    with contextlib.ExitStack() as stack:
        hub = stack.enter_context(throwaway_netns("trinet-test-hub"))
        ip("link", "add", "br0", "type", "bridge", netns=hub)
        ip("link", "set", "br0", "up", netns=hub)
        names = {}
        for index, (name, (v4, v6)) in enumerate(ADDRS.items()):
            netns = stack.enter_context(throwaway_netns(f"trinet-test-{name}"))
            stack.enter_context(
                veth_pair(hub, netns, (), (f"{v4}/24", f"{v6}/64"), name_a=f"port{index}", name_b="net1")
            )
            ip("link", "set", f"port{index}", "master", "br0", netns=hub)
            names[name] = netns
        with NftSocket.open(netns_path(names["s"])) as sock:
            sock.apply(replace_contents(to_netlink(world().ruleset("ns/s"))))
        yield names


W = world()


def check(expected: bool, observed: bool, src: str, dst: str, proto: str, port: int | None, family: int) -> None:
    model = W.allowed(f"ns/{src}", f"ns/{dst}", proto, port, family, "ns/net1")
    assert (observed, model) == (expected, expected), f"{src}->{dst} {proto}/{port} v{family}"


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize(
    ("src", "dst", "port", "expected"),
    [
        ("a", "s", 8080, True),  # ingress named port "http" resolved on s
        ("b", "s", 8080, False),
        ("a", "s", 80, False),
        ("b", "s", 7000, True),  # ipBlock 10.1.0.0/24 (v4 only)
        ("a", "s", 7000, False),  # except 10.1.0.2/32
        ("s", "a", 9090, True),  # egress named port "http" resolved on a
        ("s", "a", 8080, False),
        ("s", "b", 9090, False),
        ("a", "b", 1234, True),  # unpoliced pods
    ],
)
def test_tcp(pods: dict[str, str], src: str, dst: str, port: int, expected: bool, family: int) -> None:
    if port == 7000 and family == 6:
        expected = False  # an IPv4 ipBlock allows no IPv6 (§2.4.27)
    server = ADDRS[dst][0 if family == 4 else 1]
    observed = tcp_connects(pods[src], pods[dst], server, port)
    check(expected, observed, src, dst, "TCP", port, family)


@pytest.mark.parametrize(("src", "port", "expected"), [("a", 53, True), ("b", 53, False), ("a", 54, False)])
def test_udp(pods: dict[str, str], src: str, port: int, expected: bool) -> None:
    observed = udp_delivered(pods[src], pods["s"], ADDRS["s"][0], port) > 0
    check(expected, observed, src, "s", "UDP", port, 4)


@pytest.mark.parametrize(("src", "port", "expected"), [("a", 2905, True), ("b", 2905, False), ("a", 8080, False)])
def test_sctp(pods: dict[str, str], src: str, port: int, expected: bool) -> None:
    """SCTP is never TCP: the TCP-only named port 8080 does not open SCTP 8080 (§2.5.32)."""
    observed = sctp_delivered(pods[src], pods["s"], ADDRS["s"][1], port) > 0
    check(expected, observed, src, "s", "SCTP", port, 6)


def test_icmp_echo_is_blocked_but_neighbour_discovery_works(pods: dict[str, str]) -> None:
    """No rule allows ICMP, so echo is dropped both ways; IPv6 TCP above only works because NDP is allowed."""
    assert not icmp_echo_answered(pods["a"], ADDRS["s"][0])
    assert not icmp_echo_answered(pods["a"], ADDRS["s"][1])
    assert icmp_echo_answered(pods["a"], ADDRS["b"][1])
    check(False, False, "a", "s", "ICMP", None, 4)
