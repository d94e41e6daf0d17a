"""``Elements``: a chunked sorted sequence that behaves as the tuple of its elements, changes in O(change) and is
diffed chunk by chunk."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.policy.builders import property_settings
from trinet.policy.elements import CHUNK, Elements

Element = tuple[tuple[int, int]]
values_st = st.sets(st.integers(0, 6 * CHUNK), max_size=5 * CHUNK)
edits_st = st.lists(st.tuples(st.sets(st.integers(0, 6 * CHUNK), max_size=40), st.booleans()), max_size=6)


def _elements(values: set[int]) -> tuple[Element, ...]:
    return tuple(((v, v),) for v in sorted(values))


@property_settings
@given(values_st, edits_st)
def test_spliced_versions_are_the_sets_they_stand_for(start: set[int], edits: list[tuple[set[int], bool]]) -> None:
    model = set(start)
    versions = [Elements.of(_elements(model))]
    for values, adding in edits:
        change = values - model if adding else values & model
        spliced = versions[-1].spliced(() if adding else _elements(change), _elements(change) if adding else ())
        model = model | change if adding else model - change
        versions.append(spliced)
        expected = _elements(model)
        assert spliced == expected and tuple(spliced) == expected and len(spliced) == len(expected)
        assert hash(spliced) == hash(expected)
        assert spliced == Elements.of(expected)  # equal whatever the chunking
        chunks = spliced._chunks
        assert all(0 < len(c) <= 2 * CHUNK for c in chunks)
        assert all(len(c) >= CHUNK // 4 for c in chunks[1:])
        for probe in (0, CHUNK, 3 * CHUNK, 6 * CHUNK):
            assert (((probe, probe),) in spliced) == (probe in model)
        if expected:
            assert spliced[0] == expected[0] and spliced[-1] == expected[-1]
            assert spliced[len(expected) // 2] == expected[len(expected) // 2]
            assert spliced[1:3] == expected[1:3]
    first, last = versions[0], versions[-1]
    old, new = set(start), model
    assert first.diff(last) == (_elements(old - new), _elements(new - old))
    assert last.diff(first) == (_elements(new - old), _elements(old - new))
    apart = Elements.of(_elements(new))  # the same content built apart: no chunk shared
    assert first.diff(apart) == (_elements(old - new), _elements(new - old))


def test_a_splice_shares_every_chunk_it_does_not_change() -> None:
    before = Elements.of(_elements(set(range(0, 20 * CHUNK, 2))))
    after = before.spliced((), _elements({CHUNK + 1}))
    shared = [c for c in after._chunks if any(c is old for old in before._chunks)]
    assert len(shared) == len(before._chunks) - 1
    assert before.diff(after) == ((), _elements({CHUNK + 1}))


def test_removing_an_absent_or_adding_a_present_element_is_refused() -> None:
    elements = Elements.of(_elements({1, 2, 3}))
    with pytest.raises(ValueError, match="not in the set"):
        elements.spliced(_elements({4}), ())
    with pytest.raises(ValueError, match="already in the set"):
        elements.spliced((), _elements({2}))
    assert elements == _elements({1, 2, 3})


def test_an_empty_set_grows_and_shrinks_back() -> None:
    empty: Elements[Element] = Elements.of(())
    assert len(empty) == 0 and empty == () and ((1, 1),) not in empty
    grown = empty.spliced((), _elements(set(range(10 * CHUNK))))
    assert grown == _elements(set(range(10 * CHUNK)))
    assert all(CHUNK // 2 <= len(c) <= CHUNK for c in grown._chunks)
    assert grown.spliced(_elements(set(range(10 * CHUNK))), ()) == ()


def test_the_rest_of_the_sequence_protocol_behaves_as_the_tuple() -> None:
    expected = _elements(set(range(0, 3 * CHUNK + 5, 3)))
    elements = Elements.of(expected)
    assert tuple(reversed(elements)) == tuple(reversed(expected))
    middle = expected[len(expected) // 2]
    assert elements.index(middle) == expected.index(middle)
    assert elements.count(middle) == 1 and elements.count(((1, 1),)) == 0
    with pytest.raises(ValueError):
        elements.index(((1, 1),))
    others: list[object] = [5, ("x",)]
    assert not any(other in elements for other in others)  # other shapes: absent, as in the tuple
    assert all(len(c) >= CHUNK // 2 for c in Elements.of(_elements(set(range(CHUNK + 1))))._chunks)
