"""Expressions, one module each, with symmetric encode/decode and a registry by kernel name."""

from netlink_nft._expr._base import REGISTRY, Expr, Unknown, decode_expr, encode_expr
from netlink_nft._expr.bitwise import Bitwise
from netlink_nft._expr.cmp import Cmp, CmpOp
from netlink_nft._expr.counter import Counter
from netlink_nft._expr.ct import Ct, CtKey, CtState
from netlink_nft._expr.immediate import Immediate
from netlink_nft._expr.log import Log
from netlink_nft._expr.lookup import Lookup
from netlink_nft._expr.meta import Meta, MetaKey
from netlink_nft._expr.payload import Payload, PayloadBase
from netlink_nft._expr.range import Range, RangeOp

__all__ = [
    "REGISTRY",
    "Bitwise",
    "Cmp",
    "CmpOp",
    "Counter",
    "Ct",
    "CtKey",
    "CtState",
    "Expr",
    "Immediate",
    "Log",
    "Lookup",
    "Meta",
    "MetaKey",
    "Payload",
    "PayloadBase",
    "Range",
    "RangeOp",
    "Unknown",
    "decode_expr",
    "encode_expr",
]
