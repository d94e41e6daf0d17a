"""The addresses a rule's selector peers select on one network, as the elements of the rule's peer sets.

``PeerAddresses.of`` builds them from the selected pods once; ``patched`` brings them up to date for a few pods
that changed, without reading the others. The elements are chunked (``Elements``): a patch rebuilds only the
chunks it changes and shares the others with the version before, so the transaction's diff of the installed and
the new set reads only those chunks, and a peer change costs the same whatever the number of peers.

An address may be held by several selected pods (a stale status, two attachments on one network): it stays in
the set until the last of them goes, so the few such addresses are counted (``shared``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from trinet.policy.elements import Elements
from trinet.policy.model import SelectorPeer

if TYPE_CHECKING:
    from trinet.policy.snapshot import PodInfo

__all__ = ["Element", "PeerAddresses", "PeerKey", "selects"]

Element = tuple[tuple[int, int], ...]  # a set element; here one address: ((a, a),)
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


def _distinct(infos: Iterable[PodInfo], network: str) -> tuple[list[int], list[int]]:
    """Each pod's addresses on ``network``, v4 and v6, once per pod."""
    v4: list[int] = []
    v6: list[int] = []
    for info in infos:
        mine4, mine6 = info.addresses(network)
        v4.extend(mine4 if len(mine4) < 2 else set(mine4))
        v6.extend(mine6 if len(mine6) < 2 else set(mine6))
    return v4, v6


class PeerAddresses:
    """Per family (v4, v6): the sorted elements, and the addresses held by more than one selected pod."""

    __slots__ = ("elements", "shared")

    def __init__(
        self, elements: tuple[Elements[Element], Elements[Element]], shared: tuple[dict[int, int], dict[int, int]]
    ) -> None:
        self.elements = elements
        self.shared = shared

    @classmethod
    def of(cls, selected: Iterable[PodInfo], network: str) -> PeerAddresses:
        elements: list[Elements[Element]] = []
        shared: list[dict[int, int]] = []
        for addresses in _distinct(selected, network):
            counts = Counter(addresses)
            elements.append(Elements.of([((a, a),) for a in sorted(counts)]))
            shared.append({a: n for a, n in counts.items() if n > 1} if len(counts) < len(addresses) else {})
        return cls((elements[0], elements[1]), (shared[0], shared[1]))

    def patched(self, gone: Iterable[PodInfo], came: Iterable[PodInfo], network: str) -> PeerAddresses:
        """These addresses after the selected pods ``gone`` (as they were) left and ``came`` (as they are) joined;
        a pod that changed and is still selected is in both. ``self`` is not modified."""
        gone, came = tuple(gone), tuple(came)
        if not gone and not came:
            return self
        gone_addresses, came_addresses = _distinct(gone, network), _distinct(came, network)
        elements: list[Elements[Element]] = []
        shared: list[dict[int, int]] = []
        for family in (0, 1):
            before, held = self.elements[family], self.shared[family]
            change: Counter[int] = Counter(came_addresses[family])
            change.subtract(gone_addresses[family])
            removed, added = [], []
            new_held = held
            for address, delta in change.items():
                if not delta:
                    continue
                count = held.get(address) or int(((address, address),) in before)
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
            elements.append(before.spliced(_as_elements(removed), _as_elements(added)))
            shared.append(new_held)
        return PeerAddresses((elements[0], elements[1]), (shared[0], shared[1]))


def _as_elements(addresses: list[int]) -> list[Element]:
    return [((a, a),) for a in addresses]
