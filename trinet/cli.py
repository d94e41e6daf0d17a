"""Command-line entry point (console script ``trinet``, ``python -m trinet``): subcommands only.

Each subcommand builds ``Settings`` from flags and environment (``trinet.daemon.settings``) and calls one function.
Exit status: 0 success, 1 a runtime failure, 2 invalid configuration or usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

import trio

from trinet import __version__
from trinet.daemon.settings import (
    ConfigError,
    Settings,
    add_arguments,
    from_sources,
    load_custom_rules,
    validate_for_run,
)
from trinet.observability.arguments import add_explain_arguments, add_render_arguments

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trinet",
        description=(
            "Enforce MultiNetworkPolicy on Multus secondary networks: one atomic nftables "
            "transaction per pod network namespace."
        ),
    )
    parser.add_argument("--version", action="version", version=f"trinet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in (
        ("run", "run the node daemon until SIGTERM (rules are left in place when it stops)"),
        ("cleanup", "remove trinet's table from every pod of this node (uninstall)"),
        ("check-config", "validate the settings and custom rule files; exit 2 on any error"),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_arguments(sub)
    for name, help_text, add_own in (  # trinet.observability: read the cluster through the kubeconfig, no root
        ("render", "print the nft ruleset the daemon would install for a pod", add_render_arguments),
        ("explain", "is a flow between two pods allowed, and why (oracle + compiled rulesets)", add_explain_arguments),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_own(sub)
        add_arguments(sub)
    return parser


def _config_problems(settings: Settings) -> list[str]:
    """Everything ``run`` would refuse to start on, as messages (custom rules as file:line)."""
    from trinet.kube import KubeConfigError, load_config  # noqa: PLC0415 (not needed for --help)

    problems = validate_for_run(settings)
    try:
        load_custom_rules(settings)
    except ConfigError as exc:
        problems += exc.problems
    try:
        load_config(settings.kubeconfig)
    except KubeConfigError as exc:
        problems.append(f"--kubeconfig: {exc}")
    return problems


def _report(problems: list[str], err: TextIO) -> None:
    print("trinet: invalid configuration:", file=err)
    for problem in problems:
        print(f"  {problem}", file=err)


def _run(settings: Settings) -> int:
    from netlink_nft import KernelTooOld  # noqa: PLC0415
    from trinet.daemon.daemon import run  # noqa: PLC0415
    from trinet.daemon.logs import configure  # noqa: PLC0415

    configure(settings.log_level, settings.log_format)
    try:
        trio.run(run, settings)
    except KernelTooOld as exc:
        print(f"trinet: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BaseExceptionGroup as group:  # e.g. a bind address in use: say so in one line, no traceback
        leaves = _leaves(group)
        if not all(isinstance(e, OSError) for e in leaves):
            raise
        for leaf in leaves:
            print(f"trinet: cannot run: {leaf}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def _cleanup(settings: Settings) -> int:
    from trinet.daemon.cleanup import cleanup  # noqa: PLC0415
    from trinet.daemon.logs import configure  # noqa: PLC0415

    configure(settings.log_level, settings.log_format)
    return EXIT_FAILURE if trio.run(cleanup, settings) else EXIT_OK


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(out)
        return EXIT_CONFIG
    try:
        settings = from_sources(args, os.environ if environ is None else environ)
    except ConfigError as exc:
        _report(exc.problems, err)
        return EXIT_CONFIG
    if args.command in ("render", "explain"):  # no node needed: the checks below are for the daemon
        from trinet.observability.commands import explain_main, render_main  # noqa: PLC0415

        if args.command == "render":
            return render_main(settings, args.pod, out, err, args.generation)
        return explain_main(settings, args, out, err)
    problems = _config_problems(settings)
    if problems:
        _report(problems, err)
        return EXIT_CONFIG
    if args.command == "check-config":
        print(f"trinet: configuration OK (node {settings.node_name}, table {settings.table_name})", file=out)
        return EXIT_OK
    if args.command == "cleanup":
        return _cleanup(settings)
    return _run(settings)
