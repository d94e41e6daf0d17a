"""nft data types of set keys and map data: their wire form and their canonical Python values.

Canonical values are what the model stores and what a dump yields: `IPv4Address`, `IPv6Address`, `int` (protocols,
ports) and `str` (interface names). `normalise()` accepts a few friendlier spellings (an address as text).
"""

from __future__ import annotations

import ipaddress
import operator
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import repeat
from typing import ClassVar, Literal

from netlink_nft._const import NFT_BYTEORDER_BIG, NFT_BYTEORDER_HOST, NFT_DATA_VERDICT
from netlink_nft._errors import InvalidValue

Value = ipaddress.IPv4Address | ipaddress.IPv6Address | int | str

IFNAMSIZ = 16
# the byte order of `int.to_bytes` mapped over values (endless: map stops with the values)
_BIG: repeat[Literal["big"]] = repeat("big")


@dataclass(frozen=True)
class DataType:
    """An nft data type: `type_id` is nft's datatype number (`NFTA_SET_KEY_TYPE`), `length` its size in bytes."""

    name: str
    type_id: int
    length: int
    byteorder: ClassVar[int] = NFT_BYTEORDER_BIG

    def normalise(self, value: object) -> Value:
        raise NotImplementedError

    def to_bytes(self, value: Value) -> bytes:
        raise NotImplementedError

    def from_bytes(self, raw: bytes) -> Value:
        raise NotImplementedError

    def to_int(self, value: Value) -> int:
        """The key as a big-endian number (interval arithmetic)."""
        return int.from_bytes(self.to_bytes(value), "big")

    def from_int(self, number: int) -> Value:
        return self.from_bytes(number.to_bytes(self.length, "big"))

    def with_int(self, value: object) -> tuple[Value, int]:
        """The canonical value and its number, in one call (the hot path of interval merging)."""
        canonical = self.normalise(value)
        return canonical, self.to_int(canonical)

    def padded_bytes(self, values: Iterable[Value]) -> list[bytes]:
        """The wire form of each of `values`, padded with zeros to a multiple of 4 bytes (a register, the layout
        of a concatenation's field); the element codec's bulk path."""
        pad = bytes(-self.length & 3)
        return [self.to_bytes(value) + pad for value in values]

    def __repr__(self) -> str:
        return self.name.upper()


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _fast_constructor(cls: type[Address]) -> Callable[[int], Address]:
    """Build addresses from in-range numbers without `ipaddress`'s argument dispatch (3x faster, and sets of
    100,000 ranges need 200,000 of them). Fills the same slots as the constructor; used only if the result is
    indistinguishable from the constructor's, checked once here."""

    def fast(number: int) -> Address:
        address = object.__new__(cls)
        address._ip = number  # type: ignore[union-attr]
        if cls is ipaddress.IPv6Address:
            address._scope_id = None  # type: ignore[union-attr]
        return address

    probe = 0x0A000102
    try:
        same = (
            fast(probe) == cls(probe) and hash(fast(probe)) == hash(cls(probe)) and str(fast(probe)) == str(cls(probe))
        )
    except Exception:
        same = False
    return fast if same else cls


_MAKE = {cls: _fast_constructor(cls) for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address)}


def _number_getter() -> Callable[[Address], int]:
    """An address's number: its `_ip` slot read directly where that is what `int()` gives (one attribute read
    instead of the `__int__` and `packed` Python calls; checked once here), else `int()`."""
    get_ip: Callable[[Address], int] = operator.attrgetter("_ip")
    try:
        probes = (ipaddress.IPv4Address("10.1.2.3"), ipaddress.IPv6Address("2001:db8::1"))
        if all(get_ip(a) == int(a) and get_ip(a).to_bytes(len(a.packed), "big") == a.packed for a in probes):
            return get_ip
    except Exception:
        pass
    return int


_number = _number_getter()


