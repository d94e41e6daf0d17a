"""The policy model's values and the parsed pods are left out of the cyclic garbage collector (``gc=False``: see
``ruleset._V``): a cycle through them would never be freed. That holds only while they are made of immutable
parts that cannot lead back to them; this walks everything ``compile`` and the snapshot make and says so.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from hypothesis import given

from tests.unit.policy.builders import World, property_settings
from tests.unit.policy.test_property_oracle import worlds
from trinet.policy import Snapshot, compile
from trinet.policy.elements import Elements

_ATOMS = (str, int, bool, bytes, type(None))


def _mutable_parts(value: object, path: str) -> list[str]:
    """Where ``value`` holds something other than atoms, tuples, frozensets, chunked elements, label mappings of
    strings and untracked msgspec values."""
    if isinstance(value, _ATOMS):
        return []
    if isinstance(value, msgspec.Struct):
        if type(value).__struct_config__.gc:
            return [f"{path}: {type(value).__name__} is tracked by the collector"]
        return [p for f in value.__struct_fields__ for p in _mutable_parts(getattr(value, f), f"{path}.{f}")]
    if isinstance(value, tuple | frozenset):
        return [p for i, item in enumerate(value) for p in _mutable_parts(item, f"{path}[{i}]")]
    if isinstance(value, Elements):
        return _mutable_parts(tuple(value), f"{path}.elements")
    if isinstance(value, Mapping) and all(isinstance(x, str) for item in value.items() for x in item):
        return []  # a pod's labels: strings only
    return [f"{path}: {type(value).__name__}"]


@property_settings
@given(worlds())
def test_compiled_rulesets_and_parsed_pods_hold_only_immutable_parts(world: World) -> None:
    snapshot = Snapshot(world.pods.values(), world.namespaces, world.policies, world.nads)
    for ref, pod in world.pods.items():
        assert _mutable_parts(compile(snapshot, pod, world.options), ref) == []
        assert _mutable_parts(snapshot.info(pod), ref) == []
