"""``adopt(dump, desired)``: the daemon's reconciliation against what the kernel really holds (start-up, resync,
``OutcomeUnknown``), and ``transaction``'s removal, all without NFT_MSG_DESTROY* (kernels before 6.3 lack them).

Each case leaves the kernel equal to a fresh ``nft -f`` of the desired ruleset under the generation ``adopt``
chose; the drift repair is also checked under a UDP flood that every ruleset blocks (not one packet may pass).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import netlink_nft as nl
from tests.support.netns import netns_path, veth_pair
from tests.support.nft import listing, nft
from tests.support.traffic import flood_while
from tests.unit.policy.builders import World, nad, pod, policy
from tests.unit.policy.test_semantics import FROM_A, cluster, server
from trinet.policy import PodRuleset, render
from trinet.policy.to_netlink import Installed, adopt, to_netlink, transaction, versioned

TABLE = "multi_networkpolicy"
ONE = cluster(server({"ingress": [FROM_A]})).ruleset("ns/s")
TWO = cluster(server({"ingress": [FROM_A, {"ports": [{"port": 80}]}]})).ruleset("ns/s")


def _dump(sock: nl.NftSocket) -> nl.Ruleset | None:
    return nl.dump_table(sock, nl.Table(nl.Family.INET, TABLE))


def _kinds(batch: nl.Batch) -> set[str]:
    return {m.describe().split()[0] for m in batch.messages}


def _fresh_listing(scratch: str, ruleset: PodRuleset, generation: int) -> object:
    nft(scratch, "flush", "ruleset")
    nft(scratch, "-f", "-", stdin=render(versioned(ruleset, generation)))
    return listing(scratch)


def _install(sock: nl.NftSocket, ruleset: PodRuleset, generation: int = 1) -> None:
    """Load ``ruleset`` under ``generation`` into an empty namespace."""
    sock.apply(nl.replace_contents(to_netlink(versioned(ruleset, generation))))


@pytest.mark.parametrize("generation", [1, 2])
def test_adopting_an_identical_table_sends_nothing(netns: str, generation: int) -> None:
    with nl.NftSocket.open(netns_path(netns)) as sock:
        _install(sock, ONE, generation)
        assert adopt(_dump(sock), ONE) == (None, Installed(ONE, generation))


DRIFTS: dict[str, Callable[[str], object]] = {
    "rule deleted by hand": lambda ns: nft(ns, "delete", "rule", "inet", TABLE, "ingress-net1", "handle", _handle(ns)),
    "set flushed": lambda ns: nft(ns, "flush", "set", "inet", TABLE, "ingress-net1-0.g1"),
    "table flushed": lambda ns: nft(ns, "flush", "table", "inet", TABLE),
    "chain added": lambda ns: nft(ns, "add", "chain", "inet", TABLE, "stray"),
    "dispatch entry deleted": lambda ns: nft(ns, "delete", "element", "inet", TABLE, "ingress-dispatch", '{ "net1" }'),
}


def _handle(netns: str) -> str:
    """The handle of the first allow rule (the one with a comment) of ingress-net1."""
    for line in nft(netns, "-a", "list", "chain", "inet", TABLE, "ingress-net1").splitlines():
        if "comment" in line:
            return line.rsplit("handle", 1)[1].strip()
    raise AssertionError("no allow rule to delete")


@pytest.mark.parametrize("drift", sorted(DRIFTS))
def test_adopting_a_drifted_table_repairs_it_in_one_batch(netns_pair: tuple[str, str], drift: str) -> None:
    scratch, netns = netns_pair
    with nl.NftSocket.open(netns_path(netns)) as sock:
        _install(sock, ONE)
        DRIFTS[drift](netns)
        dumped = _dump(sock)
        assert dumped != to_netlink(versioned(ONE, 1))
        batch, installed = adopt(dumped, ONE)
        assert batch is not None and installed == Installed(ONE, 2)
        assert not {"DELTABLE", "DESTROYTABLE"} & _kinds(batch)
        sock.apply(batch)
        assert adopt(_dump(sock), ONE) == (None, installed)
    assert listing(netns) == _fresh_listing(scratch, ONE, 2)


def test_adopting_a_table_of_another_generation_or_ruleset(netns_pair: tuple[str, str]) -> None:
    """A table holding an older ruleset under generation 2: the new one moves to generation 1, old sets go."""
    scratch, netns = netns_pair
    with nl.NftSocket.open(netns_path(netns)) as sock:
        _install(sock, TWO, 2)
        batch, installed = adopt(_dump(sock), ONE)
        assert batch is not None and installed == Installed(ONE, 1)
        sock.apply(batch)
        assert adopt(_dump(sock), ONE) == (None, installed)
    assert listing(netns) == _fresh_listing(scratch, ONE, 1)


def test_adopting_when_there_is_no_table_creates_it(netns_pair: tuple[str, str]) -> None:
    scratch, netns = netns_pair
    batch, installed = adopt(None, ONE)
    assert batch is not None and installed == Installed(ONE, 1)
    with nl.NftSocket.open(netns_path(netns)) as sock:
        sock.apply(batch)
    assert listing(netns) == _fresh_listing(scratch, ONE, 1)


def test_adopting_a_leftover_set_of_another_type_replaces_it(netns_pair: tuple[str, str]) -> None:
    """After a restart a set of the same name but another type must not make the update fail (the old rules
    would stay in place)."""
    scratch, netns = netns_pair
    by_block = cluster(server({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}]}]})).ruleset("ns/s")
    with nl.NftSocket.open(netns_path(netns)) as sock:
        _install(sock, by_block)
        batch, installed = adopt(_dump(sock), ONE)
        assert batch is not None and installed == Installed(ONE, 2)
        sock.apply(batch)
    assert listing(netns) == _fresh_listing(scratch, ONE, 2)


def test_removal_works_whether_the_table_exists_or_not(netns: str) -> None:
    gone = cluster().ruleset("ns/s")
    assert not gone.enforces
    with nl.NftSocket.open(netns_path(netns)) as sock:
        batch, installed = transaction(None, gone)
        assert batch is not None and installed is None
        assert _kinds(batch) == {"NEWTABLE", "DELTABLE"}
        sock.apply(batch)  # absent: fine
        _install(sock, ONE)
        assert adopt(None, gone) == (None, None)
        batch, installed = adopt(_dump(sock), gone)
        assert batch is not None and installed is None and _kinds(batch) == {"NEWTABLE", "DELTABLE"}
        sock.apply(batch)
        assert _dump(sock) is None
        batch, _ = transaction(Installed(ONE, 1), gone)
        assert batch is not None
        sock.apply(batch)  # already gone: still fine
    assert listing(netns) == []


def test_no_destroy_message_in_any_transaction() -> None:
    for applied in (None, Installed(ONE, 1), Installed(TWO, 2)):
        for desired in (ONE, TWO, cluster().ruleset("ns/s")):
            batch, _ = transaction(applied, desired)
            assert batch is None or not any(k.startswith("DESTROY") for k in _kinds(batch))


PORT = 9999
PODS = [
    pod("ns/s", {"app": "s"}, [("ns/net1", "net1", ["10.1.0.1"])]),
    pod("ns/a", {"app": "a"}, [("ns/net1", "net1", ["10.1.0.2"])]),
    pod("ns/b", {"app": "b"}, [("ns/net1", "net1", ["10.1.0.3"])]),
]


def test_repairing_drift_under_a_flood_never_lets_a_blocked_packet_through(netns_pair: tuple[str, str]) -> None:
    """A still-isolating drift (the allow set flushed by hand) is repaired again and again while ``a`` floods a
    port no policy opens; every repair is a full batch from the dumped state, and no packet may arrive."""
    spec = {
        "podSelector": {"matchLabels": {"app": "s"}},
        "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"app": "b"}}}], "ports": [{"protocol": "UDP", "port": PORT}]},
            {"from": [{"podSelector": {"matchLabels": {"app": "a"}}}], "ports": [{"protocol": "UDP", "port": 443}]},
        ],
    }
    world = World(PODS, [policy("ns/p", spec)], nads=[nad("ns/net1")])
    assert not world.allowed("ns/a", "ns/s", "UDP", PORT)
    desired = world.ruleset("ns/s")
    subject, client = netns_pair
    with (
        veth_pair(subject, client, ("10.1.0.1/24",), ("10.1.0.2/24",), name_a="net1", name_b="net1"),
        nl.NftSocket.open(netns_path(subject)) as sock,
    ):
        batch, installed = transaction(None, desired)
        assert batch is not None and installed is not None
        sock.apply(batch)
        generations = []

        def drift_and_repair(i: int) -> None:
            nonlocal installed
            assert installed is not None
            sets = [s.name for s in to_netlink(versioned(desired, installed.generation)).sets]
            drifted = _dump(sock)
            assert drifted is not None
            for name in sets:
                if name.startswith("ingress-net1-"):
                    target = next(s for s in drifted.sets if s.name == name)
                    if target.elements:
                        flush = nl.Batch()
                        flush.flush_set(target)
                        sock.apply(flush)
            batch, installed = adopt(_dump(sock), desired)
            assert batch is not None and installed is not None
            generations.append(installed.generation)
            sock.apply(batch)

        sent, repairs, leaked = flood_while(client, subject, "10.1.0.1", PORT, 3.0, drift_and_repair)
    assert sent > 10_000 and repairs > 50, (sent, repairs)
    assert set(generations) == {1, 2}
    assert leaked == 0, f"{leaked} of {sent} packets leaked during {repairs} repairs"