@dataclass(frozen=True, repr=False)
class _Address(DataType):
    _class: ClassVar[type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]]
    _af: ClassVar[int]

    def normalise(self, value: object) -> Value:
        if isinstance(value, self._class):
            return value
        if isinstance(value, str):
            try:  # inet_pton is ~10x faster than ipaddress's parser, and as strict
                return _MAKE[self._class](int.from_bytes(socket.inet_pton(self._af, value), "big"))
            except OSError:
                pass
        if isinstance(value, int) and not isinstance(value, bool):
            return self._class(value)
        raise InvalidValue(f"{value!r} is not an {self.name}")

    def to_bytes(self, value: Value) -> bytes:
        return _number(value).to_bytes(self.length, "big")  # type: ignore[arg-type]

    def from_bytes(self, raw: bytes) -> Value:
        return self._class(raw)

    def to_int(self, value: Value) -> int:
        return _number(value)  # type: ignore[arg-type]

    def padded_bytes(self, values: Iterable[Value]) -> list[bytes]:
        # 4 or 16 bytes: no padding; numbers and bytes made in C, no Python call per value
        try:
            return list(map(int.to_bytes, map(_number, values), repeat(self.length), _BIG))  # type: ignore[arg-type]
        except (OverflowError, AttributeError, TypeError):  # a value that skipped `normalise` (`Set.of_canonical`)
            raise InvalidValue(f"a value of this set is not an {self.name}") from None

    def from_int(self, number: int) -> Value:
        if not 0 <= number < 1 << (8 * self.length):
            raise InvalidValue(f"{number} is not an {self.name}")
        return _MAKE[self._class](number)

    @property
    def make(self) -> Callable[[int], Value]:
        """The address of a number known to be in range (no check)."""
        return _MAKE[self._class]

    def with_int(self, value: object) -> tuple[Value, int]:
        if type(value) is self._class:
            return value, _number(value)  # type: ignore[arg-type]
        if type(value) is int:  # `from_int` written out: the hot path of sets built from numbers
            if not 0 <= value < 1 << (8 * self.length):
                raise InvalidValue(f"{value} is not an {self.name}")
            return _MAKE[self._class](value), value
        canonical = self.normalise(value)
        return canonical, _number(canonical)  # type: ignore[arg-type]

    def parse_int(self, text: str) -> int:
        """The number of an address written as text, without building the address."""
        try:
            return int.from_bytes(socket.inet_pton(self._af, text), "big")
        except OSError:
            raise InvalidValue(f"{text!r} is not an {self.name}") from None


@dataclass(frozen=True, repr=False)
class _IPv4(_Address):
    _class = ipaddress.IPv4Address
    _af = socket.AF_INET


@dataclass(frozen=True, repr=False)
class _IPv6(_Address):
    _class = ipaddress.IPv6Address
    _af = socket.AF_INET6


@dataclass(frozen=True, repr=False)
class _Integer(DataType):
    def normalise(self, value: object) -> Value:
        if not isinstance(value, int) or not 0 <= value < 1 << (8 * self.length):
            raise InvalidValue(f"{value!r} is not a valid {self.name}")
        return value

    def to_bytes(self, value: Value) -> bytes:
        return value.to_bytes(self.length, "big")  # type: ignore[union-attr]

    def from_bytes(self, raw: bytes) -> Value:
        return int.from_bytes(raw[: self.length], "big")

    def to_int(self, value: Value) -> int:
        return value  # type: ignore[return-value]

    def padded_bytes(self, values: Iterable[Value]) -> list[bytes]:
        # the padding as low zero bits of a wider number: a value out of range still fails (OverflowError)
        width = (self.length + 3) & ~3
        numbers = map(operator.lshift, values, repeat(8 * (width - self.length)))  # type: ignore[arg-type]
        try:
            return list(map(int.to_bytes, numbers, repeat(width), _BIG))
        except (OverflowError, TypeError, ValueError):  # a value that skipped `normalise` (`Set.of_canonical`)
            raise InvalidValue(f"a value of this set is not a valid {self.name}") from None

    def from_int(self, number: int) -> Value:
        return number

    def with_int(self, value: object) -> tuple[Value, int]:
        number = self.normalise(value)
        return number, number  # type: ignore[return-value]


