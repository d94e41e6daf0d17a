"""`python -m e2e sweep`: remove what killed runs left behind, found by name (runs still alive are spared).

Every run's namespaces are `trinet-e2e-<pid>-<tag>-...`, its holder processes sit in cgroup scopes named after the
run, and its control-plane working directory is recorded under /run/trinet-e2e/<run id>/.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from e2e.harness import names
from e2e.harness.topology import remove_cgroup

_RUN = re.compile(rf"^({re.escape(names.PREFIX)}-(\d+)-[0-9a-f]{{4}})")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dead_run(name: str) -> str | None:
    match = _RUN.match(name)
    if match and not _alive(int(match.group(2))):
        return match.group(1)
    return None


def _kill(pids: set[int], what: str, log: list[str]) -> None:
    for pid in sorted(pids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            log.append(f"killed {pid} ({what})")


def run_scopes() -> list[Path]:
    """Every holder scope of any run (os.walk tolerates directories that vanish meanwhile)."""
    return [
        Path(top, d)
        for top, dirs, _files in os.walk(names.KUBEPODS)
        for d in dirs
        if d.startswith(f"{names.PREFIX}-") and d.endswith(".scope")
    ]


def _procs(cgroup: Path) -> set[int]:
    try:
        return {int(p) for p in (cgroup / "cgroup.procs").read_text().split()}
    except OSError:
        return set()


def _pids_in_netns(path: Path) -> set[int]:
    try:
        target = os.stat(path)
    except OSError:
        return set()
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                st = os.stat(entry / "ns" / "net")
                if (st.st_ino, st.st_dev) == (target.st_ino, target.st_dev):
                    pids.add(int(entry.name))
    return pids


def sweep() -> list[str]:
    """Remove every leftover of dead runs; return what was done, one line each."""
    log: list[str] = []
    for scope in run_scopes():
        if _dead_run(scope.name):
            _kill(_procs(scope), f"holder in {scope.name}", log)
            deadline = time.monotonic() + 5
            while _procs(scope) and time.monotonic() < deadline:  # SIGKILL takes effect asynchronously
                time.sleep(0.05)
            remove_cgroup(scope)
            log.append(f"removed cgroup {scope}")
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    for line in listing.splitlines():
        netns = line.split()[0] if line.split() else ""
        if netns and _dead_run(netns):
            _kill(_pids_in_netns(Path("/run/netns") / netns), f"in netns {netns}", log)
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
            log.append(f"removed netns {netns}")
    if names.STATE_DIR.exists():
        for state in names.STATE_DIR.iterdir():
            if not _dead_run(state.name):
                continue
            workdir_file = state / "controlplane-workdir"
            if workdir_file.exists():
                workdir = workdir_file.read_text().strip()
                _kill(_pids_with_arg(workdir), f"control plane of {state.name}", log)
                shutil.rmtree(workdir, ignore_errors=True)
            shutil.rmtree(state, ignore_errors=True)
            log.append(f"removed {state}")
            for logs in Path(tempfile.gettempdir()).glob(f"{state.name}-logs-*"):  # a run that never ended
                shutil.rmtree(logs, ignore_errors=True)
                log.append(f"removed {logs}")
    return log


def _pids_with_arg(fragment: str) -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if any(fragment.encode() in arg for arg in (entry / "cmdline").read_bytes().split(b"\0")):
                    pids.add(int(entry.name))
    return pids
