"""trinet.policy: MultiNetworkPolicy semantics, pure. Cluster snapshot + one pod -> that pod's nftables ruleset.

Public API::

    Snapshot(pods, namespaces, policies, nads, previous=None)   indexed cluster state (``trinet.objects``)
    Snapshot.with_pods({"ns/name": pod or None})        the next snapshot after pod changes, in O(change)
    compile(snapshot, pod, options) -> PodRuleset       the complete desired ruleset of one pod
    PodRuleset.content_hash()                           equal rulesets, equal hashes (logs, skip unchanged pods)
    delta(old, new) -> Delta                            NoChange | ElementDelta | FullSwap
    render(ruleset) -> str                              ``nft -f`` text (logs, debugging, golden files)
    build_custom_rules(v4_ingress=CustomRuleFile(...), ...) -> CustomRules   operator rule files (nft subset)
    validate_policy(policy) -> EffectivePolicy          validation messages and the normalised policy
    evaluate(ruleset, packet)                           a packet's verdict (tests, debugging)

    trinet.policy.to_netlink (imported separately: this package does not import netlink_nft):
        to_netlink(ruleset, generation=None)            the ``netlink_nft`` Ruleset
        transaction(installed, desired) -> (Batch | None, Installed | None)   the one transaction from what we
                                                        installed, and what it installs
        adopt(dump, desired) -> (Batch | None, Installed | None)   the same from what the kernel holds
        removal(table), drop_counters(dump)             table removal; packets isolation dropped
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
