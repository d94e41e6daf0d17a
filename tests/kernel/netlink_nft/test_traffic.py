"""Real packets: rules built with netlink_nft accept and drop chosen TCP, UDP, SCTP and ICMP flows.

Two namespaces joined by a veth pair; the server namespace gets an `inet` table whose input chain drops by
default and accepts only what the rules allow. Each flow is proven by packets arriving (or not).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netlink_nft import (
    ACCEPT,
    DROP,
    ICMPV6_TYPE_FIELD,
    INET_SERVICE,
    IP_SADDR,
    IPV4_ADDR,
    TCP_DPORT,
    Chain,
    CtState,
    Family,
    Hook,
    NftSocket,
    Policy,
    Ruleset,
    Set,
    SetElement,
    Table,
    ct_state,
    dport,
    icmp_type,
    iifname,
    in_set,
    replace_contents,
    rule,
    saddr,
)
from tests.support.netns import netns_path, veth_pair
from tests.support.traffic import icmp_echo_answered, sctp_delivered, tcp_connects, udp_delivered

CLIENT4, SERVER4 = "10.77.0.1", "10.77.0.2"
CLIENT6, SERVER6 = "fd77::1", "fd77::2"
ND_TYPES = (133, 134, 135, 136)


def server_ruleset() -> Ruleset:
    t = Table(Family.INET, "filter")
    clients = Set(t, "clients", (IPV4_ADDR,), interval=True, elements=(SetElement.network("10.77.0.0/30"),))
    web = Set(t, "web", (INET_SERVICE,), elements=(SetElement(8080),))
    return Ruleset(
        t,
        (Chain(t, "input", Hook.INPUT, 0, Policy.DROP),),
        (clients, web),
        (
            rule(t, "input", ct_state(CtState.ESTABLISHED, CtState.RELATED), ACCEPT),
            rule(t, "input", iifname("lo"), ACCEPT),
            rule(t, "input", in_set(ICMPV6_TYPE_FIELD, ND_TYPES), ACCEPT),
            rule(t, "input", dport("tcp", 80), ACCEPT),
            rule(t, "input", in_set(IP_SADDR, "clients"), in_set(TCP_DPORT, "web"), ACCEPT),
            rule(t, "input", saddr(CLIENT6), dport("tcp", 8080), DROP),
            rule(t, "input", dport("udp", 53), ACCEPT),
            rule(t, "input", dport("sctp", 80), ACCEPT),
            rule(t, "input", icmp_type(8), ACCEPT),
        ),
    )


@pytest.fixture
def wired(netns_pair: tuple[str, str]) -> Iterator[tuple[str, str]]:
    client, server = netns_pair
    with veth_pair(client, server, (f"{CLIENT4}/24", f"{CLIENT6}/64"), (f"{SERVER4}/24", f"{SERVER6}/64")):
        with NftSocket.open(netns_path(server)) as nft:
            nft.apply(replace_contents(server_ruleset()))
        yield client, server


def test_tcp(wired: tuple[str, str]) -> None:
    client, server = wired
    assert tcp_connects(client, server, SERVER4, 80)
    assert tcp_connects(client, server, SERVER6, 80)
    assert tcp_connects(client, server, SERVER4, 8080)  # source in @clients, port in @web
    assert not tcp_connects(client, server, SERVER6, 8080)  # IPv6 source: dropped
    assert not tcp_connects(client, server, SERVER4, 81)


def test_udp(wired: tuple[str, str]) -> None:
    client, server = wired
    assert udp_delivered(client, server, SERVER4, 53) == 3
    assert udp_delivered(client, server, SERVER6, 53) == 3
    assert udp_delivered(client, server, SERVER4, 54) == 0


def test_sctp(wired: tuple[str, str]) -> None:
    client, server = wired
    assert sctp_delivered(client, server, SERVER4, 80) == 3
    assert sctp_delivered(client, server, SERVER4, 81) == 0


def test_icmp(wired: tuple[str, str]) -> None:
    client, _ = wired
    assert icmp_echo_answered(client, SERVER4)
    assert not icmp_echo_answered(client, SERVER6)  # echo requests are not allowed for IPv6, only ND


def test_probes_see_everything_without_rules(netns_pair: tuple[str, str]) -> None:
    """The probes themselves work: with no ruleset every flow gets through."""
    client, server = netns_pair
    with veth_pair(client, server, (f"{CLIENT4}/24", f"{CLIENT6}/64"), (f"{SERVER4}/24", f"{SERVER6}/64")):
        assert tcp_connects(client, server, SERVER4, 81)
        assert udp_delivered(client, server, SERVER6, 54) == 3
        assert sctp_delivered(client, server, SERVER4, 81) == 3
        assert icmp_echo_answered(client, SERVER6)
