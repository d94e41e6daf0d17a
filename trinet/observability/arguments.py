"""The command-line arguments of ``render`` and ``explain`` (light: used to build ``trinet --help``)."""

from __future__ import annotations

import argparse

__all__ = ["add_explain_arguments", "add_render_arguments"]

PROTOCOLS = ("TCP", "UDP", "SCTP", "ICMP")


def add_render_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pod", metavar="NAMESPACE/POD", help="the pod whose ruleset to print")
    parser.add_argument(
        "--generation",
        type=int,
        choices=(1, 2),
        default=1,
        help="name the sets as generation 1 (a fresh install, default) or 2 (after an odd number of full swaps)",
    )


def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC_POD", help="source pod, NAMESPACE/NAME")
    parser.add_argument("dst", metavar="DST_POD", help="destination pod, NAMESPACE/NAME")
    parser.add_argument("--protocol", required=True, type=str.upper, choices=PROTOCOLS, help="the flow's protocol")
    parser.add_argument("--port", type=int, help="destination port (TCP, UDP, SCTP)")
    parser.add_argument(
        "--network",
        metavar="NS/NAD",
        help="the secondary network; a bare NAD name is in SRC_POD's namespace (default: every one they share)",
    )
    parser.add_argument("--family", type=int, choices=(4, 6), help="IP family (default: each both pods have)")
