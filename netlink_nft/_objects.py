"""Wire form of tables, chains and rules (message bodies), and decoding them from dump replies."""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable

from netlink_nft import _tlv
from netlink_nft._const import (
    NFTA_CHAIN_HOOK,
    NFTA_CHAIN_NAME,
    NFTA_CHAIN_POLICY,
    NFTA_CHAIN_TABLE,
    NFTA_CHAIN_TYPE,
    NFTA_HOOK_HOOKNUM,
    NFTA_HOOK_PRIORITY,
    NFTA_RULE_CHAIN,
    NFTA_RULE_EXPRESSIONS,
    NFTA_RULE_HANDLE,
    NFTA_RULE_TABLE,
    NFTA_RULE_USERDATA,
    NFTA_TABLE_FLAGS,
    NFTA_TABLE_NAME,
    NFTNL_UDATA_RULE_COMMENT,
    NLA_F_NESTED,
)
from netlink_nft._errors import InvalidValue
from netlink_nft._expr import decode_expr, encode_expr
from netlink_nft._model import Chain, Hook, Policy, Rule, Table


def encode_table(table: Table) -> bytes:
    return _tlv.strz(NFTA_TABLE_NAME, table.name) + _tlv.be32(NFTA_TABLE_FLAGS, 0)


def encode_table_ref(table: Table) -> bytes:
    return _tlv.strz(NFTA_TABLE_NAME, table.name)


# a base chain's policy and hook nest: attribute headers in host order, values big-endian (packed as 4 bytes each)
_BASE_CHAIN_TAIL = struct.Struct("=HH4sHHHH4sHH4s")


def encode_chain(chain: Chain) -> bytes:
    d = chain.__dict__
    out = _tlv.strz(NFTA_CHAIN_TABLE, d["table"].name) + _tlv.strz(NFTA_CHAIN_NAME, d["name"])
    hook = d["hook"]
    if hook is not None:
        if not -(1 << 31) <= d["priority"] < 1 << 31:
            raise InvalidValue(f"{chain}: priority {d['priority']} is not a 32-bit signed number")
        out += _tlv.strz(NFTA_CHAIN_TYPE, d["type"]) + _BASE_CHAIN_TAIL.pack(
            8,
            NFTA_CHAIN_POLICY,
            d["policy"].to_bytes(4, "big"),
            20,
            NFTA_CHAIN_HOOK | NLA_F_NESTED,
            8,
            NFTA_HOOK_HOOKNUM,
            hook.to_bytes(4, "big"),
            8,
            NFTA_HOOK_PRIORITY,
            d["priority"].to_bytes(4, "big", signed=True),
        )
    return out


def encode_chain_ref(chain: Chain) -> bytes:
    return _tlv.strz(NFTA_CHAIN_TABLE, chain.table.name) + _tlv.strz(NFTA_CHAIN_NAME, chain.name)


def encode_flush(table: Table, chain: str | None) -> bytes:
    """DELRULE body that deletes every rule of a chain (or of the whole table)."""
    out = _tlv.strz(NFTA_RULE_TABLE, table.name)
    if chain is not None:
        out += _tlv.strz(NFTA_RULE_CHAIN, chain)
    return out


def encode_rule(rule: Rule, exprs: Iterable[bytes] | None = None) -> bytes:
    """NEWRULE body; `exprs` are the encoded expressions if the caller has them (lookups bound to set ids)."""
    expressions = _tlv.nest(NFTA_RULE_EXPRESSIONS, *(exprs if exprs is not None else map(encode_expr, rule.exprs)))
    return rule_head(rule) + expressions + rule_tail(rule)


def rule_head(rule: Rule) -> bytes:
    """NEWRULE's attributes before the expression list."""
    out = rule_place(rule.table.name, rule.chain)
    if rule.handle is not None:
        out += _tlv.be64(NFTA_RULE_HANDLE, rule.handle)
    return out


