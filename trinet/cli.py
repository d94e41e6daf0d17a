"""Command-line entry point of the trinet daemon."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from trinet import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trinet",
        description=(
            "Enforce MultiNetworkPolicy on Multus secondary networks: one atomic nftables "
            "transaction per pod network namespace."
        ),
    )
    parser.add_argument("--version", action="version", version=f"trinet {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return 0
