"""`ct`: load connection-tracking state into a register."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

from netlink_nft import _tlv
from netlink_nft._const import NFT_REG_1
from netlink_nft._expr._base import Expr, register

_DREG, _KEY, _DIRECTION = 1, 2, 3


class CtKey(IntEnum):
    STATE = 0
    DIRECTION = 1
    STATUS = 2
    MARK = 3


class CtState(IntFlag):
    """`ct state` bits (host-order u32 in the register)."""

    INVALID = 1
    ESTABLISHED = 2
    RELATED = 4
    NEW = 8
    UNTRACKED = 64


@register
@dataclass(frozen=True)
class Ct(Expr):
    name = "ct"
    key: CtKey
    dreg: int = NFT_REG_1
    direction: int | None = None

    def encode(self) -> bytes:
        out = _tlv.be32(_KEY, self.key) + _tlv.be32(_DREG, self.dreg)
        if self.direction is not None:
            out += _tlv.u8(_DIRECTION, self.direction)
        return out

    @classmethod
    def decode(cls, attrs: dict[int, bytes]) -> Ct:
        direction = attrs.get(_DIRECTION)
        return cls(CtKey(_tlv.get_be32(attrs[_KEY])), _tlv.get_be32(attrs[_DREG]), direction[0] if direction else None)
