"""``python -m trinet.observability {render,explain} ...``: the two commands without the daemon's CLI."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from trinet.daemon.settings import ConfigError, add_arguments, from_sources
from trinet.observability.commands import add_explain_arguments, add_render_arguments, explain_main, render_main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trinet", description="Inspect what trinet enforces (no root needed).")
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="print the nft ruleset the daemon would install for a pod")
    add_render_arguments(render)
    add_arguments(render)
    explain = commands.add_parser("explain", help="is a flow between two pods allowed, and why")
    add_explain_arguments(explain)
    add_arguments(explain)
    args = parser.parse_args(argv)
    try:
        settings = from_sources(args, os.environ)
    except ConfigError as exc:
        print(f"trinet: {exc}", file=sys.stderr)
        return 2
    if args.command == "render":
        return render_main(settings, args.pod)
    return explain_main(settings, args)


if __name__ == "__main__":
    sys.exit(main())
