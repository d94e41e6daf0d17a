"""The expression protocol and the registry that maps kernel expression names to classes.

Every expression is a frozen dataclass with a class-level kernel `name`, `encode()` giving the attributes inside
`NFTA_EXPR_DATA`, and `decode()` building the same value back from those attributes (as dumped by the kernel).
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from netlink_nft import _tlv
from netlink_nft._const import NFTA_DATA_VALUE, NFTA_EXPR_DATA, NFTA_EXPR_NAME, NFTA_LIST_ELEM


class Expr:
    """Base class of expressions."""

    name: ClassVar[str]
    # Equal values encode to equal bytes, so encodings can be cached (not so when a field is left out of `==`).
    memoisable: ClassVar[bool] = True
    # The encoding `encode_expr` keeps on a memoisable expression (an instance attribute); None until then.
    _encoded: ClassVar[bytes | None] = None

    def encode(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode(cls, attrs: dict[int, bytes]) -> Expr:
        raise NotImplementedError


_E = TypeVar("_E", bound=type[Expr])
REGISTRY: dict[str, type[Expr]] = {}


def register(cls: _E) -> _E:
    REGISTRY[cls.name] = cls
    return cls


@dataclass(frozen=True)
class Unknown(Expr):
    """An expression this library does not model (or one of ours with a value it does not know, such as `meta
    priority`), kept verbatim: a dump never fails, and it never compares equal to anything the matchers build."""

    name: str  # type: ignore[misc]
    data: bytes

    def encode(self) -> bytes:
        return self.data


def encode_expr(expr: Expr) -> bytes:
    """One `NFTA_LIST_ELEM` of a rule's expression list.

    Kept on the expression too (an attribute outside its fields; the value is frozen): the matchers share their
    expressions between rules, and an attribute look-up is cheaper than hashing the expression for the
    process-wide cache.
    """
    if not expr.memoisable:
        return _encode(expr)
    encoded = expr._encoded
    if encoded is None:
        encoded = _encode_memoised(expr)
        object.__setattr__(expr, "_encoded", encoded)  # not `__dict__`: that would make the instance build one
    return encoded


def _encode(expr: Expr) -> bytes:
    return _tlv.nest(NFTA_LIST_ELEM, _tlv.strz(NFTA_EXPR_NAME, expr.name), _tlv.nest(NFTA_EXPR_DATA, expr.encode()))


_encode_memoised = functools.lru_cache(maxsize=8192)(_encode)  # rulesets repeat guards, loads and verdicts


def decode_expr(payload: bytes) -> Expr:
    """An expression from the payload of one `NFTA_LIST_ELEM`."""
    attrs = _tlv.parse_attrs(payload)
    name = _tlv.get_str(attrs[NFTA_EXPR_NAME])
    data = attrs.get(NFTA_EXPR_DATA, b"")
    cls = REGISTRY.get(name)
    if cls is None:
        return Unknown(name, data)
    try:
        return cls.decode(_tlv.parse_attrs(data))
    except (ValueError, KeyError, IndexError, struct.error):  # a value or layout we do not model (meta priority)
        return Unknown(name, data)


def value_nest(kind: int, data: bytes) -> bytes:
    """An `nft_data` nest holding a plain value (`NFTA_DATA_VALUE`)."""
    return _tlv.nest(kind, _tlv.attr(NFTA_DATA_VALUE, data))


def value_of(nest_payload: bytes) -> bytes:
    """The value inside an `nft_data` nest."""
    return _tlv.parse_attrs(nest_payload)[NFTA_DATA_VALUE]
