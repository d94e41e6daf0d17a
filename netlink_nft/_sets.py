"""Wire form of sets and set elements: NEWSET bodies, chunked NEWSETELEM bodies, and decoding both from dumps.

Interval sets with a single key field (kernel backend rbtree) take two elements per range: the first value, and
the value after the last one flagged `INTERVAL_END`; a range that reaches the top of the key space has no end
element. Concatenations with intervals (backend pipapo) take one element per range with an inclusive `KEY_END`.
Keys of concatenations are laid out field by field, each padded with zeros to 4 bytes.
"""

from __future__ import annotations

import functools
import itertools
import operator
import struct
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from netlink_nft import _tlv
from netlink_nft._const import (
    NFT_BYTEORDER_BIG,
    NFT_DATA_VERDICT,
    NFT_SET_ELEM_INTERVAL_END,
    NFTA_DATA_VALUE,
    NFTA_DATA_VERDICT,
    NFTA_LIST_ELEM,
    NFTA_SET_DATA_LEN,
    NFTA_SET_DATA_TYPE,
    NFTA_SET_DESC,
    NFTA_SET_DESC_CONCAT,
    NFTA_SET_DESC_SIZE,
    NFTA_SET_ELEM_DATA,
    NFTA_SET_ELEM_FLAGS,
    NFTA_SET_ELEM_KEY,
    NFTA_SET_ELEM_KEY_END,
    NFTA_SET_ELEM_LIST_ELEMENTS,
    NFTA_SET_ELEM_LIST_SET,
    NFTA_SET_ELEM_LIST_SET_ID,
    NFTA_SET_ELEM_LIST_TABLE,
    NFTA_SET_FIELD_LEN,
    NFTA_SET_FLAGS,
    NFTA_SET_KEY_LEN,
    NFTA_SET_KEY_TYPE,
    NFTA_SET_NAME,
    NFTA_SET_TABLE,
    NFTA_SET_USERDATA,
    NFTNL_UDATA_SET_DATA_INTERVAL,
    NFTNL_UDATA_SET_DATABYTEORDER,
    NFTNL_UDATA_SET_KEYBYTEORDER,
    NLA_F_NESTED,
    SET_ELEM_NEST_LIMIT,
)
from netlink_nft._datatypes import KEY_TYPES, VERDICT, DataType, Value, concat_type_id, opaque, padded, split_type_id
from netlink_nft._elements import Data, Key, SetElement
from netlink_nft._errors import InvalidValue
from netlink_nft._verdict import Verdict

SET_F_ANONYMOUS = 0x1
SET_F_CONSTANT = 0x2
SET_F_INTERVAL = 0x4
SET_F_MAP = 0x8
SET_F_CONCAT = 0x80

ANONYMOUS_NAME = "__set%d"


class SetSpec(NamedTuple):
    """What the wire needs to know about a set, named or anonymous (a tuple: made for every set encoded)."""

    table: str
    name: str
    key: tuple[DataType, ...]
    interval: bool
    constant: bool
    data: DataType | None
    anonymous: bool = False

    @property
    def key_len(self) -> int:
        if len(self.key) == 1:
            return self.key[0].length
        return sum(padded(t.length) for t in self.key)

    @property
    def flags(self) -> int:
        flags = SET_F_ANONYMOUS | SET_F_CONSTANT if self.anonymous else (SET_F_CONSTANT if self.constant else 0)
        if self.interval:
            flags |= SET_F_INTERVAL | (SET_F_CONCAT if len(self.key) > 1 else 0)
        if self.data is not None:
            flags |= SET_F_MAP
        return flags


def _udata(kind: int, value: int) -> bytes:
    return struct.pack("=BBI", kind, 4, value)


def declared_size(spec: SetSpec, elements: tuple[SetElement, ...]) -> int:
    """The element count an anonymous set declares (`NFTA_SET_DESC_SIZE`), as nft counts it: a single-field
    interval set holds a start and an end element per range, and rbtree kernels before 6.12.13 count both
    against the declared size (declaring the number of ranges makes the insertion fail with ENFILE)."""
    if spec.interval and len(spec.key) == 1:
        return 2 * len(elements)
    return len(elements)


