"""`immediate`: load a constant into a register; into the verdict register it is the rule's verdict."""

from __future__ import annotations

from dataclasses import dataclass

from netlink_nft import _tlv
from netlink_nft._const import NFT_REG_VERDICT, NFTA_DATA_VALUE, NFTA_DATA_VERDICT
from netlink_nft._expr._base import Expr, register
from netlink_nft._verdict import Verdict

_DREG, _DATA = 1, 2


@register
@dataclass(frozen=True)
class Immediate(Expr):
    name = "immediate"
    data: Verdict | bytes
    dreg: int = NFT_REG_VERDICT

    def encode(self) -> bytes:
        payload = self.data.encode() if isinstance(self.data, Verdict) else _tlv.attr(NFTA_DATA_VALUE, self.data)
        return _tlv.be32(_DREG, self.dreg) + _tlv.nest(_DATA, payload)

    @classmethod
    def decode(cls, attrs: dict[int, bytes]) -> Immediate:
        data = _tlv.parse_attrs(attrs[_DATA])
        value: Verdict | bytes
        value = Verdict.decode(data[NFTA_DATA_VERDICT]) if NFTA_DATA_VERDICT in data else data[NFTA_DATA_VALUE]
        return cls(value, _tlv.get_be32(attrs[_DREG]))
