"""Anonymous sets declare their size as nft does: start and end elements for single-field interval sets."""

from __future__ import annotations

import pytest

from netlink_nft import ACCEPT, IP_SADDR, TCP_DPORT, Batch, Family, SetElement, Table, _tlv, in_set, rule
from netlink_nft._const import NFT_MSG_NEWSET, NFTA_SET_DESC, NFTA_SET_DESC_SIZE

T = Table(Family.INET, "t")


def declared_sizes(batch: Batch) -> list[int]:
    sizes = []
    for message in batch.messages:
        if message.kind == NFT_MSG_NEWSET:
            desc = _tlv.parse_attrs(_tlv.parse_attrs(message.body)[NFTA_SET_DESC])
            sizes.append(_tlv.get_be32(desc[NFTA_SET_DESC_SIZE]))
    return sizes


@pytest.mark.parametrize(
    ("match", "size"),
    [
        (in_set(TCP_DPORT, [SetElement.interval(1, 5), SetElement.interval(10, 20), SetElement(65535)]), 6),
        (in_set(IP_SADDR, [SetElement.network("10.0.0.0/8"), SetElement.network("192.168.0.0/16")]), 4),
        (in_set(TCP_DPORT, [22, 80, 443]), 3),  # a hash set: one element each
        (in_set((IP_SADDR, TCP_DPORT), [SetElement(("10.0.0.0", 80), ("10.0.0.255", 90))]), 1),  # pipapo: one each
    ],
    ids=["port-ranges", "prefixes", "hash", "interval-concatenation"],
)
def test_anonymous_set_declares_the_elements_the_kernel_counts(match: object, size: int) -> None:
    batch = Batch()
    batch.add_rule(rule(T, "input", match, ACCEPT))  # type: ignore[arg-type]
    assert declared_sizes(batch) == [size]