@functools.lru_cache(maxsize=1024)  # small keys; pods repeat the same few set definitions
def encode_set_parts(spec: SetSpec, size: int) -> tuple[bytes, bytes]:
    """NEWSET's attributes before and after `NFTA_SET_ID`, which the set's plan puts between them (`_plans`)."""
    out = [
        _tlv.strz(NFTA_SET_TABLE, spec.table),
        _tlv.strz(NFTA_SET_NAME, spec.name),
        _tlv.be32(NFTA_SET_FLAGS, spec.flags),
        _tlv.be32(NFTA_SET_KEY_TYPE, concat_type_id(spec.key)),
        _tlv.be32(NFTA_SET_KEY_LEN, spec.key_len),
    ]
    if spec.data is not None:
        out.append(_tlv.be32(NFTA_SET_DATA_TYPE, spec.data.type_id))
        out.append(_tlv.be32(NFTA_SET_DATA_LEN, spec.data.length))
    head = b"".join(out)
    out = []
    desc = []
    if spec.anonymous:
        desc.append(_tlv.be32(NFTA_SET_DESC_SIZE, size))
    if len(spec.key) > 1 and spec.interval:  # the kernel takes field lengths only for pipapo (interval) sets
        fields = (_tlv.nest(NFTA_LIST_ELEM, _tlv.be32(NFTA_SET_FIELD_LEN, t.length)) for t in spec.key)
        desc.append(_tlv.nest(NFTA_SET_DESC_CONCAT, *fields))
    if desc:
        out.append(_tlv.nest(NFTA_SET_DESC, *desc))
    byteorder = spec.key[0].byteorder if len(spec.key) == 1 else NFT_BYTEORDER_BIG
    udata = _udata(NFTNL_UDATA_SET_KEYBYTEORDER, byteorder)
    if spec.data is not None:
        udata += _udata(NFTNL_UDATA_SET_DATABYTEORDER, 0 if spec.data is VERDICT else spec.data.byteorder)
        udata += _udata(NFTNL_UDATA_SET_DATA_INTERVAL, 0)
    out.append(_tlv.attr(NFTA_SET_USERDATA, udata))
    return head, b"".join(out)


# --- elements ------------------------------------------------------------------------------------------------------

_KEY_HDR = struct.Struct("=HHHH")  # KEY nest header + VALUE attribute header
_NEST_HDR = struct.Struct("=HH")
_INTERVAL_END = _tlv.be32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END)


def _value(kind: int, raw: bytes) -> bytes:
    """An `nft_data` nest with a value; hand-packed because it runs once per element."""
    pad = -len(raw) & 3
    return _KEY_HDR.pack(8 + len(raw) + pad, kind | 0x8000, 4 + len(raw), 1) + raw + b"\0" * pad


_PADDING = (b"", b"\0\0\0", b"\0\0", b"\0")  # by length % 4: the zeros up to the next 4-byte boundary


def _key_bytes(types: tuple[DataType, ...], key: Key) -> bytes:
    if len(types) == 1:
        return types[0].to_bytes(key)  # type: ignore[arg-type]
    parts: list[bytes] = []
    for t, v in zip(types, key, strict=True):  # type: ignore[arg-type]
        parts += (t.to_bytes(v), _PADDING[t.length & 3])
    return b"".join(parts)


def _data(spec: SetSpec, data: Data) -> bytes:
    if isinstance(data, Verdict):  # verdict maps repeat a few verdicts (`jump` gives one value per chain)
        nested: bytes | None = getattr(data, "_element_data", None)
        if nested is None:
            nested = _tlv.nest(NFTA_SET_ELEM_DATA, data.encode())
            object.__setattr__(data, "_element_data", nested)  # frozen: outside the fields, not compared
        return nested
    assert spec.data is not None and data is not None
    return _tlv.nest(NFTA_SET_ELEM_DATA, _tlv.attr(NFTA_DATA_VALUE, spec.data.to_bytes(data)))


def encode_elements(spec: SetSpec, elements: tuple[SetElement, ...]) -> list[bytes]:
    """The attributes of each wire element, in order (the caller wraps each in a numbered nest). One loop, no
    generator: most sets of a pod hold a handful of elements, so what a call costs counts as much as an element."""
    key_types = spec.key
    single_interval = spec.interval and len(key_types) == 1
    interval = spec.interval
    top = (1 << (8 * key_types[0].length)) - 1 if single_interval else 0
    out: list[bytes] = []
    for element in elements:
        key = _key_bytes(key_types, element.key)
        data = b"" if element.data is None else _data(spec, element.data)
        if single_interval:
            out.append(_value(NFTA_SET_ELEM_KEY, key) + data)
            last = int.from_bytes(key if element.end is None else _key_bytes(key_types, element.end), "big")
            if last != top:
                out.append(_INTERVAL_END + _value(NFTA_SET_ELEM_KEY, (last + 1).to_bytes(len(key), "big")))
        elif interval:
            end = key if element.end is None else _key_bytes(key_types, element.end)
            out.append(_value(NFTA_SET_ELEM_KEY, key) + _value(NFTA_SET_ELEM_KEY_END, end) + data)
        else:
            out.append(_value(NFTA_SET_ELEM_KEY, key) + data)
    return out


