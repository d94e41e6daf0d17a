"""Rulesets the netlink_nft kernel tests and benchmarks install: a blocklist of source addresses on input."""

from __future__ import annotations

from collections.abc import Iterable

import netlink_nft as nl


def blocklist(
    table: nl.Table, elements: Iterable[nl.SetElement], *, interval: bool = True, name: str = "blocked"
) -> nl.Ruleset:
    """Chain `input` on the input hook with one rule dropping sources in the IPv4 set `name` of `elements`."""
    blocked = nl.Set(table, name, (nl.IPV4_ADDR,), interval=interval, elements=tuple(elements))
    drop = nl.rule(table, "input", nl.in_set(nl.IP_SADDR, name), nl.DROP)
    return nl.Ruleset(table, (nl.Chain(table, "input", nl.Hook.INPUT),), (blocked,), (drop,))


def install(sock: nl.NftSocket, ruleset: nl.Ruleset) -> nl.Ruleset:
    """Replace whatever `ruleset`'s table holds with `ruleset` (creating it if absent); returns `ruleset`."""
    sock.apply(nl.replace_contents(ruleset))
    return ruleset
