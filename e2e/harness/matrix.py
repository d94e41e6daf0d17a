"""Connectivity matrices: the cells an expectation names, probing them all at once, and printing them."""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from e2e.harness.cluster import Cluster, PodState
from e2e.harness.probes import Outcome, probe
from e2e.harness.scenario import Expect, parse_port, parse_rule, qualify

PROBE_TIMEOUT = 0.5
PROBE_WORKERS = 24


@dataclass(frozen=True, order=True)
class Cell:
    src: str
    dst: str
    proto: str
    port: int
    family: int

    def column(self, names: Mapping[str, str]) -> str:
        port = self.proto if self.proto == "icmp" else f"{self.proto}/{self.port}"
        return f"{names[self.dst]} {port} v{self.family}"


def _short(key: str) -> str:
    return key.split("/", 1)[1]


def display_names(keys: Iterable[str]) -> dict[str, str]:
    """`name` where it is unique among `keys`, else `namespace/name`."""
    keys = list(keys)
    counts: dict[str, int] = {}
    for key in keys:
        counts[_short(key)] = counts.get(_short(key), 0) + 1
    return {k: _short(k) if counts[_short(k)] == 1 else k for k in keys}


def _matches(pattern: str, key: str) -> bool:
    return fnmatch.fnmatchcase(key, pattern) or ("/" not in pattern and fnmatch.fnmatchcase(_short(key), pattern))


def expected_cells(cluster: Cluster, expect: Expect, network: str | list[str]) -> dict[Cell, bool]:
    """Every cell some matrix line covers, with the verdict of the last such line."""
    pods = {k: p for k, p in cluster.pods.items() if p.on(network) is not None}
    cells: dict[Cell, bool] = {}
    for line in expect.matrix:
        src_pat, dst_pat, port, allow = parse_rule(line)
        for src_key, src in pods.items():
            if not _matches(src_pat, src_key):
                continue
            for dst_key, dst in pods.items():
                if dst_key == src_key or not _matches(dst_pat, dst_key):
                    continue
                for proto, number in [port] if port else _ports(expect, dst):
                    for family in expect.families:
                        if src.endpoint(network, family) and dst.endpoint(network, family):
                            cells[Cell(src_key, dst_key, proto, number, family)] = allow
    return cells


def _ports(expect: Expect, dst: PodState) -> list[tuple[str, int]]:
    if expect.ports is not None:
        return [parse_port(p) for p in expect.ports]
    return [(p.protocol.lower(), p.port) for p in dst.spec.ports]


def network_of(cluster: Cluster, expect: Expect) -> str | list[str]:
    if expect.network is None:
        return next(iter(cluster.networks))
    if isinstance(expect.network, list):
        return [qualify(n, "default") for n in expect.network]
    return expect.network if expect.network == "cluster" else qualify(expect.network, "default")


def observe(cluster: Cluster, network: str | list[str], cells: Iterable[Cell]) -> dict[Cell, Outcome]:
    """Probe every cell concurrently (listeners made on demand); each blocked cell costs PROBE_TIMEOUT."""
    cells = list(cells)
    for cell in cells:
        dst = cluster.pods[cell.dst]
        endpoint = dst.endpoint(network, cell.family)
        assert endpoint is not None
        cluster.listeners.listen(endpoint.netns, endpoint.address, cell.proto, cell.port)

    def one(cell: Cell) -> Outcome:
        src = cluster.pods[cell.src].endpoint(network, cell.family)
        dst = cluster.pods[cell.dst].endpoint(network, cell.family)
        assert src is not None and dst is not None
        return probe(cluster.listeners, src, dst.address, cell.proto, cell.port, PROBE_TIMEOUT)

    with ThreadPoolExecutor(max_workers=PROBE_WORKERS) as pool:
        return dict(zip(cells, pool.map(one, cells), strict=True))


_SYMBOL = {True: "allow", False: "deny"}


def _colour(text: str, ok: bool, enabled: bool) -> str:
    return f"\033[{32 if ok else 31}m{text}\033[0m" if enabled else text


def render(
    expected: Mapping[Cell, bool],
    observed: Mapping[Cell, Outcome] | None = None,
    *,
    colour: bool | None = None,
    changed: Mapping[Cell, bool] | None = None,
) -> str:
    """A table per source row and destination column. With `observed`: each cell `observed` and, where it
    differs, `!expected`. With `changed`: a `*` marks the cells whose verdict differs from that earlier matrix."""
    enabled = sys.stdout.isatty() if colour is None else colour
    names = display_names({c.src for c in expected} | {c.dst for c in expected})
    rows = sorted({c.src for c in expected})
    columns = sorted({c.column(names) for c in expected})
    by = {(c.src, c.column(names)): c for c in expected}
    text: dict[tuple[str, str], tuple[str, bool]] = {}
    for key, cell in by.items():
        want = expected[cell]
        if observed is None:
            mark = "*" if changed is not None and cell in changed and changed[cell] != want else ""
            text[key] = (_SYMBOL[want] + mark, want)
        else:
            got = observed.get(cell)
            label = (
                "?" if got is None else ("allow" if got is Outcome.ALLOWED else got.value[:5].replace("block", "deny"))
            )
            ok = got is not None and (got is Outcome.ALLOWED) == want and got is not Outcome.REFUSED
            text[key] = (label if ok else f"{label}!{_SYMBOL[want]}", ok)
    width0 = max(len("from \\ to"), *(len(names[r]) for r in rows))
    widths = [max(len(col), *(len(text.get((r, col), ("", True))[0]) for r in rows)) for col in columns]
    lines = ["  ".join(["from \\ to".ljust(width0), *(c.ljust(w) for c, w in zip(columns, widths, strict=True))])]
    for row in rows:
        cells = []
        for col, w in zip(columns, widths, strict=True):
            label, ok = text.get((row, col), ("", True))
            padded = label.ljust(w)
            if not label:
                cells.append(padded)
            elif observed is None:
                cells.append(_colour(padded, label.startswith("allow"), enabled))
            else:
                cells.append(_colour(padded, ok, enabled) if not ok else padded)
        lines.append("  ".join([names[row].ljust(width0), *cells]))
    return "\n".join(lines)


def mismatches(expected: Mapping[Cell, bool], observed: Mapping[Cell, Outcome]) -> list[Cell]:
    return [c for c, want in expected.items() if observed.get(c) is not (Outcome.ALLOWED if want else Outcome.BLOCKED)]