_LIMIT = SET_ELEM_NEST_LIMIT - 4  # room for the element list's own nest header
_LIST_ELEMENTS = NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED


def _generic_nests(spec: SetSpec, elements: tuple[SetElement, ...]) -> list[bytes]:
    """Successive element-list nests of numbered element nests, each list under the size limit. Each list is
    joined once: its header (`chunk[0]`) is written when the list is closed and its size known."""
    pack = _NEST_HDR.pack
    nests: list[bytes] = []
    chunk: list[bytes] = [b""]
    size = number = 0
    for item in encode_elements(spec, elements):
        length = 4 + len(item)  # elements are 4-byte aligned
        if size + length > _LIMIT and number:
            chunk[0] = pack(4 + size, _LIST_ELEMENTS)
            nests.append(b"".join(chunk))
            chunk, size, number = [b""], 0, 0
        number += 1  # numbered 1, 2, ... in each message, like libnftnl (the kernel ignores the number)
        chunk += (pack(length, number | NLA_F_NESTED), item)
        size += length
    if number:
        chunk[0] = pack(4 + size, _LIST_ELEMENTS)
        nests.append(b"".join(chunk))
    return nests


class _Numbered:
    """Element nest headers numbered 0, 1, ... (index = number) followed by `prefix`, for elements of `length`
    bytes. Made as far as asked (`made` holds at least the numbers some set needed): most sets hold a few
    elements, a list up to thousands (making them all cost a process 5 ms). A longer list replaces `made` whole,
    so that no reader sees one half made."""

    __slots__ = ("length", "made", "prefix")

    def __init__(self, prefix: bytes, length: int) -> None:
        self.prefix, self.length = prefix, length
        self.made: list[bytes] = []

    def upto(self, count: int) -> list[bytes]:
        """`made`, grown if needed to hold number `count` (callers test `len(made) > count` first)."""
        made = self.made
        if len(made) <= count:
            start, prefix, length = len(made), self.prefix, self.length
            more = [
                _NEST_HDR.pack(length, n | NLA_F_NESTED) + prefix for n in range(start, max(count + 1, 2 * start, 64))
            ]
            made = self.made = made + more
        return made


@functools.lru_cache(maxsize=64)  # by key width: a few
def _rbtree_layout(width: int) -> tuple[int, int, _Numbered, _Numbered, int]:
    """(start element length, end element length, start headers, end headers, the most elements a list holds)."""
    key_hdr = _value(NFTA_SET_ELEM_KEY, bytes(width))[:8]
    pad = -width & 3
    start_len, end_len = 4 + len(key_hdr) + width + pad, 4 + len(_INTERVAL_END) + len(key_hdr) + width + pad
    starts, ends = _Numbered(key_hdr, start_len), _Numbered(_INTERVAL_END + key_hdr, end_len)
    return start_len, end_len, starts, ends, _LIMIT // start_len + 1


def _rbtree_nests(spec: SetSpec, elements: tuple[SetElement, ...]) -> list[bytes]:
    """Same bytes as `_generic_nests` for single-field interval sets without data, with pre-built headers: ipBlock
    sets hold up to 100,000 ranges, and this is the hot loop of encoding them."""
    kind = spec.key[0]
    width = kind.length
    pad = _PADDING[width & 3]
    start_len, end_len, start_headers, end_headers, most = _rbtree_layout(width)
    wire = min(2 * len(elements), most)  # the highest number an element of a list can get
    starts, ends = start_headers.made, end_headers.made
    if len(starts) <= wire or len(ends) <= wire:
        starts, ends = start_headers.upto(wire), end_headers.upto(wire)
    top = (1 << (8 * width)) - 1
    to_int = kind.to_int
    pack = _NEST_HDR.pack
    nests: list[bytes] = []
    chunk: list[bytes] = [b""]  # [0]: the list's header, written when it is closed
    size = number = 0
    for element in elements:
        first = to_int(element.key)  # type: ignore[arg-type]
        last = first if element.end is None else to_int(element.end)  # type: ignore[arg-type]
        if size + start_len + end_len > _LIMIT and number:
            chunk[0] = pack(4 + size, _LIST_ELEMENTS)
            nests.append(b"".join(chunk))
            chunk, size, number = [b""], 0, 0
        number += 1
        chunk += (starts[number], first.to_bytes(width, "big"), pad)
        size += start_len
        if last != top:
            number += 1
            chunk += (ends[number], (last + 1).to_bytes(width, "big"), pad)
            size += end_len
    if number:
        chunk[0] = pack(4 + size, _LIST_ELEMENTS)
        nests.append(b"".join(chunk))
    return nests


@functools.lru_cache(maxsize=64)  # by key width: a few
def _plain_layout(width: int) -> tuple[int, int, _Numbered]:
    """(element length, the most elements a list holds, the element headers)."""
    key_hdr = _value(NFTA_SET_ELEM_KEY, bytes(width))[:8]
    length = 4 + len(key_hdr) + ((width + 3) & ~3)
    return length, _LIMIT // length, _Numbered(key_hdr, length)


_KEY = operator.attrgetter("key")


def _plain_nests(spec: SetSpec, elements: tuple[SetElement, ...]) -> list[bytes]:
    """Same bytes as `_chunks` for sets without intervals or data (pods' addresses, address . port pairs): most
    elements a daemon sends are in such sets. Every element has the same length, so a list holds a fixed number
    of them; the keys are made field by field in bulk (`padded_bytes`: each field padded to 4 bytes is the
    layout of a concatenation as well as the padding of a single key), then zipped with the numbered headers."""
    types = spec.key
    length, most, headers = _plain_layout(spec.key_len)
    keys = list(map(_KEY, elements))
    if len(types) == 1:
        fields = [types[0].padded_bytes(keys)]
    else:
        fields = [t.padded_bytes(map(operator.itemgetter(i), keys)) for i, t in enumerate(types)]
    pack = _NEST_HDR.pack
    numbered = headers.made  # [0] is number 0: unused
    if len(numbered) <= len(keys) and len(numbered) <= most:
        numbered = headers.upto(min(len(keys), most))
    if len(keys) <= most:  # one list (the usual case): no slicing
        items = [pack(4 + length * len(keys), _LIST_ELEMENTS)]
        items += itertools.chain.from_iterable(zip(itertools.islice(numbered, 1, None), *fields, strict=False))
        return [b"".join(items)] if keys else []
    nests = []
    columns = [iter(field) for field in fields]
    for first in range(0, len(keys), most):  # as many lists as it takes
        items = [pack(4 + length * min(most, len(keys) - first), _LIST_ELEMENTS)]
        # zip stops at the list's last header (asking for the header first) or at the last element
        in_list = itertools.islice(numbered, 1, most + 1)
        items += itertools.chain.from_iterable(zip(in_list, *columns, strict=False))
        nests.append(b"".join(items))
    return nests


def encode_element_lists(spec: SetSpec, set_id: int | None, elements: tuple[SetElement, ...]) -> Iterator[bytes]:
    """NEWSETELEM/DELSETELEM bodies, each with an element nest under the netlink attribute size limit."""
    head = element_list_head(spec, set_id)
    for nest in element_list_nests(spec, elements):
        yield head + nest


def element_list_head(spec: SetSpec, set_id: int | None) -> bytes:
    """The attributes of a NEWSETELEM/DELSETELEM body before its element nest: which set (and its batch id)."""
    head = _tlv.strz(NFTA_SET_ELEM_LIST_TABLE, spec.table) + _tlv.strz(NFTA_SET_ELEM_LIST_SET, spec.name)
    if set_id is not None:
        head += _tlv.be32(NFTA_SET_ELEM_LIST_SET_ID, set_id)
    return head


def element_list_nests(spec: SetSpec, elements: tuple[SetElement, ...]) -> list[bytes]:
    """The element nests (`NFTA_SET_ELEM_LIST_ELEMENTS`) of successive bodies, each under the size limit."""
    if spec.data is None and not spec.interval:
        return _plain_nests(spec, elements)
    return (_generic_nests if spec.data is not None or len(spec.key) > 1 else _rbtree_nests)(spec, elements)


