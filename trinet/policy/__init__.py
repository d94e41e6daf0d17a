"""trinet.policy: MultiNetworkPolicy semantics, pure. Cluster snapshot + one pod -> that pod's nftables ruleset.

Public API::

    Snapshot(pods, namespaces, policies, nads, previous=None)   indexed cluster state (``trinet.objects``)
    compile(snapshot, pod, options) -> PodRuleset       the complete desired ruleset of one pod
    PodRuleset.content_hash() / .structure_hash()       skip unchanged pods / detect element-only changes
    delta(old, new) -> Delta                            NoChange | ElementDelta | FullSwap
    render(ruleset) -> str                              ``nft -f`` text (logs, debugging, golden files)
    build_custom_rules(v4_ingress=CustomRuleFile(...), ...) -> CustomRules   operator rule files (nft subset)
    validate_policy(policy) -> EffectivePolicy          validation messages and the normalised policy
    evaluate(ruleset, packet)                           a packet's verdict (tests, debugging)

    trinet.policy.to_netlink.to_netlink(ruleset)        the ``netlink_nft`` Ruleset, and
    trinet.policy.to_netlink.transaction(installed, desired) -> (Batch | None, Installed | None)
                                                        the one netlink_nft transaction, and what it installs
                                                        (imported separately: this package does not import
                                                        netlink_nft)
    trinet.policy.oracle.Oracle(...).allowed(...)       the reference evaluator of semantics.md §2.10 (tests)

Where upstream is silent, the choices are listed in ``DECISIONS.md`` next to this file.
"""

from trinet.policy.compile import CompileOptions, CustomRules, compile
from trinet.policy.custom_rules import CustomRuleError, CustomRuleFile, build_custom_rules
from trinet.policy.delta import Delta, ElementDelta, FullSwap, NoChange, SetElementChange, delta
from trinet.policy.interpreter import Packet, evaluate
from trinet.policy.render import render
from trinet.policy.ruleset import PodRuleset
from trinet.policy.snapshot import Snapshot
from trinet.policy.validation import validate_policy

__all__ = [
    "CompileOptions",
    "CustomRuleError",
    "CustomRuleFile",
    "CustomRules",
    "Delta",
    "ElementDelta",
    "FullSwap",
    "NoChange",
    "Packet",
    "PodRuleset",
    "SetElementChange",
    "Snapshot",
    "build_custom_rules",
    "compile",
    "delta",
    "evaluate",
    "render",
    "validate_policy",
]
