"""A second, independent decoder: pyroute2's nftables message classes read our encoded batch, and what they see
agrees with the model it was built from (tables, chains, sets and their elements, every expression of every rule).

The expectations below are computed from the model values with the standard library (addresses packed by
`socket.inet_pton`, ports by `int.to_bytes`), not by netlink_nft's encoder. Interval concatenations are left out:
pyroute2 0.9.7 never returns from decoding a NEWSET with `NFTA_SET_DESC_CONCAT`.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Any

from pyroute2.netlink.nfnetlink import nftsocket

from netlink_nft import (
    ACCEPT,
    DROP,
    IFNAME,
    IIFNAME,
    INET_SERVICE,
    IP6_SADDR,
    IP_SADDR,
    IPV4_ADDR,
    IPV6_ADDR,
    TCP_DPORT,
    VERDICT,
    Bitwise,
    Chain,
    Cmp,
    Counter,
    Ct,
    CtState,
    Expr,
    Family,
    Hook,
    Immediate,
    Log,
    Lookup,
    Meta,
    Payload,
    Policy,
    Rule,
    Ruleset,
    Set,
    SetElement,
    Table,
    Verdict,
    between,
    ct_state,
    iifname,
    in_set,
    jump,
    replace_contents,
    rule,
    saddr,
    vmap,
)
from netlink_nft._datatypes import DataType

T = Table(Family.INET, "pod")
PEERS4 = Set(
    T,
    "peers4",
    (IPV4_ADDR,),
    interval=True,
    elements=(SetElement.network("10.1.0.0/16"), SetElement.interval("192.0.2.10", "192.0.2.20")),
)
PEERS6 = Set(T, "peers6", (IPV6_ADDR,), interval=True, elements=(SetElement.network("2001:db8::/64"),))
PAIRS = Set(
    T, "pairs", (IPV4_ADDR, INET_SERVICE), elements=(SetElement(("10.1.2.3", 80)), SetElement(("10.1.2.4", 443)))
)
DISPATCH = Set(T, "dispatch", (IFNAME,), data=VERDICT, elements=(SetElement("eth1", data=jump("ingress-eth1")),))
RULESET = Ruleset(
    T,
    (
        Chain(T, "input", Hook.INPUT, 0, Policy.ACCEPT),
        Chain(T, "output", Hook.OUTPUT, -10, Policy.DROP),
        Chain(T, "ingress-eth1"),
    ),
    (PEERS4, PEERS6, PAIRS, DISPATCH),
    (
        rule(T, "input", ct_state(CtState.ESTABLISHED, CtState.RELATED), ACCEPT),
        rule(T, "input", vmap(IIFNAME, "dispatch")),
        rule(
            T,
            "ingress-eth1",
            in_set(IP_SADDR, "peers4"),
            in_set(TCP_DPORT, [22, SetElement.interval(8000, 8080)]),
            ACCEPT,
        ),
        rule(T, "ingress-eth1", in_set(IP6_SADDR, "peers6"), between(TCP_DPORT, 1000, 2000), Counter(), ACCEPT),
        rule(T, "ingress-eth1", in_set((IP_SADDR, TCP_DPORT), "pairs"), ACCEPT, comment="pairs"),
        rule(T, "ingress-eth1", saddr("192.168.0.0/20"), iifname("eth1"), Log(prefix="deny: ", level=6), DROP),
    ),
)

_CLASSES = {
    0: nftsocket.nft_table_msg,
    3: nftsocket.nft_chain_msg,
    6: nftsocket.nft_rule_msg,
    9: nftsocket.nft_set_msg,
    12: nftsocket.nft_set_elem_list_msg,
}


def decoded_messages() -> list[tuple[int, Any]]:
    """(NFT_MSG_* type, pyroute2 message) for every object message of the encoded batch."""
    data = replace_contents(RULESET).encode(1).data
    out, offset = [], 0
    while offset < len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if kind >> 8 == 10 and kind & 0xFF in _CLASSES:  # the NEW* messages (flushes aside)
            msg = _CLASSES[kind & 0xFF](data[offset : offset + length])
            msg.decode()
            out.append((kind & 0xFF, msg))
        offset += (length + 3) & ~3
    return out


def of_kind(kind: int) -> list[Any]:
    return [msg for k, msg in decoded_messages() if k == kind]


def attrs(node: Any) -> dict[str, Any]:
    return dict((name, value) for name, value, *_ in node["attrs"])


def test_table_and_chains() -> None:
    (table,) = of_kind(0)
    assert table["nfgen_family"] == Family.INET and attrs(table)["NFTA_TABLE_NAME"] == "pod"
    chains = {attrs(m)["NFTA_CHAIN_NAME"]: attrs(m) for m in of_kind(3)}
    assert set(chains) == {c.name for c in RULESET.chains}
    for chain in RULESET.chains:
        got = chains[chain.name]
        assert got["NFTA_CHAIN_TABLE"] == "pod"
        if chain.hook is None:
            assert "NFTA_CHAIN_HOOK" not in got
            continue
        hook = attrs(got["NFTA_CHAIN_HOOK"])
        assert (hook["NFTA_HOOK_HOOKNUM"], hook["NFTA_HOOK_PRIORITY"]) == (int(chain.hook), chain.priority)
        assert (got["NFTA_CHAIN_POLICY"], got["NFTA_CHAIN_TYPE"]) == (int(chain.policy), "filter")


def _key_type(types: tuple[DataType, ...]) -> int:
    number = 0
    for t in types:
        number = number << 6 | t.type_id
    return number


def test_named_sets() -> None:
    sets = {attrs(m)["NFTA_SET_NAME"]: attrs(m) for m in of_kind(9)}
    assert {"peers4", "peers6", "pairs", "dispatch"} <= set(sets)
    for s in RULESET.sets:
        got = sets[s.name]
        assert got["NFTA_SET_TABLE"] == "pod"
        assert got["NFTA_SET_KEY_TYPE"] == _key_type(s.key)
        lengths = [t.length for t in s.key]
        assert got["NFTA_SET_KEY_LEN"] == (lengths[0] if len(lengths) == 1 else sum((n + 3) // 4 * 4 for n in lengths))
        flags = {"NFT_SET_INTERVAL"} if s.interval else set()
        if s.data is not None:
            flags.add("NFT_SET_MAP")
            assert got["NFTA_SET_DATA_TYPE"] == 0xFFFFFF00
        assert got["NFTA_SET_FLAGS"] == flags


def _pack(value: object) -> bytes:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return socket.inet_pton(socket.AF_INET if value.version == 4 else socket.AF_INET6, str(value))
    if isinstance(value, int):
        return value.to_bytes(2, "big")
    return str(value).encode().ljust(16, b"\0")


def _elements(set_name: str) -> list[tuple[bytes, bool, dict[str, Any]]]:
    out = []
    for msg in of_kind(12):
        if attrs(msg)["NFTA_SET_ELEM_LIST_SET"] != set_name:
            continue
        for element in attrs(msg)["NFTA_SET_ELEM_LIST_ELEMENTS"]:
            got = attrs(element)
            key = attrs(got["NFTA_SET_ELEM_KEY"])["NFTA_DATA_VALUE"]
            out.append((key, 1 in got.get("NFTA_SET_ELEM_FLAGS", ()), got))
    return out


def test_interval_elements_are_start_and_end_after_last() -> None:
    for s in (PEERS4, PEERS6):
        expected = []
        for e in s.elements:
            first, last = int(e.key), int(e.key if e.end is None else e.end)  # type: ignore[arg-type]
            width = len(_pack(e.key))
            expected += [(first.to_bytes(width, "big"), False), ((last + 1).to_bytes(width, "big"), True)]
        assert [(key, end) for key, end, _ in _elements(s.name)] == expected


def test_concatenation_and_verdict_map_elements() -> None:
    keys = [e.key for e in PAIRS.elements]
    expected = [_pack(k[0]) + _pack(k[1]).ljust(4, b"\0") for k in keys if isinstance(k, tuple)]
    assert len(expected) == len(keys) == 2
    assert [key for key, _, _ in _elements("pairs")] == expected
    ((key, _, got),) = _elements("dispatch")
    assert key == _pack("eth1")
    verdict = attrs(attrs(got["NFTA_SET_ELEM_DATA"])["NFTA_DATA_VERDICT"])
    assert verdict == {"NFTA_VERDICT_CODE": "NFT_JUMP", "NFTA_VERDICT_CHAIN": "ingress-eth1"}


_VERDICTS = {"ACCEPT": "NF_ACCEPT", "DROP": "NF_DROP", "JUMP": "NFT_JUMP", "GOTO": "NFT_GOTO", "RETURN": "NFT_RETURN"}
_BASES = {0: "NFT_PAYLOAD_LL_HEADER", 1: "NFT_PAYLOAD_NETWORK_HEADER", 2: "NFT_PAYLOAD_TRANSPORT_HEADER"}
_LEVELS = {4: "NFT_LOGLEVEL_WARNING", 6: "NFT_LOGLEVEL_INFO"}


def _reg(number: int) -> str:
    return "NFT_REG_VERDICT" if number == 0 else f"NFT_REG_{number}" if number <= 4 else f"NFT_REG32_{number - 8:02d}"


def _verdict(v: Verdict) -> dict[str, Any]:
    out: dict[str, Any] = {"NFTA_VERDICT_CODE": _VERDICTS[v.code.name]}
    if v.chain is not None:
        out["NFTA_VERDICT_CHAIN"] = v.chain
    return out


def _value(node: Any) -> bytes:
    return attrs(node)["NFTA_DATA_VALUE"]  # type: ignore[no-any-return]


def expected(expr: Expr) -> dict[str, Any]:
    """What pyroute2 should read from one of our expressions, written from the model's fields."""
    match expr:
        case Payload():
            return {
                "NFTA_PAYLOAD_DREG": _reg(expr.dreg),
                "NFTA_PAYLOAD_BASE": _BASES[expr.base],
                "NFTA_PAYLOAD_OFFSET": expr.offset,
                "NFTA_PAYLOAD_LEN": expr.length,
            }
        case Meta():
            return {"NFTA_META_KEY": f"NFT_META_{expr.key.name}", "NFTA_META_DREG": _reg(expr.dreg)}
        case Ct():
            return {"NFTA_CT_KEY": f"NFT_CT_{expr.key.name}", "NFTA_CT_DREG": _reg(expr.dreg)}
        case Cmp():
            return {"NFTA_CMP_SREG": _reg(expr.sreg), "NFTA_CMP_OP": f"NFT_CMP_{expr.op.name}", "data": expr.data}
        case Bitwise():
            return {"sreg": _reg(expr.sreg), "dreg": _reg(expr.dreg), "mask": expr.mask, "xor": expr.xor}
        case Lookup():
            out = {
                "NFTA_LOOKUP_SREG": _reg(expr.sreg),
                "NFTA_LOOKUP_SET": expr.set if isinstance(expr.set, str) else "__set%d",
            }
            if expr.dreg is not None:
                out["NFTA_LOOKUP_DREG"] = _reg(expr.dreg)
            return out
        case Immediate():
            assert isinstance(expr.data, Verdict)
            return {"NFTA_IMMEDIATE_DREG": _reg(expr.dreg), "verdict": _verdict(expr.data)}
        case Counter():
            return {}
        case Log():
            return {"NFTA_LOG_PREFIX": expr.prefix, "NFTA_LOG_LEVEL": _LEVELS[expr.level or 4]}
    raise AssertionError(f"no expectation for {expr!r}")


