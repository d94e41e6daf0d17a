"""`counter`: count packets and bytes. The counts are state, not identity: they do not take part in `==`."""

from __future__ import annotations

from dataclasses import dataclass, field

from netlink_nft import _tlv
from netlink_nft._expr._base import Expr, register

_BYTES, _PACKETS = 1, 2


@register
@dataclass(frozen=True)
class Counter(Expr):
    name = "counter"
    packets: int = field(default=0, compare=False)
    nbytes: int = field(default=0, compare=False)

    def encode(self) -> bytes:
        return b""  # like nft: start from zero without sending the counts

    @classmethod
    def decode(cls, attrs: dict[int, bytes]) -> Counter:
        return cls(_tlv.get_be64(attrs.get(_PACKETS, bytes(8))), _tlv.get_be64(attrs.get(_BYTES, bytes(8))))
