"""What isolation dropped, read back from a dumped table."""

from __future__ import annotations

import netlink_nft as nl
from trinet.policy.compile import chain_interface

__all__ = ["drop_counters"]


def drop_counters(dumped: nl.Ruleset) -> dict[tuple[str, str], int]:
    """Packets dropped by isolation so far, by (interface, direction) (``"ingress"``/``"egress"``), read from the
    counter of each per-interface chain's final drop rule in a dump (``netlink_nft.dump_table``). Chains that are
    not trinet's per-interface chains, and drop rules without a counter, are left out."""
    out: dict[tuple[str, str], int] = {}
    for rule in dumped.rules:
        where = chain_interface(rule.chain)
        if where is None or len(rule.exprs) < 2:
            continue
        counter, verdict = rule.exprs[-2:]
        if isinstance(counter, nl.Counter) and isinstance(verdict, nl.Immediate) and verdict.data == nl.DROP:
            out[where[0], where[1].value] = counter.packets
    return out
