"""Shared helpers of the netlink_nft benchmarks: timing, `nft -f` as the baseline, result tables.

Every benchmark runs netlink_nft and `ip netns exec NS nft -f FILE` on the same ruleset in the same process run,
in throwaway namespaces. The nft input is the listing of what netlink_nft installed (`nft list ruleset`), and
after loading it with nft the listing must be identical, so both sides really do the same work.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass


def median_ms(run: Callable[[], object], reps: int, setup: Callable[[], object] = lambda: None) -> float:
    """Median wall time of `run()` in milliseconds; `setup()` runs untimed before each repetition."""
    samples = []
    for _ in range(reps):
        setup()
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def paired_medians(ours: Callable[[int], object], theirs: Callable[[int], object], reps: int) -> tuple[float, float]:
    """Medians (ms) of `ours(i)` and `theirs(i)`, run alternately so both see the same machine state."""
    samples: tuple[list[float], list[float]] = ([], [])
    for i in range(reps):
        for run, out in ((ours, samples[0]), (theirs, samples[1])):
            start = time.perf_counter()
            run(i)
            out.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples[0]), statistics.median(samples[1])


def nft(netns: str, *args: str) -> str:
    proc = subprocess.run(["ip", "netns", "exec", netns, "nft", *args], capture_output=True, text=True, check=True)
    return proc.stdout


class NftFile:
    """A ruleset file for `nft -f`, and the command that loads it into a namespace."""

    def __init__(self, text: str) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as file:
            file.write(text)
        self.path = file.name
        weakref.finalize(self, os.unlink, self.path)

    def load(self, netns: str) -> None:
        subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", self.path], check=True)


@dataclass
class Row:
    name: str
    ours_ms: float
    nft_ms: float | None
    note: str = ""


def print_table(title: str, rows: list[Row], reps_note: str) -> None:
    print(f"\n{title} ({reps_note})")
    print(f"| {'benchmark':<76} | {'netlink_nft ms':>14} | {'nft -f ms':>9} | {'ratio':>6} |")
    print(f"|{'-' * 78}|{'-' * 16}|{'-' * 11}|{'-' * 8}|")
    for row in rows:
        nft_ms = f"{row.nft_ms:9.2f}" if row.nft_ms is not None else f"{'':>9}"
        ratio = f"{row.ours_ms / row.nft_ms:6.2f}" if row.nft_ms else f"{'':>6}"
        print(f"| {row.name:<76} | {row.ours_ms:14.2f} | {nft_ms} | {ratio} |" + (f" {row.note}" if row.note else ""))