@dataclass(frozen=True, repr=False)
class _Ifname(DataType):
    byteorder: ClassVar[int] = NFT_BYTEORDER_HOST

    def normalise(self, value: object) -> Value:
        if not isinstance(value, str) or not 0 < len(value.encode()) < IFNAMSIZ:
            raise InvalidValue(f"{value!r} is not an interface name")
        return value

    def to_bytes(self, value: Value) -> bytes:
        raw = value.encode()  # type: ignore[union-attr]
        if len(raw) >= IFNAMSIZ:  # a value that skipped `normalise` (`Set.of_canonical`): never a longer key
            raise InvalidValue(f"{value!r} is not an interface name")
        return raw.ljust(IFNAMSIZ, b"\0")

    def with_int(self, value: object) -> tuple[Value, int]:
        name = self.normalise(value)
        return name, int.from_bytes(name.encode().ljust(IFNAMSIZ, b"\0"), "big")  # type: ignore[union-attr]

    def from_bytes(self, raw: bytes) -> Value:
        return raw.split(b"\0", 1)[0].decode()


@dataclass(frozen=True, repr=False)
class _Verdict(DataType):
    """Map data type of verdict maps; values are `Verdict`s, encoded by the element codec."""


_IPV4_ADDR = _IPv4("ipv4_addr", 7, 4)
_IPV6_ADDR = _IPv6("ipv6_addr", 8, 16)
IPV4_ADDR: DataType = _IPV4_ADDR
IPV6_ADDR: DataType = _IPV6_ADDR
INET_PROTO: DataType = _Integer("inet_proto", 12, 1)
INET_SERVICE: DataType = _Integer("inet_service", 13, 2)
IFNAME: DataType = _Ifname("ifname", 41, IFNAMSIZ)
VERDICT: DataType = _Verdict("verdict", NFT_DATA_VERDICT, 0)

KEY_TYPES: dict[int, DataType] = {t.type_id: t for t in (IPV4_ADDR, IPV6_ADDR, INET_PROTO, INET_SERVICE, IFNAME)}
CONCAT_BITS = 6


def concat_type_id(types: tuple[DataType, ...]) -> int:
    """nft's key type of a concatenation: the datatype ids, 6 bits each, first field most significant."""
    result = 0
    for t in types:
        result = (result << CONCAT_BITS) | t.type_id
    return result


def opaque(type_id: int, length: int) -> DataType:
    """A data type this library does not model (`ether_addr`, `mark`, ...): values are big-endian numbers. It is
    never equal to one of ours, so a set of it read back never equals a set we build."""
    return _Integer(f"type_{type_id}", type_id, length)


def split_type_id(type_id: int, key_len: int) -> tuple[DataType, ...]:
    """Inverse of `concat_type_id` (uses the key length to tell a single type from a concatenation); a type we
    do not model (or a concatenation with one) becomes one `opaque` type of the whole key."""
    if type_id in KEY_TYPES and KEY_TYPES[type_id].length == key_len:
        return (KEY_TYPES[type_id],)
    fields: list[DataType] = []
    rest = type_id
    while rest:
        known = KEY_TYPES.get(rest & ((1 << CONCAT_BITS) - 1))
        if known is None:
            return (opaque(type_id, key_len),)
        fields.append(known)
        rest >>= CONCAT_BITS
    fields.reverse()
    if sum(padded(t.length) for t in fields) != key_len or len(fields) < 2:
        return (opaque(type_id, key_len),)
    return tuple(fields)


def padded(length: int) -> int:
    """Register space of a concatenation field: its length rounded up to 4 bytes."""
    return (length + 3) & ~3


ICMP_TYPE: DataType = _Integer("icmp_type", 14, 1)
ICMPV6_TYPE: DataType = _Integer("icmpv6_type", 29, 1)
NFPROTO: DataType = _Integer("nf_proto", 39, 1)
KEY_TYPES.update({t.type_id: t for t in (ICMP_TYPE, ICMPV6_TYPE, NFPROTO)})
