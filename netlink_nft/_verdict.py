"""Verdicts: what a rule (an `immediate` expression) or a verdict-map element decides."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import IntEnum

from netlink_nft import _tlv
from netlink_nft._const import NFTA_DATA_VERDICT, NFTA_VERDICT_CHAIN, NFTA_VERDICT_CODE
from netlink_nft._errors import InvalidValue


class VerdictCode(IntEnum):
    """Kernel verdict codes (`NF_DROP`, `NF_ACCEPT`, `NFT_*`)."""

    DROP = 0
    ACCEPT = 1
    STOLEN = 2
    QUEUE = 3
    REPEAT = 4
    STOP = 5
    CONTINUE = -1
    BREAK = -2
    JUMP = -3
    GOTO = -4
    RETURN = -5


_NEEDS_CHAIN = (VerdictCode.JUMP, VerdictCode.GOTO)


@dataclass(frozen=True)
class Verdict:
    code: VerdictCode
    chain: str | None = None

    def __post_init__(self) -> None:
        if (self.code in _NEEDS_CHAIN) != (self.chain is not None):
            raise InvalidValue(f"{self.code.name} {'needs' if self.code in _NEEDS_CHAIN else 'takes no'} chain")

    def __repr__(self) -> str:
        return f"{self.code.name.lower()}" + (f" {self.chain}" if self.chain else "")

    def encode(self) -> bytes:
        """The `NFTA_DATA_VERDICT` nest (worked out once per value: verdict maps repeat the same few verdicts, and
        `jump` hands out one value per chain)."""
        encoded: bytes | None = getattr(self, "_encoded", None)
        if encoded is None:
            parts = [_tlv.be32s(NFTA_VERDICT_CODE, self.code)]
            if self.chain is not None:
                parts.append(_tlv.strz(NFTA_VERDICT_CHAIN, self.chain))
            encoded = _tlv.nest(NFTA_DATA_VERDICT, *parts)
            object.__setattr__(self, "_encoded", encoded)  # frozen: outside the fields, not compared
        return encoded

    @classmethod
    def decode(cls, payload: bytes) -> Verdict:
        """From the payload of an `NFTA_DATA_VERDICT` nest."""
        attrs = _tlv.parse_attrs(payload)
        chain = attrs.get(NFTA_VERDICT_CHAIN)
        return cls(VerdictCode(_tlv.get_be32s(attrs[NFTA_VERDICT_CODE])), _tlv.get_str(chain) if chain else None)


ACCEPT = Verdict(VerdictCode.ACCEPT)
DROP = Verdict(VerdictCode.DROP)
RETURN = Verdict(VerdictCode.RETURN)
CONTINUE = Verdict(VerdictCode.CONTINUE)


@functools.lru_cache(maxsize=4096)  # a verdict map's data: one value per chain name, in every pod's map
def jump(chain: str) -> Verdict:
    return Verdict(VerdictCode.JUMP, chain)


@functools.lru_cache(maxsize=4096)
def goto(chain: str) -> Verdict:
    return Verdict(VerdictCode.GOTO, chain)
