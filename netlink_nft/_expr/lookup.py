"""`lookup`: is the key in a register a member of a set? With `dreg`, fetch the map's data (verdict maps)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from netlink_nft import _tlv
from netlink_nft._const import NFT_REG_1, NFTA_EXPR_DATA, NFTA_EXPR_NAME, NFTA_LIST_ELEM
from netlink_nft._elements import AnonymousSet
from netlink_nft._errors import InvalidType
from netlink_nft._expr._base import Expr, register

_SET, _SREG, _DREG, _SET_ID, _FLAGS = 1, 2, 3, 4, 5
_F_INV = 1


@register
@dataclass(frozen=True)
class Lookup(Expr):
    """`set` is a named set's name (sent by name only: the kernel finds by name the sets created earlier in the
    same batch too), or the contents of an anonymous set (the batch creates it with the rule and binds the lookup
    to its transaction id, `encode_bound`)."""

    name = "lookup"
    set: str | AnonymousSet
    sreg: int = NFT_REG_1
    dreg: int | None = None
    invert: bool = False

    def encode(self) -> bytes:
        if not isinstance(self.set, str):
            raise InvalidType("an anonymous set must be bound to a name by the batch before encoding")
        return _attrs(self.set, self.sreg, self.dreg, self.invert, None)

    def encode_bound(self, set_name: str, set_id: int | None) -> bytes:
        """The whole list element of this lookup of `set_name` (transaction id `set_id`), without building a
        bound copy: what the batch sends for every lookup."""
        return _element(set_name, self.sreg, self.dreg, self.invert, set_id)

    def encode_bound_parts(self, set_name: str) -> tuple[bytes, bytes]:
        """(head, tail) with `encode_bound(set_name, set_id) == head + set_id as big-endian u32 + tail` for any
        id: batches splice the id of a set they create into a lookup encoded once."""
        whole = self.encode_bound(set_name, 0)
        cut = len(whole) - (8 if self.invert else 0) - 4  # the id's value is followed only by the flags attribute
        return whole[:cut], whole[cut + 4 :]

    @classmethod
    def decode(cls, attrs: dict[int, bytes]) -> Lookup:
        dreg = attrs.get(_DREG)
        flags = attrs.get(_FLAGS)
        return cls(
            _tlv.get_str(attrs[_SET]),
            _tlv.get_be32(attrs[_SREG]),
            None if dreg is None else _tlv.get_be32(dreg),
            bool(flags and _tlv.get_be32(flags) & _F_INV),
        )


def _attrs(set_name: str, sreg: int, dreg: int | None, invert: bool, set_id: int | None) -> bytes:
    out = _tlv.be32(_SREG, sreg)
    if dreg is not None:
        out += _tlv.be32(_DREG, dreg)
    out += _tlv.strz(_SET, set_name)
    if set_id is not None:
        out += _tlv.be32(_SET_ID, set_id)
    if invert:
        out += _tlv.be32(_FLAGS, _F_INV)
    return out


@functools.lru_cache(maxsize=4096)  # small keys; the same lookups recur in every pod's batch
def _element(set_name: str, sreg: int, dreg: int | None, invert: bool, set_id: int | None) -> bytes:
    data = _attrs(set_name, sreg, dreg, invert, set_id)
    return _tlv.nest(NFTA_LIST_ELEM, _tlv.strz(NFTA_EXPR_NAME, Lookup.name), _tlv.nest(NFTA_EXPR_DATA, data))
