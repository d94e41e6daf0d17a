"""(c)/(d) A one-element change against a set of 10,000 and of 100,000 addresses: the update must cost the same
whatever the set size. netlink_nft (a kept socket, as the daemon keeps one per pod) applies one transaction that
deletes one address and adds another; `nft -f` applies a file with the same two commands.

Measured for a plain (hash) set, where peer pod addresses go, and for an interval set (ipBlocks). Our side of the
work (building and encoding the two-message batch) does not depend on the set size; the kernel's does for interval
sets: committing any change to an rbtree set costs time proportional to its size on this kernel.

Run as root from the repository root:  .venv/bin/python -m benchmarks.bench_netlink_delta
"""

from __future__ import annotations

from benchmarks.bench_netlink_lib import NftFile, Row, median_ms, nft, paired_medians, print_table
from netlink_nft import (
    Batch,
    Family,
    NftSocket,
    Ruleset,
    SetElement,
    Table,
    replace_contents,
)
from tests.kernel.netlink_nft.rulesets import blocklist, install
from tests.support.netns import netns_path, throwaway_netns

REPS = 31
TABLE = Table(Family.IP, "bench")
BASE = 11 << 24
SWAP = (SetElement("192.0.2.1"), SetElement("192.0.2.2"))  # alternately removed and added


def ruleset(size: int, interval: bool) -> Ruleset:
    """A set of `size` addresses (one per /24, so none merge) and a rule that uses it."""
    elements = (*(SetElement(BASE + 256 * i) for i in range(size - 1)), SWAP[0])
    return blocklist(TABLE, elements, interval=interval, name="blk")


def delta_batch(desired: Ruleset, i: int) -> Batch:
    """Round `i` removes SWAP[i % 2] and adds the other one: what the daemon sends when one peer changes."""
    blocked = desired.sets[0]
    batch = Batch()
    batch.delete_elements(blocked, [SWAP[i % 2]])
    batch.add_elements(blocked, [SWAP[(i + 1) % 2]])
    return batch


def nft_delta_files() -> list[NftFile]:
    return [
        NftFile(f"delete element ip bench blk {{ {old.key} }}\nadd element ip bench blk {{ {new.key} }}\n")
        for old, new in (SWAP, SWAP[::-1])
    ]


def measure(size: int, interval: bool) -> list[Row]:
    desired = ruleset(size, interval)
    files = nft_delta_files()
    with throwaway_netns("bench-delta") as ours_ns, throwaway_netns("bench-delta") as nft_ns:
        with NftSocket.open(netns_path(ours_ns)) as seed:
            install(seed, desired)
        NftFile(nft(ours_ns, "list", "ruleset")).load(nft_ns)
        with NftSocket.open(netns_path(ours_ns)) as sock:
            ours, theirs = paired_medians(
                lambda i: sock.apply(delta_batch(desired, i)), lambda i: files[i % 2].load(nft_ns), REPS
            )
            if REPS % 2:  # put the set back where it started, then check both namespaces agree
                sock.apply(delta_batch(desired, REPS))
                files[REPS % 2].load(nft_ns)
        assert nft(ours_ns, "list", "ruleset") == nft(nft_ns, "list", "ruleset")
        encode = median_ms(lambda: delta_batch(desired, 0).encode(), REPS)
        declarative = median_ms(lambda: declarative_delta(desired).encode(), 7)
    kind = "interval set" if interval else "hash set"
    return [
        Row(f"one-element delta, {kind} of {size:,}: build+encode+apply", ours, theirs),
        Row(f"  of which build+encode the delta batch ({size:,})", encode, None),
        Row(f"  declarative instead: new Set + replace_contents diff ({size:,})", declarative, None),
    ]


def declarative_delta(current: Ruleset) -> Batch:
    """The same change found by `replace_contents`: rebuild the set with one element swapped, diff, encode."""
    blocked = current.sets[0]
    changed = blocked.with_elements((*blocked.elements[:-1], SWAP[1]))
    return replace_contents(Ruleset(TABLE, current.chains, (changed,), current.rules), current)


def main() -> None:
    rows = [row for interval in (False, True) for size in (10_000, 100_000) for row in measure(size, interval)]
    print_table("(c)/(d) one-element delta, kept socket vs nft -f", rows, f"medians of {REPS}; target (c) = (d)")


if __name__ == "__main__":
    main()
