"""Property: random IPv4 and IPv6 interval sets survive apply → dump, equal to their normalised form.

The expected content is computed with `ipaddress` alone (summarise and collapse into CIDR blocks), independently
of netlink_nft's own range merging.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from netlink_nft import (
    IPV4_ADDR,
    IPV6_ADDR,
    Chain,
    Family,
    Hook,
    NftSocket,
    Ruleset,
    Set,
    SetElement,
    Table,
    dump_table,
    replace_contents,
)
from tests.unit.netlink_nft.strategies import covered_networks, interval_elements, is_canonical

T = Table(Family.INET, "prop")


def _check(nft_sock: NftSocket, version: int, elements: list[SetElement]) -> None:
    key = IPV4_ADDR if version == 4 else IPV6_ADDR
    desired = Ruleset(
        T, (Chain(T, "input", Hook.INPUT),), (Set(T, "s", (key,), interval=True, elements=tuple(elements)),)
    )
    nft_sock.apply(replace_contents(desired))
    dumped = dump_table(nft_sock, T)
    assert dumped == desired
    assert dumped is not None
    got = dumped.sets[0].elements
    assert is_canonical(got)
    assert covered_networks(got) == covered_networks(elements)


@pytest.mark.parametrize("version", [4, 6])
def test_random_interval_sets_round_trip(nft_sock: NftSocket, version: int) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(interval_elements(version))
    def check(elements: list[SetElement]) -> None:
        _check(nft_sock, version, elements)

    check()
