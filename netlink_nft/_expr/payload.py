"""`payload`: load bytes from a packet header into a register."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from netlink_nft import _tlv
from netlink_nft._const import NFT_REG_1
from netlink_nft._expr._base import Expr, register

_DREG, _BASE, _OFFSET, _LEN = 1, 2, 3, 4


class PayloadBase(IntEnum):
    LL = 0
    NETWORK = 1
    TRANSPORT = 2
    INNER = 3


@register
@dataclass(frozen=True)
class Payload(Expr):
    name = "payload"
    base: PayloadBase
    offset: int
    length: int
    dreg: int = NFT_REG_1

    def encode(self) -> bytes:
        return (
            _tlv.be32(_DREG, self.dreg)
            + _tlv.be32(_BASE, self.base)
            + _tlv.be32(_OFFSET, self.offset)
            + _tlv.be32(_LEN, self.length)
        )

    @classmethod
    def decode(cls, attrs: dict[int, bytes]) -> Payload:
        return cls(
            PayloadBase(_tlv.get_be32(attrs[_BASE])),
            _tlv.get_be32(attrs[_OFFSET]),
            _tlv.get_be32(attrs[_LEN]),
            _tlv.get_be32(attrs[_DREG]),
        )
