"""Pure encode/decode: every expression, set elements (rbtree, pipapo, maps), chunking, batch framing and tags."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netlink_nft import (
    ACCEPT,
    DROP,
    IFNAME,
    INET_SERVICE,
    IPV4_ADDR,
    IPV6_ADDR,
    VERDICT,
    Batch,
    Bitwise,
    Chain,
    Cmp,
    CmpOp,
    Counter,
    Ct,
    CtKey,
    DataType,
    Expr,
    Family,
    Hook,
    Immediate,
    Log,
    Lookup,
    Meta,
    MetaKey,
    Payload,
    PayloadBase,
    Policy,
    Range,
    RangeOp,
    Rule,
    Set,
    SetElement,
    Table,
    Unknown,
    _objects,
    _sets,
    _tlv,
    jump,
)
from netlink_nft._const import (
    NFNL_BATCH_GENID,
    NFT_MSG_NEWSETELEM,
    NFTA_CHAIN_HOOK,
    NFTA_CHAIN_POLICY,
    NFTA_HOOK_PRIORITY,
    NFTA_RULE_USERDATA,
    NLM_F_ACK,
)
from netlink_nft._datatypes import INET_PROTO, opaque
from netlink_nft._errors import InvalidValue
from netlink_nft._expr import decode_expr, encode_expr
from netlink_nft._plans import spec_of as _spec
from tests.unit.netlink_nft.strategies import interval_elements

T = Table(Family.INET, "t")

EXPRESSIONS: list[Expr] = [
    Payload(PayloadBase.NETWORK, 12, 4),
    Payload(PayloadBase.TRANSPORT, 2, 2, dreg=9),
    Meta(MetaKey.IIFNAME),
    Ct(CtKey.STATE),
    Ct(CtKey.DIRECTION, direction=1),
    Cmp(CmpOp.GTE, b"\x03\xe8"),
    Bitwise(b"\xff\xff\xfe\x00", b"\x00\x00\x00\x00"),
    Range(RangeOp.NEQ, b"\x00\x01", b"\x03\xff"),
    Lookup("blocked", invert=True),
    Lookup("dispatch", dreg=0),
    Immediate(ACCEPT),
    Immediate(jump("sub")),
    Immediate(b"\x01\x02\x03\x04", dreg=1),
    Counter(),
    Log(),
    Log(prefix="x: ", level=6),
    Log(prefix="dns ", group=3, snaplen=64, qthreshold=2),
    Unknown("notrack", b""),
]


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=repr)
def test_every_expression_decodes_to_itself(expr: Expr) -> None:
    encoded = encode_expr(expr)
    length, _ = struct.unpack_from("=HH", encoded)
    assert length == len(encoded)
    assert decode_expr(encoded[4:]) == expr


def _elements_of(spec: _sets.SetSpec, bodies: list[bytes]) -> list[SetElement]:
    lists = [_tlv.parse_attrs(body)[3] for body in bodies]  # NFTA_SET_ELEM_LIST_ELEMENTS
    return _sets.decode_elements(spec, lists)


@given(interval_elements(4))
def test_interval_elements_decode_back(elements: list[SetElement]) -> None:
    s = Set(T, "s", (IPV4_ADDR,), interval=True, elements=tuple(elements))
    bodies = list(_sets.encode_element_lists(_spec(s), None, s.elements))
    assert s.with_elements(_elements_of(_spec(s), bodies)) == s


def test_a_range_reaching_the_top_of_the_address_space_has_no_end_element() -> None:
    s = Set(T, "s", (IPV4_ADDR,), interval=True, elements=(SetElement.network("255.255.255.0/24"),))
    assert len(list(_sets.encode_elements(_spec(s), s.elements))) == 1
    whole = Set(T, "s", (IPV4_ADDR,), interval=True, elements=(SetElement.network("0.0.0.0/0"),))
    (only,) = _sets.encode_elements(_spec(whole), whole.elements)
    assert b"\x00\x00\x00\x00" in only and struct.pack(">I", 1) not in only  # a start, no INTERVAL_END


@pytest.mark.parametrize(
    "s",
    [
        Set(
            T,
            "pairs",
            (IPV4_ADDR, INET_SERVICE),
            interval=True,
            elements=(SetElement(("10.1.0.0", 80), ("10.1.255.255", 90)), SetElement(("10.2.0.1", 443))),
        ),
        Set(T, "pairs_plain", (IPV4_ADDR, INET_SERVICE), elements=(SetElement(("10.2.0.1", 443)),)),
        Set(
            T, "vm", (IFNAME,), data=VERDICT, elements=(SetElement("eth0", data=jump("x")), SetElement("lo", data=DROP))
        ),
        Set(T, "ifs", (IFNAME,), elements=(SetElement("eth0"),)),
    ],
    ids=lambda s: s.name,
)
def test_elements_of_concatenations_and_maps_decode_back(s: Set) -> None:
    bodies = list(_sets.encode_element_lists(_spec(s), 1, s.elements))
    assert s.with_elements(_elements_of(_spec(s), bodies)) == s


@given(interval_elements(6, max_size=200))
def test_fast_rbtree_encoding_equals_the_generic_one(elements: list[SetElement]) -> None:
    s = Set(T, "s", (IPV6_ADDR,), interval=True, elements=tuple(elements))
    assert _sets._rbtree_nests(_spec(s), s.elements) == _sets._generic_nests(_spec(s), s.elements)


@given(
    st.sampled_from(
        [
            (IPV4_ADDR,),
            (IPV6_ADDR,),
            (INET_SERVICE,),
            (INET_PROTO,),
            (IFNAME,),
            (opaque(250, 6),),
            (IPV4_ADDR, INET_SERVICE),
            (IPV6_ADDR, INET_SERVICE),
            (INET_PROTO, INET_SERVICE),
            (IFNAME, IPV4_ADDR, INET_PROTO),
        ]
    ),
    st.lists(st.integers(0, 2**16 - 1), max_size=600),
)
def test_fast_plain_encoding_equals_the_generic_one(key: tuple[DataType, ...], numbers: list[int]) -> None:
    """Sets without intervals or data (up to a few chunks of elements) encode as the generic path does."""

    def value(t: DataType, n: int) -> int | str:
        return f"if{n}" if t is IFNAME else n % 256 if t is INET_PROTO else n

    elements = tuple(SetElement(tuple(value(t, n) for t in key) if len(key) > 1 else value(key[0], n)) for n in numbers)
    s = Set(T, "s", key, elements=elements)
    assert _sets._plain_nests(_spec(s), s.elements) == _sets._generic_nests(_spec(s), s.elements)


def test_fast_plain_encoding_chunks_as_the_generic_one() -> None:
    s = Set(T, "s", (IPV4_ADDR,), elements=tuple(SetElement(0x0A000000 + n) for n in range(10_000)))
    fast = _sets._plain_nests(_spec(s), s.elements)
    assert len(fast) > 1 and fast == _sets._generic_nests(_spec(s), s.elements)


def test_concatenated_keys_pad_each_field_to_four_bytes() -> None:
    s = Set(T, "pairs", (IPV4_ADDR, INET_SERVICE), elements=(SetElement(("10.1.0.0", 80)),))
    (element,) = _sets.encode_elements(_spec(s), s.elements)
    assert bytes.fromhex("0a01000000500000") in element


def test_big_element_lists_are_chunked_under_the_attribute_limit() -> None:
    s = Set(
        T,
        "big",
        (IPV4_ADDR,),
        interval=True,
        elements=tuple(SetElement.network(f"10.{i // 256}.{i % 256}.0/25") for i in range(20_000)),
    )
    bodies = list(_sets.encode_element_lists(_spec(s), 1, s.elements))
    assert len(bodies) > 1
    for body in bodies:
        nest_len = struct.unpack_from("=H", body, body.index(b"\x03\x80") - 2)[0]
        assert nest_len <= 60_000
    assert s.with_elements(_elements_of(_spec(s), bodies)) == s


def test_batch_tags_every_message_and_frames_the_transaction() -> None:
    chain = Chain(T, "input")
    ports = Set(T, "ports", (INET_SERVICE,), elements=(SetElement(80),))
    batch = Batch()
    batch.add_table(T)
    batch.add_chain(chain)
    batch.add_set(ports)
    encoded = batch.encode(100, genid=7)
    assert [m.subject for m in encoded.messages] == [T, chain, ports, ports]
    assert encoded.messages[3].kind == NFT_MSG_NEWSETELEM
    assert encoded.message_at(101) == encoded.messages[0]
    assert encoded.message_at(100) is None and encoded.message_at(encoded.end_seq) is None
    begin_len = struct.unpack_from("=I", encoded.data)[0]
    assert _tlv.parse_attrs(encoded.data[20:begin_len]) == {NFNL_BATCH_GENID: struct.pack(">I", 7)}
    end = encoded.data[-20:]
    _, kind, flags, seq, _ = struct.unpack_from("=IHHII", end)
    assert (kind, flags & NLM_F_ACK, seq) == (0x11, NLM_F_ACK, 105)


@pytest.mark.parametrize("priority", [-(1 << 31), (1 << 31) - 1])
def test_base_chain_priorities_span_the_signed_32_bit_range(priority: int) -> None:
    batch = Batch()
    batch.add_chain(Chain(T, "input", Hook.INPUT, priority, Policy.DROP))
    (message,) = batch.messages
    hook = _tlv.parse_attrs(_tlv.parse_attrs(message.body)[NFTA_CHAIN_HOOK])
    assert struct.unpack(">i", hook[NFTA_HOOK_PRIORITY]) == (priority,)
    assert struct.unpack(">I", _tlv.parse_attrs(message.body)[NFTA_CHAIN_POLICY]) == (Policy.DROP,)


@pytest.mark.parametrize("priority", [-(1 << 31) - 1, 1 << 31])
def test_a_base_chain_priority_beyond_32_bits_is_refused_clearly(priority: int) -> None:
    batch = Batch()
    with pytest.raises(InvalidValue, match="32-bit"):
        batch.add_chain(Chain(T, "input", Hook.INPUT, priority))
    assert len(batch) == 0


@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 5, 6, 7, 100, 252, 253])
def test_rule_comments_of_every_padding_encode_as_udata_and_decode_back(length: int) -> None:
    """The comment is udata (type 0, length with the NUL, the text, the NUL), its attribute padded to 4 bytes."""
    comment = "é" * (length // 2) + "x" * (length % 2)  # two-byte characters: the limit is in bytes
    r = Rule(T, "c", (), comment=comment)
    tail = _objects.rule_tail(r)
    text = comment.encode() + b"\0"
    assert tail == _tlv.attr(NFTA_RULE_USERDATA, bytes((0, len(text))) + text)
    assert len(tail) % 4 == 0
    assert _objects.decode_rule(T, _tlv.parse_attrs(_objects.encode_rule(r))).comment == comment


def test_a_rule_comment_longer_than_253_bytes_is_refused() -> None:
    """253 bytes of text make 256 bytes of udata, the kernel's limit (254 aborts the transaction with ERANGE)."""
    with pytest.raises(InvalidValue, match="253 bytes"):
        _objects.rule_tail(Rule(T, "c", (), comment="é" * 127))


@pytest.mark.parametrize(
    ("key", "element"),
    [
        ((INET_SERVICE,), SetElement(70_000)),
        ((IPV4_ADDR, INET_SERVICE), SetElement((IPV4_ADDR.normalise("10.0.0.1"), -1))),
        ((IPV4_ADDR,), SetElement("10.0.0.1")),  # text, not an address value
        ((IFNAME,), SetElement("a" * 16)),  # one byte more than a key holds
    ],
)
def test_values_that_skipped_normalising_are_refused_when_encoded(
    key: tuple[DataType, ...], element: SetElement
) -> None:
    """``Set.of_canonical`` takes its elements as they are; a value no key can hold is refused by the encoder as
    invalid (never a malformed element list, never another exception), and the batch is left as it was."""
    batch = Batch()
    with pytest.raises(InvalidValue):
        batch.add_set(Set.of_canonical(T, "s", key, False, (element,)))
    assert len(batch) == 0
