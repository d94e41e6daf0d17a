"""render(compile(...)) is valid nftables: nft 1.0.6 loads it into a throwaway netns and lists it back.

Covers the golden scenarios and random clusters from the property-test generators (v4/v6, named ports, ranges,
except, concatenations, several interfaces).
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tests.support.nft import nft
from tests.unit.policy.builders import World
from tests.unit.policy.test_golden import stacked_multinet
from tests.unit.policy.test_property_oracle import worlds
from trinet.policy import CompileOptions
from trinet.policy.custom_rules import CustomRuleFile, build_custom_rules
from trinet.policy.render import render

GOLDEN = Path(__file__).parent.parent / "golden" / "policy"


def load(netns: str, text: str) -> None:
    text = "flush ruleset\n" + text
    nft(netns, "-c", "-f", "-", stdin=text)  # check mode first: a clear error before anything changes
    nft(netns, "-f", "-", stdin=text)


def test_golden_rulesets_load(netns: str) -> None:
    files = sorted(GOLDEN.glob("*.nft"))
    assert files, "golden files missing"
    for path in files:
        load(netns, path.read_text())
        assert "table inet multi_networkpolicy" in nft(netns, "list", "ruleset")


_COUNTS = re.compile(r"counter packets \d+ bytes \d+")


def chain_rules(text: str) -> dict[str, list[str]]:
    """The rule lines of each chain, in order (declarations, blank lines and comments left out; counter values,
    which nft lists after `counter`, too)."""
    chains: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("chain ") and line.endswith("{"):
            current = chains.setdefault(line.split()[1], [])
        elif line == "}":
            current = None
        elif current is not None and line and not line.startswith(("type ", "#")):
            current.append(_COUNTS.sub("counter", line))
    return chains


def test_rules_read_back_as_rendered(netns: str) -> None:
    """`nft list` shows every compiled rule exactly as render() wrote it: operators read what we log."""
    for path in sorted(GOLDEN.glob("*.nft")):
        text = path.read_text()
        load(netns, text)
        listed = nft(netns, "list", "table", "inet", "multi_networkpolicy")
        assert chain_rules(listed) == chain_rules(text), path.name


def test_custom_rules_load(netns: str, tmp_path: Path) -> None:
    (tmp_path / "v4").write_text("tcp dport 9999 accept\nip saddr { 10.0.0.0/8, 192.168.1.1-192.168.1.9 } accept\n")
    (tmp_path / "v6").write_text("icmpv6 type { nd-neighbor-solicit, packet-too-big } accept\nct state invalid drop\n")
    custom = build_custom_rules(
        v4_ingress=CustomRuleFile("v4", (tmp_path / "v4").read_text()),
        v6_egress=CustomRuleFile("v6", (tmp_path / "v6").read_text()),
    )
    world = stacked_multinet(CompileOptions(custom=custom))
    text = render(world.ruleset("ns/s"))
    load(netns, text)
    assert chain_rules(nft(netns, "list", "table", "inet", "multi_networkpolicy")) == chain_rules(text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds())
def test_random_compiled_rulesets_load(netns: str, world: World) -> None:
    for ref in world.pods:
        ruleset = world.ruleset(ref)
        if ruleset.enforces:
            text = render(ruleset)
            load(netns, text)
            assert chain_rules(nft(netns, "list", "table", "inet", "multi_networkpolicy")) == chain_rules(text)
