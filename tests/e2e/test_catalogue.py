"""The e2e catalogue (e2e/scenarios/*.yaml) against the real daemon: every scenario in its own process with its own
control plane, nodes and daemons, `TRINET_E2E_JOBS` (default 3) at a time. One test per scenario file; the
session's summary line (scenarios, probes, wall time, change-to-enforcement times) goes to the terminal."""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import pytest

from e2e.harness import parallel, runner
from tests.conftest import require_root_and_nftables

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "e2e" / "scenarios").glob("*.yaml"))
JOBS = int(os.environ.get("TRINET_E2E_JOBS", "3"))


@pytest.fixture(scope="session")
def catalogue(pytestconfig: pytest.Config) -> dict[Path, tuple[runner.Result, str]]:
    require_root_and_nftables()
    if shutil.which("go") is None:
        pytest.skip("the control plane needs go")
    from e2e.controlplane import build_binaries  # noqa: PLC0415

    build_binaries()  # once, before the children look for it in the cache
    outputs: dict[Path, str] = {}
    started = time.monotonic()
    results = parallel.run_files(SCENARIOS, jobs=JOBS, on_done=lambda p, _r, out: outputs.__setitem__(p, out))
    wall = time.monotonic() - started
    times = sorted(t for r in results.values() for t in r.convergence)
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(
            f"\ne2e catalogue: {sum(r.passed for r in results.values())}/{len(results)} scenarios, "
            f"{sum(r.expects for r in results.values())} matrices, {sum(r.probes for r in results.values())} probes, "
            f"{wall:.1f}s wall with {JOBS} jobs"
            + (f"; change -> enforcement: median {statistics.median(times):.3f}s, "
               f"p95 {times[round(0.95 * (len(times) - 1))]:.3f}s" if times else ""),
            file=sys.stderr,
        )  # fmt: skip
    return {p: (r, outputs.get(p, "")) for p, r in results.items()}


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(catalogue: dict[Path, tuple[runner.Result, str]], path: Path) -> None:
    result, output = catalogue[path]
    assert result.passed, f"{path.name} failed:\n{result.error}\n--- output ---\n{output[-4000:]}"
    assert result.expects >= 1 and result.probes > 0
