"""The `nft` binary as a test oracle (never used by trinet itself)."""

from __future__ import annotations

import json
import subprocess
from typing import Any


def nft(netns: str, *args: str, stdin: str | None = None) -> str:
    """Run `nft ARGS` inside the namespace and return its stdout; raise with stderr (and the input) on failure."""
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", *args], input=stdin, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        shown = f"\n--- input ---\n{stdin}" if stdin else ""
        raise RuntimeError(f"nft {' '.join(args)} failed: {proc.stderr.strip()}{shown}")
    return proc.stdout


def _strip(node: Any) -> Any:
    """Drop kernel handles and counter values: identity, not state."""
    if isinstance(node, dict):
        return {k: {} if k == "counter" else _strip(v) for k, v in node.items() if k != "handle"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def listing(netns: str) -> list[Any]:
    """`nft -j list ruleset` without metainfo, handles and counter values: the structure an operator reads.

    Objects are sorted by kind and name (nft lists them in creation order); rules keep their order in a chain.
    """
    objects = [_strip(o) for o in json.loads(nft(netns, "-j", "list", "ruleset"))["nftables"] if "metainfo" not in o]

    def key(o: dict[str, Any]) -> tuple[str, str]:
        (kind, body), *_ = o.items()
        return kind, body.get("chain", body.get("name", ""))

    return sorted(objects, key=key)
