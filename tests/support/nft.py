"""The `nft` binary as a test oracle (never used by trinet itself)."""

from __future__ import annotations

import subprocess


def nft(netns: str, *args: str, stdin: str | None = None) -> str:
    """Run `nft ARGS` inside the namespace and return its stdout; raise with stderr (and the input) on failure."""
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", *args], input=stdin, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        shown = f"\n--- input ---\n{stdin}" if stdin else ""
        raise RuntimeError(f"nft {' '.join(args)} failed: {proc.stderr.strip()}{shown}")
    return proc.stdout
