"""`meta`: load packet metadata (interface names, protocol numbers, ...) into a register."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from netlink_nft import _tlv
from netlink_nft._const import NFT_REG_1
from netlink_nft._expr._base import Expr, register

_DREG, _KEY = 1, 2


class MetaKey(IntEnum):
    LEN = 0
    PROTOCOL = 1
    MARK = 3
    IIF = 4
    OIF = 5
    IIFNAME = 6
    OIFNAME = 7
    NFPROTO = 15
    L4PROTO = 16
    PKTTYPE = 19


@register
@dataclass(frozen=True)
class Meta(Expr):
    name = "meta"
    key: MetaKey
    dreg: int = NFT_REG_1

    def encode(self) -> bytes:
        # nft sends KEY before DREG
        return _tlv.be32(_KEY, self.key) + _tlv.be32(_DREG, self.dreg)

    @classmethod
    def decode(cls, attrs: dict[int, bytes]) -> Meta:
        return cls(MetaKey(_tlv.get_be32(attrs[_KEY])), _tlv.get_be32(attrs[_DREG]))
