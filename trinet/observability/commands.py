"""The ``render`` and ``explain`` commands: read the cluster through the kubeconfig, answer, exit. No root needed.

Both take the daemon's ``Settings`` so that they compile with exactly the options the daemon uses (network
plugins, ICMP flags, custom rule files, table name).
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

import httpx

from trinet.daemon.settings import ConfigError, Settings, compile_options, load_custom_rules
from trinet.kube.client import ApiError
from trinet.kube.config import KubeConfigError, load_config
from trinet.observability.cluster import ClusterObjects, read_cluster
from trinet.observability.explain import EXIT_ERROR, ExplainError, Flow, exit_status, explain
from trinet.observability.explain import format_explanations as _format
from trinet.observability.render import RenderError, render_pod
from trinet.policy import CompileOptions

__all__ = ["explain_main", "render_main"]


def _load(settings: Settings, err: TextIO) -> tuple[ClusterObjects, CompileOptions] | None:
    try:
        options = compile_options(settings, load_custom_rules(settings))
        objects = read_cluster(load_config(settings.kubeconfig))
    except ConfigError as exc:
        print(f"trinet: {exc}", file=err)
        return None
    except KubeConfigError as exc:
        print(f"trinet: {exc}", file=err)
        return None
    except (ApiError, httpx.HTTPError, OSError) as exc:
        print(f"trinet: cannot read the cluster: {exc}", file=err)
        return None
    return objects, options


def render_main(
    settings: Settings, pod: str, out: TextIO = sys.stdout, err: TextIO = sys.stderr, generation: int = 1
) -> int:
    """Print the nft text the daemon would install for ``pod``; problems it ignores go to ``err``. 0 or 2."""
    loaded = _load(settings, err)
    if loaded is None:
        return EXIT_ERROR
    objects, options = loaded
    try:
        text, problems = render_pod(objects.snapshot(), pod, options, generation)
    except RenderError as exc:
        print(f"trinet render: {exc}", file=err)
        return EXIT_ERROR
    for problem in problems:
        print(f"warning: {problem} (ignored; isolation kept)", file=err)
    out.write(text)
    return 0


def explain_main(
    settings: Settings, args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Explain the flow of ``args`` (see ``add_explain_arguments``): 0 allowed, 1 denied, 2 error, 3 the oracle and
    the compiled rulesets disagree (a bug)."""
    loaded = _load(settings, err)
    if loaded is None:
        return EXIT_ERROR
    objects, options = loaded
    flow = Flow(args.src, args.dst, args.protocol, args.port, args.network, args.family)
    try:
        explanations = explain(
            objects.snapshot(), objects.policies, objects.oracle(options.network_plugins), flow, options
        )
    except ExplainError as exc:
        print(f"trinet explain: {exc}", file=err)
        return EXIT_ERROR
    out.write(_format(explanations))
    return exit_status(explanations)
