"""Compare batches up to their sets' transaction ids.

Ours come from a process-wide counter and named sets are referenced by name only (see `netlink_nft._plans`); nft
numbers its sets 1, 2, ... per batch and also sends the ids of named sets in element lists and lookups. So both
sides are brought to one form: every NEWSET id renumbered by order of creation, and references to a named set's id
dropped (an anonymous set's id renumbered like its NEWSET).
"""

from __future__ import annotations

import struct

from netlink_nft._const import (
    NFT_MSG_NEWRULE,
    NFT_MSG_NEWSET,
    NFT_MSG_NEWSETELEM,
    NFTA_EXPR_DATA,
    NFTA_EXPR_NAME,
    NFTA_RULE_EXPRESSIONS,
    NFTA_SET_ELEM_LIST_SET,
    NFTA_SET_ELEM_LIST_SET_ID,
    NFTA_SET_ID,
)

_HDR = struct.Struct("=HH")
_TYPE_MASK = 0x3FFF
_LOOKUP_SET, _LOOKUP_SET_ID = 1, 4
_ANONYMOUS = b"__set"


def _attrs(buf: bytes) -> list[tuple[int, bytes]]:
    """(type with flags, payload) of each attribute."""
    out, offset = [], 0
    while offset + 4 <= len(buf):
        length, kind = _HDR.unpack_from(buf, offset)
        out.append((kind, buf[offset + 4 : offset + length]))
        offset += (length + 3) & ~3
    return out


def _join(attrs: list[tuple[int, bytes]]) -> bytes:
    return b"".join(_HDR.pack(4 + len(v), k) + v + bytes(-(4 + len(v)) & 3) for k, v in attrs)


class _Renumber:
    def __init__(self) -> None:
        self.ids: dict[bytes, bytes] = {}

    def created(self, raw: bytes) -> bytes:
        return self.ids.setdefault(raw, struct.pack(">I", len(self.ids) + 1))

    def reference(self, attrs: list[tuple[int, bytes]], name_type: int, id_type: int) -> list[tuple[int, bytes]]:
        names = [v for k, v in attrs if k & _TYPE_MASK == name_type]
        named = bool(names) and not names[0].startswith(_ANONYMOUS)
        out = []
        for kind, value in attrs:
            if kind & _TYPE_MASK != id_type:
                out.append((kind, value))
            elif not named:
                out.append((kind, self.ids.get(value, b"?" + value)))
        return out

    def rule(self, attrs: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        return [
            (kind, _join([(k, _join(self.expr(_attrs(v)))) for k, v in _attrs(value)]))
            if kind & _TYPE_MASK == NFTA_RULE_EXPRESSIONS
            else (kind, value)
            for kind, value in attrs
        ]

    def expr(self, attrs: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        if not any(k & _TYPE_MASK == NFTA_EXPR_NAME and v.rstrip(b"\0") == b"lookup" for k, v in attrs):
            return attrs
        return [
            (
                k,
                _join(self.reference(_attrs(v), _LOOKUP_SET, _LOOKUP_SET_ID))
                if k & _TYPE_MASK == NFTA_EXPR_DATA
                else v,
            )
            for k, v in attrs
        ]


def canonical_ids(messages: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """(kind, payload after the netlink header) messages with their set ids brought to one form."""
    renumber = _Renumber()
    out = []
    for kind, payload in messages:
        head, attrs = payload[:4], _attrs(payload[4:])
        message = kind & 0xFF
        if message == NFT_MSG_NEWSET:
            attrs = [(t, renumber.created(v) if t & _TYPE_MASK == NFTA_SET_ID else v) for t, v in attrs]
        elif message == NFT_MSG_NEWSETELEM:
            attrs = renumber.reference(attrs, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_SET_ID)
        elif message == NFT_MSG_NEWRULE:
            attrs = renumber.rule(attrs)
        out.append((kind, head + _join(attrs)))
    return out