@functools.lru_cache(maxsize=4096)  # a daemon's tables and chains: every rule of a chain starts with these
def rule_place(table: str, chain: str) -> bytes:
    """The table and chain attributes of a rule's message."""
    return _tlv.strz(NFTA_RULE_TABLE, table) + _tlv.strz(NFTA_RULE_CHAIN, chain)


_USERDATA_HEADER = struct.Struct("=HHBB")  # the attribute's header, then the comment's udata type and length
_NUL_AND_PADDING = (b"\0", b"\0\0\0\0", b"\0\0\0", b"\0\0")  # the text's NUL, then zeros to 4 bytes, by length % 4


def rule_tail(rule: Rule) -> bytes:
    """NEWRULE's attributes after the expression list: the comment, as udata (type, length, NUL-terminated text),
    written out in one function: most of a daemon's rules carry one."""
    comment = rule.comment
    if comment is None:
        return b""
    text = comment.encode()
    if len(text) > 253:  # the kernel takes at most 256 bytes of udata: type, length, text, NUL
        raise InvalidValue("rule comment longer than 253 bytes")
    length = 7 + len(text)  # attribute header, udata type and length, the text and its NUL
    header = _USERDATA_HEADER.pack(length, NFTA_RULE_USERDATA, NFTNL_UDATA_RULE_COMMENT, len(text) + 1)
    return b"".join((header, text, _NUL_AND_PADDING[length & 3]))


def encode_rule_ref(rule: Rule) -> bytes:
    """DELRULE body for one rule (needs its kernel handle)."""
    if rule.handle is None:
        raise InvalidValue(f"{rule} has no handle: only rules read back from the kernel can be deleted one by one")
    return (
        _tlv.strz(NFTA_RULE_TABLE, rule.table.name)
        + _tlv.strz(NFTA_RULE_CHAIN, rule.chain)
        + _tlv.be64(NFTA_RULE_HANDLE, rule.handle)
    )


# --- decoding ------------------------------------------------------------------------------------------------------

_HOOKS = frozenset(Hook)
_POLICIES = frozenset(Policy)


def decode_chain(table: Table, attrs: dict[int, bytes]) -> Chain:
    name = _tlv.get_str(attrs[NFTA_CHAIN_NAME])
    if NFTA_CHAIN_HOOK not in attrs:
        return Chain(table, name)
    hook = _tlv.parse_attrs(attrs[NFTA_CHAIN_HOOK])
    number, policy = _tlv.get_be32(hook[NFTA_HOOK_HOOKNUM]), _tlv.get_be32(attrs.get(NFTA_CHAIN_POLICY, b"\0\0\0\1"))
    kind = _tlv.get_str(attrs.get(NFTA_CHAIN_TYPE, b"?"))
    if number not in _HOOKS or policy not in _POLICIES:  # not ours (another family's hook): never equal to ours
        return Chain(table, name, Hook.INPUT, 0, Policy.ACCEPT, f"{kind} (hook {number}, policy {policy})")
    return Chain(table, name, Hook(number), _tlv.get_be32s(hook[NFTA_HOOK_PRIORITY]), Policy(policy), kind)


def _comment(udata: bytes | None) -> str | None:
    offset = 0
    while udata and offset + 2 <= len(udata):
        kind, length = udata[offset], udata[offset + 1]
        if kind == NFTNL_UDATA_RULE_COMMENT:
            return udata[offset + 2 : offset + 2 + length].split(b"\0", 1)[0].decode(errors="replace")
        offset += 2 + length
    return None


def decode_rule(table: Table, attrs: dict[int, bytes]) -> Rule:
    exprs = tuple(decode_expr(item) for _, item in _tlv.iter_attrs(attrs.get(NFTA_RULE_EXPRESSIONS, b"")))
    handle = attrs.get(NFTA_RULE_HANDLE)
    return Rule(
        table,
        _tlv.get_str(attrs[NFTA_RULE_CHAIN]),
        exprs,
        _comment(attrs.get(NFTA_RULE_USERDATA)),
        None if handle is None else _tlv.get_be64(handle),
    )
