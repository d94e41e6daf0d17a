"""`lookup`: is the key in a register a member of a set? With `dreg`, fetch the map's data (verdict maps)."""

from __future__ import annotations

from dataclasses import dataclass, field

from netlink_nft import _tlv
from netlink_nft._const import NFT_REG_1
from netlink_nft._elements import AnonymousSet
from netlink_nft._errors import InvalidType
from netlink_nft._expr._base import Expr, register

_SET, _SREG, _DREG, _SET_ID, _FLAGS = 1, 2, 3, 4, 5
_F_INV = 1


@register
@dataclass(frozen=True)
class Lookup(Expr):
    """`set` is a named set's name, or the contents of an anonymous set (the batch creates it with the rule).

    `set_id` is the transaction-local id of a set created in the same batch; the batch fills it in.
    """

    name = "lookup"
    memoisable = False  # set_id takes no part in ==
    set: str | AnonymousSet
    sreg: int = NFT_REG_1
    dreg: int | None = None
    invert: bool = False
    set_id: int | None = field(default=None, compare=False)

    def encode(self) -> bytes:
        if not isinstance(self.set, str):
            raise InvalidType("an anonymous set must be bound to a name by the batch before encoding")
        out = _tlv.be32(_SREG, self.sreg)
        if self.dreg is not None:
            out += _tlv.be32(_DREG, self.dreg)
        out += _tlv.strz(_SET, self.set)
        if self.set_id is not None:
            out += _tlv.be32(_SET_ID, self.set_id)
        if self.invert:
            out += _tlv.be32(_FLAGS, _F_INV)
        return out

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
