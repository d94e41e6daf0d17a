"""The declarative model: tables, chains, sets, rules and a whole table's contents. Frozen, hashable values.

Identity fields only: kernel handles and counter values are carried along (`compare=False`) but a value read back
from the kernel equals the value it was built from.

`Table`, `Chain`, `Set`, `Rule` and `Ruleset` write their own `__init__` (same signature as the generated one): a
frozen dataclass assigns each field through `object.__setattr__`, and filling the instance `__dict__` directly is
2.5x faster; a pod's ruleset builds a few dozen of these, every time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from operator import attrgetter
from typing import Any, ClassVar

from netlink_nft._datatypes import DataType
from netlink_nft._elements import SetElement, normalise
from netlink_nft._errors import InvalidValue
from netlink_nft._expr import Expr


class Family(IntEnum):
    """Table families (`NFPROTO_*`)."""

    INET = 1
    IP = 2
    ARP = 3
    NETDEV = 5
    BRIDGE = 7
    IP6 = 10


class Hook(IntEnum):
    """Netfilter hooks of the ip/ip6/inet families."""

    PREROUTING = 0
    INPUT = 1
    FORWARD = 2
    OUTPUT = 3
    POSTROUTING = 4
    INGRESS = 5  # inet family (>= 5.10), with a device


class Policy(IntEnum):
    DROP = 0
    ACCEPT = 1


@dataclass(frozen=True)
class Table:
    family: Family
    name: str

    def __init__(self, family: Family, name: str) -> None:
        d = self.__dict__
        d["family"], d["name"] = family, name

    def __str__(self) -> str:
        return f"{self.family.name.lower()} {self.name}"


@dataclass(frozen=True)
class Chain:
    """A base chain when `hook` is set (then `type`, `priority` and `policy` apply), else a regular chain."""

    table: Table
    name: str
    hook: Hook | None = None
    priority: int = 0
    policy: Policy = Policy.ACCEPT
    type: str = "filter"
    # the wire segments `_plans` keeps on the instance once made (read through the class default until then)
    _wire_new_chain: ClassVar[Any] = None
    _wire_flush_chain: ClassVar[Any] = None
    _wire_new_flushed_chain: ClassVar[Any] = None

    def __init__(
        self,
        table: Table,
        name: str,
        hook: Hook | None = None,
        priority: int = 0,
        policy: Policy = Policy.ACCEPT,
        type: str = "filter",
    ) -> None:
        d = self.__dict__
        d["table"], d["name"], d["hook"], d["priority"], d["policy"], d["type"] = (
            table,
            name,
            hook,
            priority,
            policy,
            type,
        )

    @property
    def is_base(self) -> bool:
        return self.hook is not None

    def __str__(self) -> str:
        return f"chain {self.table}/{self.name}"


@dataclass(frozen=True)
class Set:
    """A named set, or a map when `data` is set (`VERDICT` for verdict maps). `key` has several types for a
    concatenation. Elements are normalised on construction (see `_elements`)."""

    table: Table
    name: str
    key: tuple[DataType, ...]
    interval: bool = False
    constant: bool = False
    data: DataType | None = None
    elements: tuple[SetElement, ...] = ()
    _wire_plan: ClassVar[Any] = None  # the wire plan `_plans` keeps on the instance once made

    def __init__(
        self,
        table: Table,
        name: str,
        key: tuple[DataType, ...],
        interval: bool = False,
        constant: bool = False,
        data: DataType | None = None,
        elements: Iterable[SetElement] = (),
    ) -> None:
        key = key if isinstance(key, tuple) else (key,)
        self._fill(table, name, key, interval, constant, data, normalise(key, interval, data, elements))

    def _fill(
        self,
        table: Table,
        name: str,
        key: tuple[DataType, ...],
        interval: bool,
        constant: bool,
        data: DataType | None,
        elements: tuple[SetElement, ...],
    ) -> None:
        d = self.__dict__
        d["table"], d["name"], d["key"], d["interval"] = table, name, key, interval
        d["constant"], d["data"], d["elements"] = constant, data, elements

    @classmethod
    def of_canonical(
        cls,
        table: Table,
        name: str,
        key: tuple[DataType, ...],
        interval: bool,
        elements: tuple[SetElement, ...],
        *,
        constant: bool = False,
        data: DataType | None = None,
    ) -> Set:
        """A set of `elements` that are already in the canonical form `normalise` gives (canonical values, sorted
        by key, ranges merged, no `end` equal to its key), taken as they are: for callers that produce them so
        (trinet maps its own canonical sets, hundreds of them per pod)."""
        made = cls.__new__(cls)
        made._fill(table, name, key, interval, constant, data, elements)
        return made

    def with_elements(self, elements: Iterable[SetElement]) -> Set:
        return Set(self.table, self.name, self.key, self.interval, self.constant, self.data, tuple(elements))

    def __str__(self) -> str:
        return f"{'map' if self.data else 'set'} {self.table}/{self.name}"

    def __repr__(self) -> str:
        elements = f"{len(self.elements)} elements" if len(self.elements) > 8 else repr(self.elements)
        return (
            f"Set({self.table}/{self.name}, key={self.key!r}, interval={self.interval}, constant={self.constant}, "
            f"data={self.data!r}, elements={elements})"
        )


@dataclass(frozen=True)
class Rule:
    table: Table
    chain: str
    exprs: tuple[Expr, ...]
    comment: str | None = None
    handle: int | None = field(default=None, compare=False)
    _wire_plan: ClassVar[Any] = None  # the wire segment `_plans` keeps on the instance once made

    def __init__(
        self, table: Table, chain: str, exprs: Iterable[Expr], comment: str | None = None, handle: int | None = None
    ) -> None:
        # a tuple whatever sequence it was given: the value stays hashable
        exprs = exprs if type(exprs) is tuple else tuple(exprs)
        d = self.__dict__
        d["table"], d["chain"], d["exprs"], d["comment"], d["handle"] = table, chain, exprs, comment, handle

    def __str__(self) -> str:
        where = f"handle {self.handle}" if self.handle is not None else (repr(self.comment) if self.comment else "")
        return f"rule {self.table}/{self.chain} {where}".rstrip()


@dataclass(frozen=True)
class Ruleset:
    """Everything in one table. Chains and sets are kept sorted by name, rules grouped by chain name in order."""

    table: Table
    chains: tuple[Chain, ...] = ()
    sets: tuple[Set, ...] = ()
    rules: tuple[Rule, ...] = ()

    def __init__(
        self, table: Table, chains: tuple[Chain, ...] = (), sets: tuple[Set, ...] = (), rules: tuple[Rule, ...] = ()
    ) -> None:
        for items in (chains, sets, rules):
            for item in items:
                if item.table is not table and item.table != table:  # identity first: the usual case, and cheap
                    raise InvalidValue(f"{item} is not in table {table}")
        d = self.__dict__
        d["table"], d["chains"] = table, tuple(sorted(chains, key=_by_name))
        d["sets"], d["rules"] = tuple(sorted(sets, key=_by_name)), tuple(sorted(rules, key=_by_chain))


_by_name = attrgetter("name")
_by_chain = attrgetter("chain")
