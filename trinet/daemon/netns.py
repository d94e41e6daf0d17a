"""Find a pod's network namespace from its UID through procfs, as a kubelet node lays out cgroups.

kubelet puts every process of a pod under a cgroup named after the pod UID, in one of two forms:

- cgroupfs driver: ``.../kubepods/besteffort/pod1b4e28ba-2fa1-11d2-883f-0016d3cca427/<container>``
- systemd driver:  ``.../kubepods-besteffort-pod1b4e28ba_2fa1_11d2_883f_0016d3cca427.slice/cri-....scope``

in cgroup v1 (one line per hierarchy) and v2 (``0::/...``) alike. ``<host-prefix>/proc/*/cgroup`` therefore maps
pod UIDs to PIDs, and ``/proc/PID/ns/net`` is the pod's namespace. Two traps are avoided on purpose: a process
can sit in the pod's cgroup before it has joined the pod's namespace (runc joins the cgroup first), and the node's
namespace may not be readable as ``/proc/1/ns/net``. So a candidate whose namespace is the daemon's own is never
taken, and the interfaces that network-status names must exist in the namespace before it is accepted.

Results are cached per pod UID and revalidated by the namespace's inode on every use. Everything here blocks on
file I/O: call it from a worker thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import re
import socket
import struct
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from netlink_nft._netns import socket_in_netns

__all__ = [
    "NetnsError",
    "NetnsResolver",
    "PodNetns",
    "ProcfsResolver",
    "check_netns",
    "make_resolver",
    "own_netns",
    "pod_uids_in_cgroup",
]

_UID = r"[0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12}"
_POD_CGROUP = re.compile(rf"pod({_UID})(?:\.slice)?(?=/|$)")
_SIOCGIFINDEX = 0x8933


class NetnsError(Exception):
    """The pod's namespace cannot be used now; ``reason`` is a short stable word for logs and metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class PodNetns:
    """A pod's network namespace: a path to open it by, and its identity (device, inode)."""

    path: str
    ident: tuple[int, int]
    pid: int
    interfaces: frozenset[str] = frozenset()  # names already found in it (its identity is its inode)


def pod_uids_in_cgroup(text: str) -> set[str]:
    """The pod UIDs (normalised: lower case with '-') that the lines of a ``/proc/PID/cgroup`` file name."""
    uids = set()
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        for match in _POD_CGROUP.finditer(path):
            uids.add(match.group(1).replace("_", "-").lower())
    return uids


def _ident(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def missing_interfaces(path: str, names: Iterable[str]) -> list[str]:
    """Which of ``names`` do not exist in the namespace at ``path`` (asked of a socket created inside it)."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    sock = socket_in_netns(path, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    try:
        missing = []
        for name in wanted:
            request = struct.pack("16si", name.encode()[:15], 0)
            try:
                fcntl.ioctl(sock.fileno(), _SIOCGIFINDEX, request)
            except OSError as exc:
                if exc.errno != errno.ENODEV:
                    raise
                missing.append(name)
        return missing
    finally:
        sock.close()


class NetnsResolver(Protocol):
    """Pod UID -> its network namespace (``ProcfsResolver``, ``trinet.daemon.cri.CriResolver``). Blocking."""

    def resolve(self, uid: str, interfaces: Iterable[str] = ()) -> PodNetns: ...

    def cached(self, uid: str, interfaces: Iterable[str] = ()) -> PodNetns | None:
        """The known namespace if it is still the same (one ``stat``) and holds ``interfaces``: no blocking I/O."""

    def forget(self, uid: str) -> None: ...


def make_resolver(source: str, host_prefix: str, endpoint: str | None) -> NetnsResolver:
    """The resolver of ``--netns-source`` (``procfs`` or ``cri``, already resolved from ``auto``)."""
    if source == "cri":
        from trinet.daemon.cri import CriResolver  # noqa: PLC0415 (optional extra)

        assert endpoint is not None
        return CriResolver(endpoint, host_prefix)
    return ProcfsResolver(host_prefix)


def own_netns() -> tuple[int, int] | None:
    """The daemon's own (the node's) network namespace, never a pod's."""
    return _ident("/proc/self/ns/net")


def check_netns(uid: str, path: str, pid: int, interfaces: Iterable[str]) -> PodNetns:
    """``path`` as pod ``uid``'s namespace if it exists, is not the daemon's own and holds every interface."""
    ident = _ident(path)
    if ident is None:
        raise NetnsError("gone", f"pod {uid}: {path} does not exist")
    if ident == own_netns():
        raise NetnsError("own-netns", f"pod {uid}: {path} is the daemon's own network namespace")
    try:
        missing = missing_interfaces(path, interfaces)
    except OSError as exc:
        raise NetnsError("gone", f"pod {uid}: {path}: {exc}") from exc
    if missing:
        raise NetnsError("missing-interfaces", f"pod {uid}: interface(s) {', '.join(missing)} missing in {path}")
    return PodNetns(path, ident, pid, frozenset(interfaces))


SCAN_REUSE = 0.1  # seconds: a scan started this recently answers every pod looked up meanwhile


