"""The validated, normalised form of a MultiNetworkPolicy that ``compile()`` consumes.

``validation.validate_policy`` builds it. Invalid items are already gone; what remains can only allow traffic the
policy really allows. ``None`` means "field absent or empty" (matches everything); an empty tuple means "items were
given but none was valid" (matches nothing).
"""

from __future__ import annotations

import enum

import msgspec

from trinet.policy.ipblock import Interval
from trinet.policy.selectors import Selector

__all__ = ["Direction", "EffectivePolicy", "IPBlockPeer", "PortItem", "Rule", "SelectorPeer"]

PROTOCOL_NUMBERS = {"TCP": 6, "UDP": 17, "SCTP": 132}


class Direction(enum.Enum):
    INGRESS = "ingress"
    EGRESS = "egress"


class PortItem(msgspec.Struct, frozen=True):
    """One valid ``ports`` item. ``first``/``last`` None and ``name`` None: every port of ``protocol``."""

    protocol: str
    first: int | None = None
    last: int | None = None
    name: str | None = None


class IPBlockPeer(msgspec.Struct, frozen=True):
    """``cidr - except`` of one block; exactly one family is non-empty."""

    v4: tuple[Interval, ...] = ()
    v6: tuple[Interval, ...] = ()


class SelectorPeer(msgspec.Struct, frozen=True):
    """``namespace`` None: only the policy's namespace; ``pods`` None: every pod of the selected namespaces."""

    pods: Selector | None
    namespaces: Selector | None


Peer = IPBlockPeer | SelectorPeer


class Rule(msgspec.Struct, frozen=True):
    ports: tuple[PortItem, ...] | None
    peers: tuple[Peer, ...] | None


class EffectivePolicy(msgspec.Struct, frozen=True):
    """What a policy means once validated.

    ``subjects`` None: the podSelector was invalid, so the policy isolates every pod of its namespace and contributes
    no rules. ``isolates`` are the directions it isolates; ``ingress``/``egress`` are the rules counted for a
    direction (only for a validly enabled direction).
    """

    namespace: str
    name: str
    networks: frozenset[str]
    subjects: Selector | None
    isolates: frozenset[Direction]
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress
