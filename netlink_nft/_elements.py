"""Set elements and their canonical form.

A set's elements are kept canonical so that the set built by a caller and the set read back from the kernel
compare equal: keys are converted to their data type's canonical value, elements are sorted by their wire key,
and in single-field interval sets overlapping and adjacent ranges are merged (the kernel rejects overlaps, and
`nft` merges too). A range holding a single value has `end=None`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import msgspec

from netlink_nft._datatypes import _IPV4_ADDR, _IPV6_ADDR, VERDICT, DataType, Value
from netlink_nft._errors import InvalidType, InvalidValue
from netlink_nft._verdict import Verdict

Key = Value | tuple[Value, ...]
Data = Verdict | Value | None


class SetElement(msgspec.Struct, frozen=True, gc=False):
    """One element: a key (a tuple for concatenations), an inclusive `end` for ranges, `data` for maps.

    A msgspec Struct rather than a dataclass: sets hold up to 100,000 of them, Structs are created ~4x faster, and
    with `gc=False` the cyclic garbage collector does not scan them (an element cannot be part of a cycle: it only
    refers to addresses, numbers, strings and verdicts).
    """

    key: Key
    end: Key | None = None
    data: Verdict | Value | None = None

    @classmethod
    def network(cls, cidr: str | ipaddress.IPv4Network | ipaddress.IPv6Network) -> SetElement:
        """The range of addresses of a prefix ("10.0.0.0/8", "2001:db8::/32"; host bits are ignored)."""
        if not isinstance(cidr, str):
            cidr = str(cidr)
        address, _, length = cidr.partition("/")
        kind = _IPV6_ADDR if ":" in address else _IPV4_ADDR
        number = kind.parse_int(address)
        bits = 8 * kind.length
        prefixlen = int(length) if length else bits
        if not 0 <= prefixlen <= bits:
            raise InvalidValue(f"{cidr!r}: bad prefix length")
        host = (1 << (bits - prefixlen)) - 1
        first, last = number & ~host, number | host
        make = kind.make  # both numbers are addresses of the kind: no range check
        return cls(make(first), None if first == last else make(last))

    @classmethod
    def interval(cls, first: Key, last: Key) -> SetElement:
        return cls(first, None if first == last else last)


def _key_tuple(types: tuple[DataType, ...], key: Key) -> tuple[tuple[Value, ...], bytes]:
    """The canonical values of a concatenated key, and their bytes (what elements are sorted by)."""
    if not isinstance(key, tuple) or len(key) != len(types):
        raise InvalidValue(f"key {key!r} does not match type {' . '.join(t.name for t in types)}")
    values: list[Value] = []
    raw = b""
    for t, v in zip(types, key, strict=True):  # a plain loop: two or three fields, a comprehension costs more
        value = t.normalise(v)
        values.append(value)
        raw += t.to_bytes(value)
    return tuple(values), raw


def _check_data(data_type: DataType | None, element: SetElement) -> Data:
    if data_type is None:
        if element.data is not None:
            raise InvalidValue(f"element {element!r} has data but the set is not a map")
        return None
    if element.data is None:
        raise InvalidValue(f"map element {element!r} has no data")
    if data_type is VERDICT:
        if not isinstance(element.data, Verdict):
            raise InvalidValue(f"verdict map element {element!r} needs a Verdict")
        return element.data
    return data_type.normalise(element.data)


def normalise(
    types: tuple[DataType, ...], interval: bool, data_type: DataType | None, elements: Iterable[SetElement]
) -> tuple[SetElement, ...]:
    """Canonical, sorted elements of a set of key `types`; raises ValueError on values that do not fit."""
    if len(types) == 1:
        return (_merge_ranges if interval else _distinct_values)(types[0], data_type, elements)
    by_key: dict[bytes, SetElement] = {}
    for element in elements:
        key, raw = _key_tuple(types, element.key)
        end = None
        if element.end is not None:
            if not interval:
                raise InvalidValue(f"element {element!r} is a range but the set has no interval flag")
            end, raw_end = _key_tuple(types, element.end)
            if end == key:
                end = None
            else:
                raw += raw_end
        data = None if data_type is None and element.data is None else _check_data(data_type, element)
        canonical = SetElement(key, end, data)
        if (kept := by_key.setdefault(raw, canonical)) is not canonical and kept != canonical:
            raise InvalidValue(f"conflicting data for {canonical.key!r}")
    return tuple([by_key[raw] for raw in sorted(by_key)])


def _distinct_values(
    kind: DataType, data_type: DataType | None, elements: Iterable[SetElement]
) -> tuple[SetElement, ...]:
    """Single values of a plain set, deduplicated and sorted by key; reuses elements that are already canonical."""
    with_int = kind.with_int
    by_number: dict[int, SetElement] = {}
    for element in elements:
        if isinstance(element.key, tuple):
            raise InvalidType(f"element {element!r} has a concatenated key")
        if element.end is not None:
            raise InvalidValue(f"element {element!r} is a range but the set has no interval flag")
        value, number = with_int(element.key)
        data = None if data_type is None and element.data is None else _check_data(data_type, element)
        canonical = element if element.key is value and element.data is data else SetElement(value, None, data)
        if (kept := by_number.setdefault(number, canonical)) is not canonical and kept != canonical:
            raise InvalidValue(f"conflicting data for {value!r}")
    return tuple(map(by_number.__getitem__, sorted(by_number)))


def _merge_ranges(kind: DataType, data_type: DataType | None, elements: Iterable[SetElement]) -> tuple[SetElement, ...]:
    """Sort ranges and merge those that overlap or touch (and map to the same data); reuses the key objects."""
    with_int = kind.with_int
    spans: list[tuple[int, int, Data, Value, Value, SetElement]] = []
    for element in elements:
        key, end = element.key, element.end
        if isinstance(key, tuple) or isinstance(end, tuple):
            raise InvalidType(f"element {element!r} has a concatenated key")
        first_value, first = with_int(key)
        last_value, last = (first_value, first) if end is None else with_int(end)
        if last < first:
            raise InvalidValue(f"range {element!r} ends before it starts")
        data = None if data_type is None and element.data is None else _check_data(data_type, element)
        spans.append((first, last, data, first_value, last_value, element))
    spans.sort(key=itemgetter(0))  # equal starts: the merge below takes the longest end
    if not spans:
        return ()
    spans.append(_AFTER_ALL)  # ends the last range inside the loop
    out: list[SetElement] = []
    spans_iter = iter(spans)
    # the range being built: first, last, data, their values, and the original element while it is unchanged
    c_first, c_last, c_data, c_first_value, c_last_value, c_element = next(spans_iter)
    c_original: SetElement | None = c_element
    for first, last, data, first_value, last_value, element in spans_iter:
        if first <= c_last + 1 and data == c_data:  # overlaps or touches, same data: merge
            if last > c_last:
                c_last, c_last_value = last, last_value
            c_original = None
            continue
        if first <= c_last:
            raise InvalidValue(f"overlapping ranges with different data at {first_value}")
        end = None if c_first == c_last else c_last_value
        if (
            c_original is not None
            and c_original.key is c_first_value
            and c_original.end is end
            and c_original.data is c_data
        ):
            out.append(c_original)  # already canonical: keep the object (sets of 100,000 ranges are rebuilt often)
        else:
            out.append(SetElement(c_first_value, end, c_data))
        c_first, c_last, c_data, c_first_value, c_last_value = first, last, data, first_value, last_value
        c_original = element
    return tuple(out)


# A span after every other: never merges, so the range before it is emitted (its `element` is never used).
_AFTER_ALL: Any = (float("inf"), float("inf"), object(), None, None, None)


@dataclass(frozen=True)
class AnonymousSet:
    """An inline set of a rule (`tcp dport { 22, 80 }`): constant, created and deleted with its rule."""

    key: tuple[DataType, ...]
    elements: tuple[SetElement, ...] = field(default=())
    interval: bool = False
    data: DataType | None = None

    def __post_init__(self) -> None:
        key = self.key if isinstance(self.key, tuple) else (self.key,)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "elements", normalise(key, self.interval, self.data, self.elements))
