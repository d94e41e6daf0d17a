"""Read a table back from the kernel into the model, so that desired and actual state compare with `==`.

Anonymous sets are folded back into the lookups of the rules that own them, as they were built.

A table is read with several dump requests (chains, sets, elements per set, rules). A concurrent writer could
change the table between or during them, so the whole read is bracketed by the ruleset generation id: it is kept
only if the generation before equals the one after and the kernel flagged no reply NLM_F_DUMP_INTR; otherwise
it is read again, a bounded number of times, then `DumpInterrupted` is raised. A torn dump is never returned.
"""

from __future__ import annotations

import dataclasses
import errno as errno_codes
import struct
from collections import Counter
from collections.abc import Callable

from netlink_nft import _objects, _sets, _tlv
from netlink_nft._const import (
    NFT_MSG_GETCHAIN,
    NFT_MSG_GETRULE,
    NFT_MSG_GETSET,
    NFT_MSG_GETSETELEM,
    NFT_MSG_GETTABLE,
    NFTA_CHAIN_TABLE,
    NFTA_RULE_TABLE,
    NFTA_SET_ELEM_LIST_ELEMENTS,
    NFTA_SET_ELEM_LIST_SET,
    NFTA_SET_ELEM_LIST_TABLE,
    NFTA_SET_TABLE,
    NFTA_TABLE_NAME,
)
from netlink_nft._datatypes import opaque
from netlink_nft._elements import AnonymousSet
from netlink_nft._errors import DumpInterrupted
from netlink_nft._expr import Expr, Lookup
from netlink_nft._model import Rule, Ruleset, Set, Table
from netlink_nft._transport import NftSocket, Reply

DUMP_ATTEMPTS = 20


class _Torn(Exception):
    """The read is not consistent: the reason is the exception's message."""


def dump_table(
    nft: NftSocket,
    table: Table,
    *,
    attempts: int = DUMP_ATTEMPTS,
    on_retry: Callable[[str], None] | None = None,
) -> Ruleset | None:
    """The table's chains, sets (with elements) and rules, or None if the table does not exist.

    Consistent: read again (up to `attempts` times in all; `on_retry` is told why each time) while a concurrent
    change interrupts the read (a table deleted mid-read is read again, and then reported as None);
    `DumpInterrupted` if none of the attempts was consistent. A set whose elements come in several replies is
    read twice and must read the same: the kernel resumes such a dump by position, and a hash table resizing in
    the background (after a large insert or delete) reorders it without changing the generation, so a single
    read could miss or repeat elements (a torn dump the daemon's drift repair would take for drift).
    """
    for _ in range(attempts):
        before = nft.genid()
        try:
            result = _read_table(nft, table)
        except _Torn as exc:
            reason = str(exc)
        except OSError as exc:  # the table itself answered, so ENOENT means it (or a set) vanished mid-read
            if exc.errno != errno_codes.ENOENT:
                raise
            reason = f"an object vanished during the read ({exc})"
        else:
            after = nft.genid()
            if after == before:
                return result
            reason = f"the ruleset generation moved from {before} to {after} during the read"
        if on_retry is not None:
            on_retry(reason)
    raise DumpInterrupted(f"table {table}: {attempts} reads in a row were interrupted by concurrent changes")


def _read_table(nft: NftSocket, table: Table) -> Ruleset | None:
    try:
        _request(nft, NFT_MSG_GETTABLE, table.family, _tlv.strz(NFTA_TABLE_NAME, table.name), dump=False)
    except OSError as exc:
        if exc.errno == errno_codes.ENOENT:
            return None
        raise
    ref = _tlv.strz(NFTA_TABLE_NAME, table.name)
    chains = [
        _objects.decode_chain(table, attrs)
        for attrs in _attrs_in_table(nft, NFT_MSG_GETCHAIN, table, ref, NFTA_CHAIN_TABLE)
    ]
    named: list[Set] = []
    anonymous: dict[str, AnonymousSet] = {}
    for attrs in _attrs_in_table(nft, NFT_MSG_GETSET, table, ref, NFTA_SET_TABLE):
        spec = _sets.decode_set(attrs)
        lists = _element_lists(nft, table, spec.name)
        try:
            elements = _sets.decode_elements(spec, lists)
        except (KeyError, ValueError, IndexError, struct.error):  # elements we do not model (a catch-all, say):
            spec = spec._replace(key=(opaque(0, spec.key_len),))  # keep the set, never equal to ours
            elements = []
        else:
            if len(lists) > 1 and Counter(elements) != Counter(
                _sets.decode_elements(spec, _element_lists(nft, table, spec.name))
            ):
                raise _Torn(f"set {spec.name}: two reads of its elements differ (a hash table resized mid-dump)")
        if spec.anonymous:
            anonymous[spec.name] = AnonymousSet(spec.key, tuple(elements), spec.interval, spec.data)
        else:
            named.append(Set(table, spec.name, spec.key, spec.interval, spec.constant, spec.data, tuple(elements)))
    rules = [
        _fold_anonymous(_objects.decode_rule(table, attrs), anonymous)
        for attrs in _attrs_in_table(nft, NFT_MSG_GETRULE, table, ref, NFTA_RULE_TABLE)
    ]
    return Ruleset(table, tuple(chains), tuple(named), tuple(rules))


def _request(nft: NftSocket, kind: int, family: int, attrs: bytes, *, dump: bool = True) -> list[Reply]:
    result = nft.dump(kind, family, attrs, dump=dump)
    if result.interrupted:
        raise _Torn("a dump reply was flagged NLM_F_DUMP_INTR")
    return result.replies


def _attrs_in_table(nft: NftSocket, kind: int, table: Table, request: bytes, table_attr: int) -> list[dict[int, bytes]]:
    """Dump objects of one kind and keep those of our table (filters are also applied by the kernel)."""
    out = []
    for reply in _request(nft, kind, table.family, request):
        attrs = _tlv.parse_attrs(reply.attrs)
        if reply.family == table.family and _tlv.get_str(attrs[table_attr]) == table.name:
            out.append(attrs)
    return out


def _element_lists(nft: NftSocket, table: Table, set_name: str) -> list[bytes]:
    request = _tlv.strz(NFTA_SET_ELEM_LIST_TABLE, table.name) + _tlv.strz(NFTA_SET_ELEM_LIST_SET, set_name)
    lists = []
    for reply in _request(nft, NFT_MSG_GETSETELEM, table.family, request):
        payload = _tlv.parse_attrs(reply.attrs).get(NFTA_SET_ELEM_LIST_ELEMENTS)
        if payload is not None:
            lists.append(payload)
    return lists


def _fold_anonymous(rule: Rule, anonymous: dict[str, AnonymousSet]) -> Rule:
    def fold(expr: Expr) -> Expr:
        if isinstance(expr, Lookup) and isinstance(expr.set, str) and expr.set in anonymous:
            return dataclasses.replace(expr, set=anonymous[expr.set])
        return expr

    return dataclasses.replace(rule, exprs=tuple(fold(e) for e in rule.exprs))
