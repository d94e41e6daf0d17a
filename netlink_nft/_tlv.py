"""Netlink attribute (TLV) packing and parsing. Pure functions over bytes.

Attribute headers are host order (`nla_len`, `nla_type`); nf_tables integer payloads are big-endian.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator

from netlink_nft._const import NLA_F_NESTED, NLA_TYPE_MASK
from netlink_nft._errors import InvalidValue

_HDR = struct.Struct("=HH")
_U8 = struct.Struct("B")
_BE16 = struct.Struct(">H")
_BE32 = struct.Struct(">I")
_BE32S = struct.Struct(">i")
_BE64 = struct.Struct(">Q")
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")


def attr(kind: int, payload: bytes) -> bytes:
    """One attribute: header, payload, zero padding to 4 bytes."""
    length = 4 + len(payload)
    return _HDR.pack(length, kind) + payload + _PAD[length & 3]


def nest(kind: int, *children: bytes) -> bytes:
    """A nested attribute (flagged `NLA_F_NESTED`, as libnftnl sends it)."""
    return attr(kind | NLA_F_NESTED, b"".join(children))


@functools.lru_cache(maxsize=4096)
def strz(kind: int, text: str) -> bytes:
    """A NUL-terminated string attribute (memoised: table, chain and set names repeat in every message)."""
    return attr(kind, text.encode() + b"\0")


def u8(kind: int, value: int) -> bytes:
    return attr(kind, _U8.pack(value))


def be16(kind: int, value: int) -> bytes:
    return attr(kind, _BE16.pack(value))


def be32(kind: int, value: int) -> bytes:
    return _HDR.pack(8, kind) + _BE32.pack(value)


def be32s(kind: int, value: int) -> bytes:
    return _HDR.pack(8, kind) + _BE32S.pack(value)


def be64(kind: int, value: int) -> bytes:
    return _HDR.pack(12, kind) + _BE64.pack(value)


def iter_attrs(buf: bytes, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yield (type without flags, payload) for each attribute of `buf[offset:]`."""
    end = len(buf)
    while offset + 4 <= end:
        length, kind = _HDR.unpack_from(buf, offset)
        if length < 4:
            raise InvalidValue(f"malformed netlink attribute at offset {offset}")
        yield kind & NLA_TYPE_MASK, buf[offset + 4 : offset + length]
        offset += (length + 3) & ~3


def parse_attrs(buf: bytes, offset: int = 0) -> dict[int, bytes]:
    """Attributes of `buf[offset:]` by type (the last one wins if a type repeats)."""
    return dict(iter_attrs(buf, offset))


def get_str(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode(errors="replace")


def get_be16(payload: bytes) -> int:
    return int(_BE16.unpack_from(payload)[0])


def get_be32(payload: bytes) -> int:
    return int(_BE32.unpack_from(payload)[0])


def get_be32s(payload: bytes) -> int:
    return int(_BE32S.unpack_from(payload)[0])


def get_be64(payload: bytes) -> int:
    return int(_BE64.unpack_from(payload)[0])
