"""Fixtures of the netlink_nft kernel tests: a socket in a throwaway namespace, and the `nft` CLI as an oracle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from netlink_nft import KernelFeatures, NftSocket, probe_kernel
from tests.support.netns import netns_path
from tests.support.nft import nft


def _strip_handles(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_handles(v) for k, v in node.items() if k != "handle"}
    if isinstance(node, list):
        return [_strip_handles(v) for v in node]
    return node


def _listing_order(obj: dict[str, Any]) -> tuple[str, str]:
    (kind, body), *_ = obj.items()
    return kind, body.get("chain", body.get("name", ""))


def nft_json(netns: str) -> list[dict[str, Any]]:
    """`nft -j list ruleset` without metainfo and kernel handles: the structure an operator reads.

    Objects are sorted by kind and name (nft lists them in creation order); rules keep their order in a chain.
    """
    objects = json.loads(nft(netns, "-j", "list", "ruleset"))["nftables"]
    return sorted((_strip_handles(o) for o in objects if "metainfo" not in o), key=_listing_order)


@pytest.fixture
def nft_sock(netns: str) -> Iterator[NftSocket]:
    with NftSocket.open(netns_path(netns)) as sock:
        yield sock


@pytest.fixture(scope="session")
def kernel_features() -> KernelFeatures:
    """What the running kernel supports (probed once, in a namespace of its own)."""
    return probe_kernel()


@pytest.fixture(autouse=True)
def _needs_destroy(request: pytest.FixtureRequest) -> None:
    """Tests marked `needs_destroy` use NFT_MSG_DESTROY* (kernel >= 6.3); older kernels deselect them with
    `-m "not needs_destroy"` (a skip would count as a failure in CI, and should: it must be deselected)."""
    if request.node.get_closest_marker("needs_destroy") is None:
        return
    features: KernelFeatures = request.getfixturevalue("kernel_features")
    if not features.destroy:
        pytest.skip(f'kernel {features.release} has no DESTROY messages (6.3+): run with -m "not needs_destroy"')
