"""``trinet render NAMESPACE/POD``: the ruleset the daemon would install for one pod, as ``nft -f`` text."""

from __future__ import annotations

from trinet.policy import CompileOptions, Snapshot, compile, render
from trinet.policy.to_netlink import versioned

__all__ = ["RenderError", "render_pod"]


class RenderError(Exception):
    """The pod cannot be rendered (not found, malformed reference)."""


def render_pod(snapshot: Snapshot, ref: str, options: CompileOptions, generation: int = 1) -> tuple[str, list[str]]:
    """(nft text, problems): the text is what ``compile`` gives for the pod with the daemon's ``options``, its named
    sets called as the daemon names them in ``generation`` (``.g1`` on a fresh install; each full swap moves them
    to the other one, DECISIONS 28); when the pod needs no enforcement it is a single comment (the daemon then
    installs no table). ``problems`` are the
    malformed parts of the pod's annotations and the validation errors of the policies of its namespace, each of
    which was ignored (isolation kept)."""
    if ref.count("/") != 1 or not all(ref.split("/")):
        raise RenderError(f"{ref!r}: give a pod as NAMESPACE/NAME")
    pod = snapshot.pods.get(ref)
    if pod is None:
        raise RenderError(f"pod {ref} not found")
    ruleset = compile(snapshot, pod, options)
    problems = [f"pod {ref}: {p}" for p in snapshot.info(pod).problems]
    for policy in snapshot.policies_in(pod.metadata.namespace):
        problems += [f"policy {policy.key}: {e}" for e in policy.errors]
    if not ruleset.enforces:
        return f"# {ref}: nothing to enforce; the daemon installs no table in this pod's network namespace\n", problems
    return render(versioned(ruleset, generation)), problems
