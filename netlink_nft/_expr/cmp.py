"""`cmp`: compare a register with a constant (memcmp order, so ordered comparisons need big-endian data)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from netlink_nft import _tlv
from netlink_nft._const import NFT_REG_1
from netlink_nft._expr._base import Expr, register, value_nest, value_of

_SREG, _OP, _DATA = 1, 2, 3


class CmpOp(IntEnum):
    EQ = 0
    NEQ = 1
    LT = 2
    LTE = 3
    GT = 4
    GTE = 5


@register
@dataclass(frozen=True)
class Cmp(Expr):
    name = "cmp"
    op: CmpOp
    data: bytes
    sreg: int = NFT_REG_1

    def encode(self) -> bytes:
        return _tlv.be32(_SREG, self.sreg) + _tlv.be32(_OP, self.op) + value_nest(_DATA, self.data)

    @classmethod
    def decode(cls, attrs: dict[int, bytes]) -> Cmp:
        return cls(CmpOp(_tlv.get_be32(attrs[_OP])), value_of(attrs[_DATA]), _tlv.get_be32(attrs[_SREG]))