class ProcfsResolver:
    """Pod UID -> network namespace, by scanning ``<host_prefix>/proc/*/cgroup``.

    Scans are shared: one runs at a time, and one started less than ``scan_reuse`` seconds ago answers the
    lookups of pods the previous scan did not find either (pods polled for a late sandbox), so those cost one
    scan per interval between them. A pod's first lookup always scans afresh (its process may have just started).
    """

    def __init__(self, host_prefix: str = "", scan_reuse: float = SCAN_REUSE) -> None:
        self.proc = Path(host_prefix or "/") / "proc"
        self.scan_reuse = scan_reuse
        self.scans = 0  # full scans done (observability and tests)
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()  # held for a whole scan: concurrent lookups wait for it and share it
        self._scanned_at: float | None = None  # time.monotonic() when the last scan started
        self._cache: dict[str, PodNetns] = {}
        self._index: dict[str, list[int]] = {}  # pod UID -> PIDs, as of the last scan
        self._absent: set[str] = set()  # pod UIDs the last lookup found no process of (polled for their sandbox)
        self._own = own_netns()

    def forget(self, uid: str) -> None:
        with self._lock:
            self._cache.pop(uid.lower(), None)
            self._absent.discard(uid.lower())

    def cached(self, uid: str, interfaces: Iterable[str] = ()) -> PodNetns | None:
        with self._lock:
            found = self._cache.get(uid.lower())
        if found is not None and found.interfaces.issuperset(interfaces) and _ident(found.path) == found.ident:
            return found
        return None

    def _remember(self, uid: str, found: PodNetns) -> PodNetns:
        with self._lock:
            self._cache[uid] = found
        return found

    def _uids_of(self, pid: int) -> set[str]:
        try:
            return pod_uids_in_cgroup((self.proc / str(pid) / "cgroup").read_text())
        except OSError:
            return set()

    def scan(self) -> dict[str, list[int]]:
        """Every pod UID found in the cgroups of the host's processes, with their PIDs (ascending)."""
        found: dict[str, list[int]] = defaultdict(list)
        try:
            entries = os.listdir(self.proc)
        except OSError as exc:
            raise NetnsError("procfs", f"cannot list {self.proc}: {exc}") from exc
        for entry in entries:
            if not entry.isdigit():
                continue
            try:
                text = (self.proc / entry / "cgroup").read_text()
            except OSError:  # the process ended meanwhile, or is not ours to read
                continue
            for uid in pod_uids_in_cgroup(text):
                found[uid].append(int(entry))
        for pids in found.values():
            pids.sort()
        return dict(found)

    def _recent_index(self, share: bool) -> dict[str, list[int]]:
        """With ``share``, the index of a scan started less than ``scan_reuse`` ago; else (or if there is none) the
        index of a new scan. One scan runs at a time."""
        with self._scan_lock:
            started = time.monotonic()
            if share and self._scanned_at is not None and started - self._scanned_at < self.scan_reuse:
                with self._lock:
                    return self._index
            index = self.scan()
            self.scans += 1
            with self._lock:
                self._index = index
            self._scanned_at = started
            return index

    def resolve(self, uid: str, interfaces: Iterable[str] = ()) -> PodNetns:
        """The namespace of pod ``uid``, in which every name of ``interfaces`` exists; ``NetnsError`` otherwise."""
        uid = uid.lower()
        names = tuple(interfaces)
        with self._lock:
            cached = self._cache.get(uid)
        if cached is not None and _ident(cached.path) == cached.ident:
            if cached.interfaces.issuperset(names):
                return cached  # same namespace, interfaces already seen in it: no syscall beyond the stat
            if not missing_interfaces(cached.path, names):
                return self._remember(uid, dataclasses.replace(cached, interfaces=cached.interfaces | set(names)))
        with self._lock:
            indexed = self._index.get(uid)
        still = [pid for pid in indexed or () if uid in self._uids_of(pid)]  # a PID may have been reused
        if still:  # the last scan saw this pod: try its processes before reading every cgroup file again
            with contextlib.suppress(NetnsError):
                return self._choose(uid, still, names)
        with self._lock:
            waiting = uid in self._absent
        pids = self._recent_index(share=waiting).get(uid, [])
        if not pids:
            self.forget(uid)
            with self._lock:
                self._absent.add(uid)
            raise NetnsError("no-process", f"no process of pod {uid} under {self.proc} (not started, or gone)")
        return self._choose(uid, pids, names)

    def _choose(self, uid: str, pids: list[int], names: tuple[str, ...]) -> PodNetns:
        """The namespace of one of ``pids`` that is not the daemon's and holds ``names``."""
        by_ns: dict[tuple[int, int], PodNetns] = {}
        own_seen = False
        for pid in pids:
            path = str(self.proc / str(pid) / "ns" / "net")
            ident = _ident(path)
            if ident is None:
                continue
            if ident == self._own:
                own_seen = True
                continue
            by_ns.setdefault(ident, PodNetns(path, ident, pid))
        if not by_ns:
            reason = "own-netns" if own_seen else "no-process"
            raise NetnsError(reason, f"no process of pod {uid} is in a network namespace other than the daemon's")
        problems = []
        for candidate in by_ns.values():
            try:
                missing = missing_interfaces(candidate.path, names)
            except OSError as exc:
                problems.append(f"pid {candidate.pid}: {exc}")
                continue
            if not missing:
                with self._lock:
                    self._absent.discard(uid)
                return self._remember(uid, dataclasses.replace(candidate, interfaces=frozenset(names)))
            problems.append(f"pid {candidate.pid}: interface(s) {', '.join(missing)} missing")
        raise NetnsError("missing-interfaces", f"pod {uid}: no namespace holds its interfaces ({'; '.join(problems)})")
