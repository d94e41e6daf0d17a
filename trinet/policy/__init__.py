"""trinet.policy: MultiNetworkPolicy semantics, pure. Cluster snapshot + one pod -> that pod's nftables ruleset.

Public API::

    Snapshot(pods, namespaces, policies, nads)          indexed cluster state (types in ``trinet.policy.types``)
    compile(snapshot, pod, options) -> PodRuleset       the complete desired ruleset of one pod
    render(ruleset) -> str                              ``nft -f`` text
    delta(old, new) -> Delta                            minimal change between two rulesets
    load_custom_rules(...) -> CustomRules               operator rule files (a documented nft subset)
    validate_policy(policy) -> EffectivePolicy          validation messages and the normalised policy
    evaluate(ruleset, packet)                           a packet's verdict (tests, debugging)
"""

from trinet.policy.compile import CompileOptions, CustomRules, compile
from trinet.policy.interpreter import Packet, evaluate
from trinet.policy.ruleset import PodRuleset
from trinet.policy.snapshot import Snapshot
from trinet.policy.validation import validate_policy

__all__ = [
    "CompileOptions",
    "CustomRules",
    "Packet",
    "PodRuleset",
    "Snapshot",
    "compile",
    "evaluate",
    "validate_policy",
]
