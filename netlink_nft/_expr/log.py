"""`log`: log the packet, to the kernel log (`level`) or to an nflog netlink group (`group`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netlink_nft import _tlv
from netlink_nft._expr._base import Expr, register

_GROUP, _PREFIX, _SNAPLEN, _QTHRESHOLD, _LEVEL, _FLAGS = 1, 2, 3, 4, 5, 6
_DEFAULT_LEVEL = 4  # warn; the kernel reports it even when it was not sent


@register
@dataclass(frozen=True)
class Log(Expr):
    """`level` None means the default (warn); `group`, `snaplen` and `qthreshold` select nflog."""

    name = "log"
    prefix: str | None = None
    group: int | None = None
    snaplen: int | None = None
    qthreshold: int | None = None
    level: int | None = None
    flags: int | None = None

    def __post_init__(self) -> None:
        if self.level == _DEFAULT_LEVEL:
            object.__setattr__(self, "level", None)

    def encode(self) -> bytes:
        out = b""
        if self.prefix is not None:
            out += _tlv.strz(_PREFIX, self.prefix)
        if self.group is not None:
            out += _tlv.be16(_GROUP, self.group)
        if self.snaplen is not None:
            out += _tlv.be32(_SNAPLEN, self.snaplen)
        if self.qthreshold is not None:
            out += _tlv.be16(_QTHRESHOLD, self.qthreshold)
        if self.level is not None:
            out += _tlv.be32(_LEVEL, self.level)
        if self.flags is not None:
            out += _tlv.be32(_FLAGS, self.flags)
        return out

    @classmethod
    def decode(cls, attrs: dict[int, bytes]) -> Log:
        def number(kind: int, get: Callable[[bytes], int]) -> int | None:
            raw = attrs.get(kind)
            return None if raw is None else get(raw)

        prefix = attrs.get(_PREFIX)
        return cls(
            prefix=_tlv.get_str(prefix) if prefix else None,
            group=number(_GROUP, _tlv.get_be16),
            snaplen=number(_SNAPLEN, _tlv.get_be32) or None,  # 0 is how the kernel reports "not set"
            qthreshold=number(_QTHRESHOLD, _tlv.get_be16) or None,
            level=number(_LEVEL, _tlv.get_be32),
            flags=number(_FLAGS, _tlv.get_be32) or None,
        )
