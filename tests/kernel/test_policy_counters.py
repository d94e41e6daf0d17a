"""Drop counters: every isolating chain counts what its final ``drop`` discards, readable from a dump with
``drop_counters`` per (interface, direction), and counting does not make ``adopt`` see drift."""

from __future__ import annotations

import subprocess

from netlink_nft import Family, NftSocket, Table, dump_table
from tests.support.netns import netns_path, veth_pair
from tests.support.traffic import udp_delivered
from tests.unit.policy.builders import World, nad, pod, policy
from trinet.policy.to_netlink import Installed, adopt, drop_counters, transaction

PODS = [
    pod("ns/s", {"app": "s"}, [("ns/net1", "net1", ["10.1.0.1"])]),
    pod("ns/a", {"app": "a"}, [("ns/net1", "net1", ["10.1.0.2"])]),
]
SPEC = {"podSelector": {"matchLabels": {"app": "s"}}, "policyTypes": ["Ingress", "Egress"]}


def test_dropped_packets_are_counted_per_interface_and_direction(netns_pair: tuple[str, str]) -> None:
    world = World(PODS, [policy("ns/deny", SPEC)], nads=[nad("ns/net1")])
    desired = world.ruleset("ns/s")
    subject, client = netns_pair
    table = Table(Family.INET, desired.table.name)
    with (
        veth_pair(subject, client, ("10.1.0.1/24",), ("10.1.0.2/24",), name_a="net1", name_b="net1"),
        NftSocket.open(netns_path(subject)) as sock,
    ):
        for ns in (subject, client):  # no IPv6 on the link: no MLD or ND packet adds to the counts
            subprocess.run(
                ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.net1.disable_ipv6=1"], check=True
            )
        batch, installed = transaction(None, desired)
        assert batch is not None
        sock.apply(batch)
        dumped = dump_table(sock, table)
        assert dumped is not None
        assert drop_counters(dumped) == {("net1", "ingress"): 0, ("net1", "egress"): 0}
        assert udp_delivered(client, subject, "10.1.0.1", 9999, count=5) == 0
        dumped = dump_table(sock, table)
        assert dumped is not None
        assert drop_counters(dumped) == {("net1", "ingress"): 5, ("net1", "egress"): 0}  # ARP is not IP
        assert adopt(dumped, desired) == (None, installed)
        assert installed == Installed(desired, 1)
