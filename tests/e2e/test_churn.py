"""Atomicity under churn across nodes with the real daemon: while a peer is relabelled in and out (set-element
deltas) and the policy's ports change (full swaps) back to back, an admitted UDP flood loses nothing and an
excluded one leaks nothing (`e2e/harness/churn.py`; `python -m e2e churn` prints the counts)."""

from __future__ import annotations

import shutil

import pytest

from e2e.harness import churn
from tests.conftest import require_root_and_nftables


def test_no_gap_and_no_leak_while_the_policy_churns() -> None:
    require_root_and_nftables()
    if shutil.which("go") is None:
        pytest.skip("the control plane needs go")
    result = churn.measure(8.0, say=lambda _line: None)
    assert result.transactions["delta"] > 10 and result.transactions["swap"] > 5, result.transactions
    assert result.admitted_sent > 10_000
    assert result.admitted_arrived == result.admitted_sent, result
    assert result.leaked == 0, result