def seen(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """pyroute2's reading, with nested data values flattened to the keys of `expected`."""
    if name == "cmp":
        data["data"] = _value(data.pop("NFTA_CMP_DATA"))
    elif name == "bitwise":
        data = {
            "sreg": data["NFTA_BITWISE_SREG"],
            "dreg": data["NFTA_BITWISE_DREG"],
            "mask": _value(data["NFTA_BITWISE_MASK"]),
            "xor": _value(data["NFTA_BITWISE_XOR"]),
        }
        assert len(data["mask"]) == 4 or len(data["mask"]) == len(data["xor"])
    elif name == "lookup":
        data.pop("NFTA_LOOKUP_SET_ID", None)  # transaction ids: checked by the kernel tests
    elif name == "immediate":
        nested = attrs(data.pop("NFTA_IMMEDIATE_DATA"))
        data["verdict"] = attrs(nested["NFTA_DATA_VERDICT"])
    return data


def test_every_expression_of_every_rule() -> None:
    decoded = of_kind(6)
    assert len(decoded) == len(RULESET.rules)
    for model, msg in zip(RULESET.rules, decoded, strict=True):
        got = attrs(msg)
        assert (got["NFTA_RULE_TABLE"], got["NFTA_RULE_CHAIN"]) == ("pod", model.chain)
        assert got.get("NFTA_RULE_USERDATA") == model.comment
        expressions = got["NFTA_RULE_EXPRESSIONS"]
        assert [attrs(e)["NFTA_EXPR_NAME"] for e in expressions] == [e.name for e in model.exprs]
        for expr, element in zip(model.exprs, expressions, strict=True):
            name, data = attrs(element)["NFTA_EXPR_NAME"], attrs(attrs(element).get("NFTA_EXPR_DATA", {"attrs": []}))
            assert seen(name, data) == expected(expr), f"{model}: {expr!r}"


def test_the_representative_ruleset_covers_what_trinet_uses() -> None:
    used = {type(e) for r in RULESET.rules for e in r.exprs}
    assert used >= {Payload, Meta, Ct, Cmp, Bitwise, Lookup, Immediate, Counter, Log}
    assert any(isinstance(e, Lookup) and e.dreg == 0 for r in RULESET.rules for e in r.exprs)  # a verdict map
    assert isinstance(RULESET.rules[0], Rule)
