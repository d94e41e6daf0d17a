"""(b) 1,000 rules and a 10,000-range interval set, installed fresh in one transaction: netlink_nft (build the
model, encode, open a socket, apply) against `nft -f` of the same ruleset. Target: at most 0.8 of nft's time.

The set's ranges are given as numbers, as a policy compiler produces them after CIDR arithmetic (`cidr - except`);
the rules' prefixes are given as text.

Run as root from the repository root:  .venv/bin/python -m benchmarks.bench_netlink_large
"""

from __future__ import annotations

import contextlib

from benchmarks.bench_netlink_lib import NftFile, Row, median_ms, nft, paired_medians, print_table
from netlink_nft import (
    ACCEPT,
    DROP,
    IP_SADDR,
    IPV4_ADDR,
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
    in_set,
    replace_contents,
    rule,
    saddr,
)
from tests.support.netns import netns_path, throwaway_netns

REPS = 7
RULES = 1_000
RANGES = 10_000
BASE = 11 << 24


def big_ruleset() -> Ruleset:
    t = Table(Family.IP, "bench")
    blocked = Set(
        t,
        "blk",
        (IPV4_ADDR,),
        interval=True,
        elements=tuple(SetElement(BASE + 256 * i, BASE + 256 * i + 99) for i in range(RANGES)),  # 11.x.y.0-99
    )
    rules = [
        rule(t, "input", ct_state(CtState.ESTABLISHED, CtState.RELATED), ACCEPT),
        rule(t, "input", in_set(IP_SADDR, "blk"), DROP),
        *(
            rule(t, "input", saddr(f"10.{i // 256}.{i % 256}.0/24"), dport("tcp", 1000 + i), ACCEPT)
            for i in range(RULES - 2)
        ),
    ]
    chains = (
        Chain(t, "input", Hook.INPUT, 0, Policy.DROP),
        Chain(t, "output", Hook.OUTPUT, 0, Policy.ACCEPT),
        Chain(t, "forward", Hook.FORWARD, 0, Policy.DROP),
    )
    return Ruleset(t, chains, (blocked,), tuple(rules))


def install(netns: str) -> None:
    with NftSocket.open(netns_path(netns)) as sock:
        sock.apply(replace_contents(big_ruleset()))


def main() -> None:
    with throwaway_netns("bench-big") as ours_ns, throwaway_netns("bench-big") as nft_ns:
        install(ours_ns)
        listing = nft(ours_ns, "list", "ruleset")
        nft_file = NftFile(listing)
        nft_file.load(nft_ns)
        assert nft(nft_ns, "list", "ruleset") == listing, "nft -f must build the identical ruleset"
    ruleset = big_ruleset()
    batch = replace_contents(ruleset)
    size = len(batch.encode().data)

    with contextlib.ExitStack() as stack:  # fresh namespaces for every run, created before any timing
        spaces = [tuple(stack.enter_context(throwaway_netns("bench-big")) for _ in "ab") for _ in range(REPS)]
        ours, theirs = paired_medians(lambda i: install(spaces[i][0]), lambda i: nft_file.load(spaces[i][1]), REPS)
        build = median_ms(big_ruleset, REPS)
        fresh: list[Ruleset] = []
        encode = median_ms(lambda: replace_contents(fresh.pop()).encode(), REPS, lambda: fresh.append(big_ruleset()))
        again = median_ms(lambda: replace_contents(ruleset).encode(), REPS)
        clean = [stack.enter_context(throwaway_netns("bench-big")) for _ in range(REPS)]
        socks = [NftSocket.open(netns_path(ns)) for ns in clean]
        it = iter(socks)
        apply = median_ms(lambda: next(it).apply(batch), REPS)
        for sock in socks:
            sock.close()
    print_table(
        "(b) 1,000 rules + 10,000-range interval set, fresh install into a new namespace",
        [
            Row(f"total: build+encode+open+apply ({len(batch)} msgs, {size // 1024} KiB)", ours, theirs),
            Row("  build the model", build, None),
            Row("  replace_contents + encode, first use of the objects", encode, None),
            Row("  the same again (each object's messages kept on it)", again, None),
            Row("  apply (sendmsg, kernel, replies)", apply, None),
        ],
        f"medians of {REPS}; target ratio <= 0.8",
    )


if __name__ == "__main__":
    main()
