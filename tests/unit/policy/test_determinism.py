"""DESIGN.md: "the same inputs give the same bytes", whatever order the cluster objects arrive in."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.policy.builders import World, property_settings
from tests.unit.policy.test_property_oracle import worlds
from trinet.policy import Snapshot, compile, render


@property_settings
@given(worlds(), st.randoms(use_true_random=False))
def test_compile_is_independent_of_input_order(world: World, rng: random.Random) -> None:
    pods, policies = list(world.pods.values()), list(world.policies)
    namespaces, nads = list(world.namespaces), list(world.nads)
    for items in (pods, policies, namespaces, nads):
        rng.shuffle(items)
    shuffled = Snapshot(pods, namespaces, policies, nads)
    for ref, pod in world.pods.items():
        again = compile(shuffled, pod, world.options)
        assert again == world.ruleset(ref)
        assert again.content_hash() == world.ruleset(ref).content_hash()
        assert render(again) == render(world.ruleset(ref))
