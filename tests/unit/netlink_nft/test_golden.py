"""Byte-level golden tests: our encoding of small rulesets equals what `nft --debug=mnl` sends.

The golden files are recorded from nft 1.0.6 by `tests/golden/netlink_nft/regenerate.py`. Compared per message:
the nf_tables message type and everything after the netlink header (sequence numbers and nlmsg flags aside).

One deliberate difference: for anonymous sets nft stores a "typeof" description of the key expression in the set's
userdata (udata type 3, used only when nft prints a set declared with `typeof`); we do not, so it is removed from
nft's bytes before comparing. The listing is the same either way (see the kernel round-trip tests). And sets'
transaction ids are compared up to numbering, named sets being referenced by name only (`set_ids.py`).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from netlink_nft import _tlv
from netlink_nft._batch import MESSAGE_NAMES
from netlink_nft._const import NFT_MSG_NEWSET, NFTA_SET_USERDATA
from tests.golden.netlink_nft.cases import CASES
from tests.golden.netlink_nft.regenerate import parse_golden
from tests.unit.netlink_nft.set_ids import canonical_ids

GOLDEN = Path(__file__).parents[2] / "golden" / "netlink_nft"
UDATA_SET_KEY_TYPEOF = 3


def _without_typeof(kind: int, payload: bytes) -> bytes:
    if kind & 0xFF != NFT_MSG_NEWSET:
        return payload
    out, offset = payload[:4], 4
    while offset < len(payload):
        length, attr_type = struct.unpack_from("=HH", payload, offset)
        value = payload[offset + 4 : offset + length]
        offset += (length + 3) & ~3
        if attr_type == NFTA_SET_USERDATA:
            kept, at = b"", 0
            while at < len(value):
                size = value[at + 1]
                if value[at] != UDATA_SET_KEY_TYPEOF:
                    kept += value[at : at + 2 + size]
                at += 2 + size
            value = kept
        out += _tlv.attr(attr_type, value)
    return out


def _ours(case: str) -> list[tuple[int, bytes]]:
    build, _ = CASES[case]
    return _split(build().encode().data)


def _split(data: bytes) -> list[tuple[int, bytes]]:
    """(kind, payload after the netlink header) of each message between BATCH_BEGIN and BATCH_END."""
    out = []
    offset = 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "little")
        kind = int.from_bytes(data[offset + 4 : offset + 6], "little")
        out.append((kind, data[offset + 16 : offset + length]))
        offset += length
    return out[1:-1]  # without BATCH_BEGIN / BATCH_END


@pytest.mark.parametrize("case", sorted(CASES))
def test_encoding_matches_nft(case: str) -> None:
    golden = parse_golden((GOLDEN / f"{case}.golden").read_text())
    expected = canonical_ids([(k, _without_typeof(k, p)) for k, p in golden])
    ours = canonical_ids(_ours(case))
    assert [MESSAGE_NAMES[k & 0xFF] for k, _ in ours] == [MESSAGE_NAMES[k & 0xFF] for k, _ in expected]
    for index, ((kind, payload), (_, want)) in enumerate(zip(ours, expected, strict=True)):
        assert payload.hex() == want.hex(), f"message {index} ({MESSAGE_NAMES[kind & 0xFF]}) differs"


def test_encoding_is_deterministic_up_to_set_ids() -> None:
    for build, _ in CASES.values():
        first, again = build().encode(7).data, build().encode(7).data  # new objects: new transaction ids
        assert canonical_ids(_split(first)) == canonical_ids(_split(again))
