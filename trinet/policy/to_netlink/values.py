"""Netlink values made from the policy model's numbers, shared between the sets that hold the same one.

A pod's address is in the peer sets of every policy rule that selects it, in the table of every pod such a rule
applies to: in a start-up most address values are repeats (1,000 pods / 100 policies: 11,720 made, 3,541
distinct). Sharing them spares making them again and spares the cyclic collector a tracked object per copy.

Each table keeps the values it made lately, by number: at most ``LIMIT`` when a set starts (``trim``: one larger
set may exceed it until the next set of any kind), and none after ``clear`` (``mapping.sweep`` calls it), so what
it keeps is bounded and never outlives the memos by much. The values are frozen, so a shared one is as good as a
new one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Generic, TypeVar, cast

import netlink_nft as nl

__all__ = ["ADDRESSES", "LIMIT", "PAIRS", "PORTS", "SINGLES", "Recent", "clear", "trim"]

T = TypeVar("T")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
LIMIT = 16_384
PORTS = 1 << 16  # PAIRS keeps ``address . port`` under address * PORTS + port


class Recent(dict[int, T], Generic[T]):
    """Values made lately, by number: look one up with ``get``, make a missing one with ``make``."""

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[int], T]) -> None:
        super().__init__()
        self._make = make

    def make(self, number: int) -> T:
        value = self[number] = self._make(number)
        return value


def _address(datatype: nl.DataType) -> Recent[Address]:
    return Recent(lambda number: cast(Address, datatype.from_int(number)))


ADDRESSES = {"ipv4_addr": _address(nl.IPV4_ADDR), "ipv6_addr": _address(nl.IPV6_ADDR)}


def _single(addresses: Recent[Address]) -> Recent[nl.SetElement]:
    return Recent(lambda number: nl.SetElement(addresses.get(number) or addresses.make(number)))


def _pair(addresses: Recent[Address]) -> Recent[nl.SetElement]:
    def make(number: int) -> nl.SetElement:
        address, port = divmod(number, PORTS)
        return nl.SetElement((addresses.get(address) or addresses.make(address), port))

    return Recent(make)


SINGLES = {name: _single(addresses) for name, addresses in ADDRESSES.items()}  # ``address`` elements
PAIRS = {name: _pair(addresses) for name, addresses in ADDRESSES.items()}  # ``address . port``, by pair_number


_TABLES = [recent for kind in (ADDRESSES, SINGLES, PAIRS) for recent in kind.values()]


def trim() -> None:
    """Empty every table that holds more than ``LIMIT`` values (``mapping.elements`` calls it before each set)."""
    for recent in _TABLES:
        if len(recent) > LIMIT:
            recent.clear()


def clear() -> None:
    for recent in _TABLES:
        recent.clear()
