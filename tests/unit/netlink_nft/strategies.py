"""Hypothesis strategies for address interval sets, and an oracle independent of netlink_nft's normaliser."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from hypothesis import strategies as st

from netlink_nft import SetElement

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _element(version: int) -> st.SearchStrategy[SetElement]:
    bits = 32 if version == 4 else 128
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    addresses = st.one_of(
        st.integers(0, 2**bits - 1),
        st.sampled_from([0, 1, 2**bits - 2, 2**bits - 1]),  # the edges of the address space
    )
    network = st.builds(
        lambda a, p: SetElement.network(ipaddress.ip_network((make(a), p), strict=False)),
        addresses,
        st.integers(0, bits),
    )
    span = st.tuples(addresses, addresses).map(sorted).map(lambda ab: SetElement.interval(make(ab[0]), make(ab[1])))
    near = st.tuples(st.integers(0, 2**bits - 64), st.integers(0, 40), st.integers(0, 20)).map(
        lambda t: SetElement.interval(make(t[0] + t[1]), make(t[0] + t[1] + t[2]))  # small ranges that touch
    )
    return st.one_of(network, span, near, addresses.map(lambda a: SetElement(make(a))))


def interval_elements(version: int, max_size: int = 30) -> st.SearchStrategy[list[SetElement]]:
    return st.lists(_element(version), max_size=max_size)


def covered_networks(elements: Iterable[SetElement]) -> list[Network]:
    """The addresses covered by the elements as the minimal list of CIDR blocks (via `ipaddress` only)."""
    nets: list[Network] = []
    for element in elements:
        first = element.key
        last = element.key if element.end is None else element.end
        nets.extend(ipaddress.summarize_address_range(first, last))  # type: ignore[arg-type]
    return list(ipaddress.collapse_addresses(nets))  # type: ignore[arg-type]


def is_canonical(elements: tuple[SetElement, ...]) -> bool:
    """Sorted, disjoint and not touching: each range starts at least two addresses after the previous one ends."""
    previous: int | None = None
    for element in elements:
        first = int(element.key)  # type: ignore[arg-type]
        last = first if element.end is None else int(element.end)  # type: ignore[arg-type]
        if last < first or (previous is not None and first <= previous + 1):
            return False
        previous = last
    return True
