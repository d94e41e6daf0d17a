"""Peer churn through the daemon's own path: one peer added (in the middle of the set) to a pod whose peer set holds
10 / 1,000 / 10,000 / 100,000 addresses, as ``to_netlink.transaction(installed, desired)`` builds it, encoded and
applied in a netns (a kept socket, as the daemon keeps one per pod). Goal: the same cost whatever the set size.

Columns (medians): ``model`` builds the desired ruleset with the one new address (``Elements.spliced``, as a
patched snapshot does: the chunk it lands in is rebuilt, the other chunks shared); ``transaction`` is
``transaction(installed, desired)`` (delta + batch); ``fresh`` the same when every element of ``desired`` is a new
object, chunked afresh (as after a recompile from a rebuilt snapshot: nothing is shared, so the elements are
compared by value, in C: O(n)); ``encode`` the batch to bytes; ``apply`` the kernel transaction (encode + sendmsg
+ acknowledgements). ``x10`` is ``transaction + apply`` against the 10-address row of the same run. ``fresh`` is
timed in a pass of its own: its value comparisons sweep megabytes, and timed in between they made the next
``encode`` and ``apply`` look as if they grew with the set (cold caches and fresh pages, not the garbage collector
and not the kernel: both stay flat without it).

Then the process's RSS while the 10,000-address pod goes through 100,000 such changes, each adding an address never
seen before (and removing the previous one, so the kernel's set keeps its size): flat RSS means no memo grows with
history. ``memo`` counts the entries of to_netlink's memos. The second such run goes through the daemon's path: a
server pod with 10,000 peer pods, each change a new peer pod patched into the latest snapshot (and the previous
newcomer deleted), the server compiled from it: flat RSS there means that nothing the snapshots share (the
parsed-pod memo, the peer addresses) grows with history either.

Then the daemon's whole path for the same change, with real pods (``recompile``): one peer pod more, patched into
the previous snapshot as the daemon's ``SnapshotCache`` does (``Snapshot.with_pods``: the selected pods' addresses
are patched, the unchanged elements stay the same objects), ``compile`` of the server pod, ``transaction`` from
what is installed and ``apply``; ``total`` is the median of their sums. ``rebuilt`` is the same path with the
snapshot rebuilt from every pod (``Snapshot(..., previous=)``, what the daemon did before, and still does after a
change of anything but pods): compile then reads every peer pod again.

Run as root from the repository root:  .venv/bin/python -m benchmarks.bench_peer_churn [--changes N] [--recompile-max N]
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import statistics
import time
from collections.abc import Callable

import msgspec

from netlink_nft import NftSocket
from tests.support.netns import netns_path, throwaway_netns
from tests.unit.policy.builders import World, nad, namespace, pod, policy
from trinet.objects import MultiNetworkPolicy, Namespace, Pod
from trinet.objects import NetworkAttachmentDefinition as NAD
from trinet.policy import PodRuleset, Snapshot, compile
from trinet.policy.elements import Elements
from trinet.policy.to_netlink import Installed, mapping, transaction

SIZES = (10, 1_000, 10_000, 100_000)
REPS = 41
BASE = 10 << 24 | 2 << 16  # 10.2.0.0: the synthetic peers, one address each, at even offsets
NEW = 10 << 24 | 200 << 16  # 10.200.0.0 upwards: the peers that arrive in the RSS run


def peer_ruleset(size: int) -> PodRuleset:
    """Pod ns/s isolated on net1, admitting ingress from app=a, whose IPv4 peer set holds ``size`` addresses."""
    world = World(
        [pod("ns/s", {"app": "s"}, [("ns/net1", "net1", ["10.1.0.1"])]), pod("ns/a", {"app": "a"}, [])],
        [policy("ns/p", {"podSelector": {"matchLabels": {"app": "s"}}, "ingress": [{"from": [{"podSelector": {
            "matchLabels": {"app": "a"}}}]}]})],
        nads=[nad("ns/net1")],
    )  # fmt: skip
    ruleset = world.ruleset("ns/s")
    (peers,) = [s for s in ruleset.table.sets if s.key == ("ipv4_addr",) and not s.interval]
    return _with_elements(ruleset, peers.name, Elements.of(((a, a),) for a in range(BASE, BASE + 2 * size, 2)))


def arrival(size: int, i: int) -> int:
    """The address of the ``i``-th peer to arrive at a set of ``size``: odd, so it lands between two present peers,
    in the middle of the set (real addresses land anywhere; an append would be the cheapest case of the diff)."""
    return BASE + (size | 1) + 2 * i


def _with_elements(ruleset: PodRuleset, name: str, elements: Elements[tuple[tuple[int, int], ...]]) -> PodRuleset:
    sets = tuple(msgspec.structs.replace(s, elements=elements) if s.name == name else s for s in ruleset.table.sets)
    return PodRuleset(msgspec.structs.replace(ruleset.table, sets=sets))


def _peer_set(ruleset: PodRuleset) -> tuple[str, Elements[tuple[tuple[int, int], ...]]]:
    (peers,) = [s for s in ruleset.table.sets if s.key == ("ipv4_addr",) and not s.interval]
    assert isinstance(peers.elements, Elements)
    return peers.name, peers.elements


def added(ruleset: PodRuleset, address: int, removed: int | None = None) -> PodRuleset:
    """``ruleset`` with ``address`` added to (and ``removed`` taken out of) its peer set, as a patched snapshot
    makes it (``Elements.spliced``: the unchanged chunks shared)."""
    name, elements = _peer_set(ruleset)
    gone = [((removed, removed),)] if removed is not None else []
    return _with_elements(ruleset, name, elements.spliced(gone, [((address, address),)]))


def recompiled(ruleset: PodRuleset) -> PodRuleset:
    """The same ruleset with its peer set made again from scratch, every element a new object: what a full
    recompile from a rebuilt snapshot gives (nothing shared with what is installed)."""
    name, elements = _peer_set(ruleset)
    return _with_elements(ruleset, name, Elements.of(((int(str(lo)), int(str(hi))),) for ((lo, hi),) in elements))


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def measure(size: int) -> dict[str, float]:
    base = peer_ruleset(size)
    samples: dict[str, list[float]] = {k: [] for k in ("model", "transaction", "fresh", "encode", "apply")}
    with throwaway_netns("bench-churn") as ns, NftSocket.open(netns_path(ns)) as sock:
        batch, installed = transaction(None, base)
        assert batch is not None and installed is not None
        sock.apply(batch)
        for i in range(REPS):
            start = time.perf_counter()
            desired = added(installed.ruleset, arrival(size, i))
            samples["model"].append(_ms(start))
            start = time.perf_counter()
            batch, after = transaction(installed, desired)
            samples["transaction"].append(_ms(start))
            assert batch is not None and len(batch) == 1, "one peer added must be one element message"
            start = time.perf_counter()
            batch.encode()
            samples["encode"].append(_ms(start))
            start = time.perf_counter()
            sock.apply(batch)
            samples["apply"].append(_ms(start))
            back, installed = transaction(after, base)  # and out again, untimed: every round adds to `size`
            assert back is not None and installed == Installed(base, 1)
            sock.apply(back)
    for i in range(REPS):
        fresh = recompiled(added(installed.ruleset, arrival(size, i)))
        start = time.perf_counter()
        transaction(installed, fresh)
        samples["fresh"].append(_ms(start))
    return {k: statistics.median(v) for k, v in samples.items()}


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def memo_entries() -> int:
    return mapping.memo_entries()


def churn(title: str, changes: int, first: PodRuleset, following: Callable[[int], PodRuleset]) -> None:
    """Install ``first``, then ``following(i)`` for each change ``i``, printing RSS and memo sizes as it goes."""
    print(f"\nRSS while {title} goes through {changes:,} changes (a new peer each, the last one leaves)")
    print(f"| {'changes':>9} | {'RSS MiB':>8} | {'memo':>5} | {'us/change':>9} |")
    print(f"|{'-' * 11}|{'-' * 10}|{'-' * 7}|{'-' * 11}|")
    with throwaway_netns("bench-churn") as ns, NftSocket.open(netns_path(ns)) as sock:
        batch, installed = transaction(None, first)
        assert batch is not None and installed is not None
        sock.apply(batch)
        start = time.perf_counter()
        step = max(1, changes // 5)
        for i in range(changes + 1):
            if i % step == 0:
                gc.collect()
                per_change = _ms(start) * 1000 / step if i else 0.0
                print(f"| {i:>9,} | {rss_kib() / 1024:>8.1f} | {memo_entries():>5} | {per_change:>9.0f} |")
                start = time.perf_counter()
            if i == changes:
                break
            batch, installed = transaction(installed, following(i))
            assert batch is not None and installed is not None
            sock.apply(batch)


def churn_transaction(size: int, changes: int) -> None:
    """The ruleset edited directly, as in the first table."""
    current = base = peer_ruleset(size)

    def following(i: int) -> PodRuleset:
        nonlocal current
        current = added(current, NEW + i, NEW + i - 1 if i else None)
        return current

    churn(f"a {size:,}-address pod (to_netlink.transaction)", changes, base, following)


def churn_daemon(size: int, changes: int) -> None:
    """The daemon's path: each change patched into the latest snapshot, the server pod compiled from it."""
    server, pods, namespaces, policies, nads = server_world(size)
    snapshot = Snapshot(pods, namespaces, policies, nads)

    def following(i: int) -> PodRuleset:
        nonlocal snapshot
        newcomer = pod(f"ns/new{i}", {"app": "a"}, [("ns/net1", "net1", [_address(NEW + i)])])
        changed: dict[str, Pod | None] = {f"ns/new{i}": newcomer} | ({f"ns/new{i - 1}": None} if i else {})
        snapshot = snapshot.with_pods(changed)
        return compile(snapshot, server)

    churn(
        f"a pod with {size:,} peer pods (Snapshot.with_pods + compile)", changes, compile(snapshot, server), following
    )


def _address(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def server_world(size: int) -> tuple[Pod, list[Pod], list[Namespace], list[MultiNetworkPolicy], list[NAD]]:
    """A server pod ns/s admitting ingress from app=a, and ``size`` such peer pods, one address each."""
    server = pod("ns/s", {"app": "s"}, [("ns/net1", "net1", ["10.1.0.1"])])
    peers = [pod(f"ns/a{i}", {"app": "a"}, [("ns/net1", "net1", [_address(BASE + 2 * i)])]) for i in range(size)]
    policies = [policy("ns/p", {"podSelector": {"matchLabels": {"app": "s"}}, "ingress": [{"from": [{"podSelector": {
        "matchLabels": {"app": "a"}}}]}]})]  # fmt: skip
    return server, [server, *peers], [namespace("ns")], policies, [nad("ns/net1")]


def recompile(size: int, reps: int) -> dict[str, float]:
    """Medians of the daemon's path for one peer pod more, around a server pod whose peers are ``size`` pods."""
    server, pods, namespaces, policies, nads = server_world(size)
    snapshot = Snapshot(pods, namespaces, policies, nads)
    samples: dict[str, list[float]] = {k: [] for k in ("snapshot", "compile", "transaction", "apply", "total", "full")}
    with throwaway_netns("bench-churn") as ns, NftSocket.open(netns_path(ns)) as sock:
        batch, installed = transaction(None, compile(snapshot, server))
        assert batch is not None and installed is not None
        sock.apply(batch)
        for how in ("patched", "full"):  # in passes of their own: a rebuild sweeps megabytes, evicting caches
            for i in range(reps):
                newcomer = pod(f"ns/new{i}", {"app": "a"}, [("ns/net1", "net1", [_address(arrival(size, i))])])
                start = time.perf_counter()
                if how == "full":
                    later = Snapshot([*pods, newcomer], namespaces, policies, nads, previous=snapshot)
                else:
                    later = snapshot.with_pods({f"ns/new{i}": newcomer})
                took = {"snapshot": _ms(start)}
                start = time.perf_counter()
                desired = compile(later, server)
                took["compile"] = _ms(start)
                start = time.perf_counter()
                batch, after = transaction(installed, desired)
                took["transaction"] = _ms(start)
                assert batch is not None and after is not None and len(batch) == 1
                start = time.perf_counter()
                sock.apply(batch)
                took["apply"] = _ms(start)
                back, _ = transaction(after, installed.ruleset)  # and out again, untimed
                assert back is not None
                sock.apply(back)
                if how == "full":
                    samples["full"].append(sum(took.values()))
                else:
                    took["total"] = sum(took.values())
                    for key, value in took.items():
                        samples[key].append(value)
    return {k: statistics.median(v) for k, v in samples.items()}


def recompile_table(sizes: tuple[int, ...]) -> None:
    print("\nThe daemon's path, one peer pod more: Snapshot.with_pods + compile + transaction + apply (medians, ms)")
    print(
        f"| {'peers':>7} | {'snapshot':>8} | {'compile':>8} | {'transaction':>11} | {'apply':>7} | {'total':>8} | "
        f"{'x10':>6} | {'rebuilt':>8} |"
    )
    print(f"|{'-' * 9}|{'-' * 10}|{'-' * 10}|{'-' * 13}|{'-' * 9}|{'-' * 10}|{'-' * 8}|{'-' * 10}|")
    first: float | None = None
    for size in sizes:
        m = recompile(size, REPS if size <= 10_000 else 11)
        total = m["total"]
        first = first or total
        print(
            f"| {size:>7,} | {m['snapshot']:>8.3f} | {m['compile']:>8.3f} | {m['transaction']:>11.3f} | "
            f"{m['apply']:>7.3f} | {total:>8.3f} | {total / first:>6.1f} | {m['full']:>8.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=100_000, help="changes in the RSS run (default 100,000)")
    parser.add_argument(
        "--recompile-max", type=int, default=100_000, help="largest peer count of the daemon-path table (0: skip)"
    )
    args = parser.parse_args()
    print(f"One peer added through to_netlink.transaction, build + encode + apply (medians of {REPS})")
    print(
        f"| {'peers':>7} | {'model ms':>8} | {'transaction ms':>14} | {'fresh ms':>8} | {'encode ms':>9} | "
        f"{'apply ms':>8} | {'total ms':>8} | {'x10':>5} |"
    )
    print(f"|{'-' * 9}|{'-' * 10}|{'-' * 16}|{'-' * 10}|{'-' * 11}|{'-' * 10}|{'-' * 10}|{'-' * 7}|")
    first: float | None = None
    for size in SIZES:
        m = measure(size)
        total = m["transaction"] + m["apply"]
        first = first or total
        print(
            f"| {size:>7,} | {m['model']:>8.3f} | {m['transaction']:>14.3f} | {m['fresh']:>8.3f} | "
            f"{m['encode']:>9.3f} | {m['apply']:>8.3f} | {total:>8.3f} | {total / first:>5.2f} |"
        )
    churn_transaction(10_000, args.changes)
    churn_daemon(10_000, args.changes)
    recompile_table(tuple(size for size in SIZES if size <= args.recompile_max))


if __name__ == "__main__":
    main()
