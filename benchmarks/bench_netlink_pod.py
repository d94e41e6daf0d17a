"""(a) A pod-sized ruleset, installed fresh: netlink_nft (open a socket in the pod netns, build the model, encode,
apply) against `ip netns exec NS nft -f` of the same ruleset, and an update on a kept socket. Targets: at most
0.125 of nft's time; an update at most 0.3 ms.

Run as root from the repository root:  .venv/bin/python -m benchmarks.bench_netlink_pod
"""

from __future__ import annotations

import contextlib

from benchmarks.bench_netlink_lib import NftFile, Row, median_ms, nft, paired_medians, print_table
from netlink_nft import (
    ACCEPT,
    DROP,
    ICMPV6_TYPE_FIELD,
    IFNAME,
    IIFNAME,
    INET_SERVICE,
    IP_DADDR,
    IP_SADDR,
    IPV4_ADDR,
    OIFNAME,
    TCP_DPORT,
    VERDICT,
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
    in_set,
    jump,
    replace_contents,
    rule,
    vmap,
)
from tests.support.netns import netns_path, throwaway_netns

REPS = 31
TABLE = "multi_networkpolicy"


def pod_ruleset() -> Ruleset:
    """What the daemon installs for a pod with one policed secondary interface, ingress and egress."""
    t = Table(Family.INET, TABLE)
    sets = (
        Set(
            t,
            "ingress_net1_peers",
            (IPV4_ADDR,),
            interval=True,
            elements=(
                SetElement.network("10.10.0.0/16"),
                SetElement.network("192.168.7.0/24"),
                SetElement("10.20.0.5"),
            ),
        ),
        Set(t, "ingress_net1_ports", (INET_SERVICE,), elements=(SetElement(80), SetElement(443))),
        Set(
            t,
            "egress_net1_peers",
            (IPV4_ADDR, INET_SERVICE),
            interval=True,
            elements=(SetElement(("10.30.0.0", 5432), ("10.30.255.255", 5432)), SetElement(("10.40.0.7", 80))),
        ),
        Set(t, "ingress_dispatch", (IFNAME,), data=VERDICT, elements=(SetElement("net1", data=jump("ingress_net1")),)),
        Set(t, "egress_dispatch", (IFNAME,), data=VERDICT, elements=(SetElement("net1", data=jump("egress_net1")),)),
    )
    chains = (
        Chain(t, "input", Hook.INPUT, 0, Policy.ACCEPT),
        Chain(t, "output", Hook.OUTPUT, 0, Policy.ACCEPT),
        Chain(t, "ingress_net1"),
        Chain(t, "egress_net1"),
    )
    established = ct_state(CtState.ESTABLISHED, CtState.RELATED)
    rules = (
        rule(t, "input", established, ACCEPT),
        rule(t, "input", in_set(ICMPV6_TYPE_FIELD, (133, 134, 135, 136)), ACCEPT),
        rule(t, "input", vmap(IIFNAME, "ingress_dispatch")),
        rule(t, "output", established, ACCEPT),
        rule(t, "output", vmap(OIFNAME, "egress_dispatch")),
        rule(
            t, "ingress_net1", in_set(IP_SADDR, "ingress_net1_peers"), in_set(TCP_DPORT, "ingress_net1_ports"), ACCEPT
        ),
        rule(t, "ingress_net1", DROP),
        rule(t, "egress_net1", in_set((IP_DADDR, TCP_DPORT), "egress_net1_peers"), ACCEPT),
        rule(t, "egress_net1", DROP),
    )
    return Ruleset(t, chains, sets, rules)


def install(netns: str, *, known_absent: bool = True) -> None:
    """Everything the daemon does for a new pod: socket into its netns, model, batch, one transaction.

    A new pod's namespace cannot hold our table yet (`current` = an empty table); with `known_absent=False` the
    transaction also flushes every chain and set it manages, as it must when the state is unknown.
    """
    desired = pod_ruleset()
    with NftSocket.open(netns_path(netns)) as sock:
        sock.apply(replace_contents(desired, Ruleset(desired.table) if known_absent else None))


def main() -> None:
    with throwaway_netns("bench-pod") as ours_ns, throwaway_netns("bench-pod") as nft_ns:
        install(ours_ns)
        listing = nft(ours_ns, "list", "ruleset")
        nft_file = NftFile(listing)
        nft_file.load(nft_ns)
        assert nft(nft_ns, "list", "ruleset") == listing, "nft -f must build the identical ruleset"
    rows = [
        measure(nft_file, True, "first install"),
        measure(nft_file, False, "install over unknown state"),
        measure_update(),
    ]
    print_table(
        "(a) pod-sized ruleset into a new namespace",
        rows,
        f"medians of {REPS}; target ratio <= 0.125, update on a kept socket <= 0.3 ms",
    )


def with_peer(ruleset: Ruleset, n: int) -> Ruleset:
    """The ruleset with one more ingress peer address (10.99.0.n)."""
    sets = tuple(
        s.with_elements((*s.elements, SetElement(f"10.99.0.{n}"))) if s.name == "ingress_net1_peers" else s
        for s in ruleset.sets
    )
    return Ruleset(ruleset.table, ruleset.chains, sets, ruleset.rules)


def measure_update() -> Row:
    """What the daemon does when a peer pod appears: build the batch from the installed and the desired ruleset
    (a one-element delta; chains refilled in place) and apply it on the socket it keeps for the pod."""
    base = pod_ruleset()
    states = [with_peer(base, 1), with_peer(base, 2)]
    with throwaway_netns("bench-pod") as ns, NftSocket.open(netns_path(ns)) as sock:
        sock.apply(replace_contents(states[0], Ruleset(base.table)))
        turn = iter(range(1, 10 * REPS))

        def update() -> None:
            i = next(turn)
            sock.apply(replace_contents(states[i % 2], states[(i - 1) % 2]))

        ours = median_ms(update, 2 * REPS)
        messages = len(replace_contents(states[1], states[0]))
    return Row(f"pod ruleset, one more peer on a kept socket ({messages} msgs): build+encode+apply", ours, None)


def measure(nft_file: NftFile, known_absent: bool, label: str) -> Row:
    desired = pod_ruleset()
    messages = len(replace_contents(desired, Ruleset(desired.table) if known_absent else None))
    with contextlib.ExitStack() as stack:  # fresh namespaces for every run, created before any timing
        spaces = [tuple(stack.enter_context(throwaway_netns("bench-pod")) for _ in "ab") for _ in range(REPS)]
        ours, theirs = paired_medians(
            lambda i: install(spaces[i][0], known_absent=known_absent), lambda i: nft_file.load(spaces[i][1]), REPS
        )
    return Row(f"pod ruleset, {label} ({messages} msgs): open+build+encode+apply", ours, theirs)


if __name__ == "__main__":
    main()
