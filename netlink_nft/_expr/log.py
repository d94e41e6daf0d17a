"""`log`: log the packet, to the kernel log (`level`) or to an nflog netlink group (`group`)."""

from __future__ import annotations

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
        def opt(kind: int, width: int) -> int | None:
            raw = attrs.get(kind)
            if raw is None:
                return None
            value = _tlv.get_be16(raw) if width == 2 else _tlv.get_be32(raw)
            return value or None if kind in (_SNAPLEN, _QTHRESHOLD, _FLAGS) else value

        prefix = attrs.get(_PREFIX)
        return cls(
            _tlv.get_str(prefix) if prefix else None,
            opt(_GROUP, 2),
            opt(_SNAPLEN, 4),
            opt(_QTHRESHOLD, 2),
            opt(_LEVEL, 4),
            opt(_FLAGS, 4),
        )
