"""The addresses a rule's selector peers select on one network, as the elements of the rule's peer sets.

``PeerAddresses.of`` builds them from the selected pods once; ``patched`` brings them up to date for a few pods
that changed, without reading the others: unchanged elements stay the *same objects*, so the transaction's diff
of the installed and the new set compares them by identity (``delta.sorted_diff``), and the cost of a peer change
is a binary search per address plus one C-level copy of the element tuple.

An address may be held by several selected pods (a stale status, two attachments on one network): it stays in
the set until the last of them goes, so the few such addresses are counted (``shared``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import chain
from typing import TYPE_CHECKING

from trinet.policy.model import SelectorPeer

if TYPE_CHECKING:
    from trinet.policy.snapshot import PodInfo

__all__ = ["Element", "PeerAddresses", "PeerKey", "selects"]

Element = tuple[tuple[int, int]]  # one address as a hash-set element: ((a, a),)
PeerKey = tuple[str, tuple[SelectorPeer, ...], str]  # (the policy's namespace, a rule's selector peers, network)


def selects(
    peers: Iterable[SelectorPeer],
    policy_namespace: str,
    namespace_labels: Mapping[str, Mapping[str, str]],
    info: PodInfo,
) -> bool:
    """Whether any of ``peers`` selects the pod (§2.4.20) and its addresses count (§2.4.22)."""
    if not info.is_peer:
        return False
    namespace = info.namespace
    for peer in peers:
        if peer.namespaces is None:
            if namespace != policy_namespace:
                continue
        elif not peer.namespaces.matches(namespace_labels.get(namespace, {})):
            continue
        if peer.pods is None or peer.pods.matches(info.labels):
            return True
    return False


def _distinct(infos: Iterable[PodInfo], network: str, family: int) -> Iterable[int]:
    """Each pod's addresses on ``network`` in ``family`` (0: v4, 1: v6), once per pod."""
    for info in infos:
        yield from set(info.addresses(network)[family])


class PeerAddresses:
    """Per family (v4, v6): the sorted elements, and the addresses held by more than one selected pod."""

    __slots__ = ("elements", "shared")

    def __init__(
        self, elements: tuple[tuple[Element, ...], tuple[Element, ...]], shared: tuple[dict[int, int], dict[int, int]]
    ) -> None:
        self.elements = elements
        self.shared = shared

    @classmethod
    def of(cls, selected: Iterable[PodInfo], network: str) -> PeerAddresses:
        infos = tuple(selected)
        elements: list[tuple[Element, ...]] = []
        shared: list[dict[int, int]] = []
        for family in (0, 1):
            counts = Counter(_distinct(infos, network, family))
            elements.append(tuple(((a, a),) for a in sorted(counts)))
            shared.append({a: n for a, n in counts.items() if n > 1})
        return cls((elements[0], elements[1]), (shared[0], shared[1]))

    def patched(self, gone: Iterable[PodInfo], came: Iterable[PodInfo], network: str) -> PeerAddresses:
        """These addresses after the selected pods ``gone`` (as they were) left and ``came`` (as they are) joined;
        a pod that changed and is still selected is in both. ``self`` is not modified."""
        gone, came = tuple(gone), tuple(came)
        if not gone and not came:
            return self
        elements: list[tuple[Element, ...]] = []
        shared: list[dict[int, int]] = []
        for family in (0, 1):
            before, held = self.elements[family], self.shared[family]
            change: Counter[int] = Counter(_distinct(came, network, family))
            change.subtract(_distinct(gone, network, family))
            removed, added = [], []
            new_held = held
            for address, delta in change.items():
                if not delta:
                    continue
                count = held.get(address) or _present(before, address)
                after = count + delta
                if after < 0:
                    raise ValueError(f"address {address} of a leaving pod was not counted")
                if count == 0:
                    added.append(address)
                elif after == 0:
                    removed.append(address)
                if max(count, after) > 1:
                    if new_held is held:
                        new_held = dict(held)
                    if after > 1:
                        new_held[address] = after
                    else:
                        new_held.pop(address, None)
            elements.append(_spliced(before, removed, added) if removed or added else before)
            shared.append(new_held)
        return PeerAddresses((elements[0], elements[1]), (shared[0], shared[1]))


def _present(elements: tuple[Element, ...], address: int) -> int:
    i = bisect_left(elements, ((address, address),))
    return int(i < len(elements) and elements[i] == ((address, address),))


def _spliced(elements: tuple[Element, ...], removed: list[int], added: list[int]) -> tuple[Element, ...]:
    """``elements`` without ``removed`` (present) and with ``added`` (absent), in one C-level copy: the slices
    between the changes keep their element objects."""
    edits = sorted(
        [(bisect_left(elements, ((a, a),)), 0, a) for a in added]  # an insertion goes before the element at i
        + [(bisect_left(elements, ((a, a),)), 1, a) for a in removed]
    )
    pieces: list[tuple[Element, ...]] = []
    start = 0
    for i, kind, address in edits:
        pieces.append(elements[start:i])
        if kind == 0:
            pieces.append((((address, address),),))
            start = i
        else:
            start = i + 1
    pieces.append(elements[start:])
    return tuple(chain.from_iterable(pieces))