# --- decoding ------------------------------------------------------------------------------------------------------


def decode_set(attrs: dict[int, bytes]) -> SetSpec:
    flags = _tlv.get_be32(attrs.get(NFTA_SET_FLAGS, b"\0\0\0\0"))
    key = split_type_id(_tlv.get_be32(attrs[NFTA_SET_KEY_TYPE]), _tlv.get_be32(attrs[NFTA_SET_KEY_LEN]))
    data: DataType | None = None
    if NFTA_SET_DATA_TYPE in attrs:
        data_type = _tlv.get_be32(attrs[NFTA_SET_DATA_TYPE])
        data_len = _tlv.get_be32(attrs.get(NFTA_SET_DATA_LEN, b"\0\0\0\0"))
        data = VERDICT if data_type == NFT_DATA_VERDICT else KEY_TYPES.get(data_type) or opaque(data_type, data_len)
    anonymous = bool(flags & SET_F_ANONYMOUS)
    return SetSpec(
        table=_tlv.get_str(attrs[NFTA_SET_TABLE]),
        name=_tlv.get_str(attrs[NFTA_SET_NAME]),
        key=key,
        interval=bool(flags & SET_F_INTERVAL),
        constant=bool(flags & SET_F_CONSTANT) and not anonymous,
        data=data,
        anonymous=anonymous,
    )


def _split_key(types: tuple[DataType, ...], raw: bytes) -> Key:
    if len(types) == 1:
        return types[0].from_bytes(raw)
    values: list[Value] = []
    offset = 0
    for t in types:
        values.append(t.from_bytes(raw[offset : offset + t.length]))
        offset += padded(t.length)
    return tuple(values)


def decode_elements(spec: SetSpec, element_lists: Iterable[bytes]) -> list[SetElement]:
    """Elements from the `NFTA_SET_ELEM_LIST_ELEMENTS` payloads of a GETSETELEM dump."""
    raw: list[tuple[bytes, bool, bytes | None, Data]] = []
    for payload in element_lists:
        for _, item in _tlv.iter_attrs(payload):
            attrs = _tlv.parse_attrs(item)
            flags = _tlv.get_be32(attrs[NFTA_SET_ELEM_FLAGS]) if NFTA_SET_ELEM_FLAGS in attrs else 0
            key = _tlv.parse_attrs(attrs[NFTA_SET_ELEM_KEY])[NFTA_DATA_VALUE]
            key_end = attrs.get(NFTA_SET_ELEM_KEY_END)
            data: Data = None
            if NFTA_SET_ELEM_DATA in attrs:
                nested = _tlv.parse_attrs(attrs[NFTA_SET_ELEM_DATA])
                if NFTA_DATA_VERDICT in nested:
                    data = Verdict.decode(nested[NFTA_DATA_VERDICT])
                elif spec.data is not None:
                    data = spec.data.from_bytes(nested[NFTA_DATA_VALUE])
            end = None if key_end is None else _tlv.parse_attrs(key_end)[NFTA_DATA_VALUE]
            raw.append((key, bool(flags & NFT_SET_ELEM_INTERVAL_END), end, data))
    if spec.interval and len(spec.key) == 1:
        return _pair_interval_ends(spec, raw)
    return [
        SetElement(_split_key(spec.key, key), None if end is None else _split_key(spec.key, end), data)
        for key, _, end, data in raw
    ]


def _pair_interval_ends(spec: SetSpec, raw: list[tuple[bytes, bool, bytes | None, Data]]) -> list[SetElement]:
    """Turn rbtree start/end elements back into inclusive ranges."""
    kind = spec.key[0]
    raw.sort(key=lambda item: (item[0], not item[1]))  # at equal keys an end closes before a start opens
    out: list[SetElement] = []
    start: tuple[bytes, Data] | None = None
    for key, is_end, _, data in raw:
        if is_end:
            if start is not None:  # an end without a start is nft's leading "0 end" marker
                last = (int.from_bytes(key, "big") - 1).to_bytes(len(key), "big")
                out.append(SetElement(kind.from_bytes(start[0]), kind.from_bytes(last), start[1]))
                start = None
            continue
        if start is not None:
            raise InvalidValue(f"interval set {spec.name}: two range starts without an end")
        start = (key, data)
    if start is not None:  # the last range reaches the top of the key space
        out.append(SetElement(kind.from_bytes(start[0]), kind.from_bytes(b"\xff" * len(start[0])), start[1]))
    return out
