"""`bitwise`: `dreg = (sreg & mask) ^ xor` (how nft matches non-byte-aligned prefixes and flag bits)."""

from __future__ import annotations

from dataclasses import dataclass

from netlink_nft import _tlv
from netlink_nft._const import NFT_REG_1
from netlink_nft._errors import InvalidValue
from netlink_nft._expr._base import Expr, register, value_nest, value_of

_SREG, _DREG, _LEN, _MASK, _XOR = 1, 2, 3, 4, 5


@register
@dataclass(frozen=True)
class Bitwise(Expr):
    name = "bitwise"
    mask: bytes
    xor: bytes
    sreg: int = NFT_REG_1
    dreg: int = NFT_REG_1

    def __post_init__(self) -> None:
        if len(self.mask) != len(self.xor):
            raise InvalidValue("bitwise mask and xor must have the same length")

    def encode(self) -> bytes:
        return (
            _tlv.be32(_SREG, self.sreg)
            + _tlv.be32(_DREG, self.dreg)
            + _tlv.be32(_LEN, len(self.mask))
            + value_nest(_MASK, self.mask)
            + value_nest(_XOR, self.xor)
        )

    @classmethod
    def decode(cls, attrs: dict[int, bytes]) -> Bitwise:
        return cls(
            value_of(attrs[_MASK]), value_of(attrs[_XOR]), _tlv.get_be32(attrs[_SREG]), _tlv.get_be32(attrs[_DREG])
        )
