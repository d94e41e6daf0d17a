"""`range`: is a register between two constants (inclusive, memcmp order)?"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from netlink_nft import _tlv
from netlink_nft._const import NFT_REG_1
from netlink_nft._expr._base import Expr, register, value_nest, value_of

_SREG, _OP, _FROM, _TO = 1, 2, 3, 4


class RangeOp(IntEnum):
    EQ = 0
    NEQ = 1


@register
@dataclass(frozen=True)
class Range(Expr):
    name = "range"
    op: RangeOp
    low: bytes
    high: bytes
    sreg: int = NFT_REG_1

    def encode(self) -> bytes:
        return (
            _tlv.be32(_SREG, self.sreg)
            + _tlv.be32(_OP, self.op)
            + value_nest(_FROM, self.low)
            + value_nest(_TO, self.high)
        )

    @classmethod
    def decode(cls, attrs: dict[int, bytes]) -> Range:
        return cls(
            RangeOp(_tlv.get_be32(attrs[_OP])),
            value_of(attrs[_FROM]),
            value_of(attrs[_TO]),
            _tlv.get_be32(attrs[_SREG]),
        )
