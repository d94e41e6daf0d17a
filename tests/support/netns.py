"""Throwaway network namespaces and running code inside one.

Namespaces are created with `ip netns add` under unique names (`trinet-test-<pid>-<n>`) so that two test runs on
one machine never collide, and they are always deleted, even when the test fails.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def netns_path(name: str) -> str:
    return f"/run/netns/{name}"


def run_in_netns(name_or_path: str, fn: Callable[..., T], *args: object) -> T:
    """Run ``fn(*args)`` in a fresh thread that has entered the namespace; return its result or raise its error.

    The work happens in a dedicated thread, which restores its original namespace before it ends, so neither the
    caller's thread nor any pooled thread is ever left inside the target namespace.
    """
    path = name_or_path if "/" in name_or_path else netns_path(name_or_path)
    outcome: dict[str, object] = {}

    def body() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(path, os.O_RDONLY)
        try:
            _setns(target)
            try:
                outcome["value"] = fn(*args)
            except BaseException as exc:  # re-raised in the caller's thread
                outcome["error"] = exc
            finally:
                _setns(own)
        finally:
            os.close(target)
            os.close(own)

    thread = threading.Thread(target=body, name=f"netns:{path}")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def ip(*args: str, netns: str | None = None) -> str:
    """Run ``ip`` (optionally ``ip -n NETNS``); raise with stderr on failure."""
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return proc.stdout


def unique_name(prefix: str = "trinet-test") -> str:
    return f"{prefix}-{os.getpid()}-{next(_counter)}"


@contextmanager
def throwaway_netns(prefix: str = "trinet-test") -> Iterator[str]:
    """Create a network namespace with loopback up; delete it on exit whatever happens."""
    name = unique_name(prefix)
    ip("netns", "add", name)
    try:
        ip("link", "set", "lo", "up", netns=name)
        yield name
    finally:
        ip("netns", "del", name)


@contextmanager
def veth_pair(
    ns_a: str,
    ns_b: str,
    addrs_a: tuple[str, ...],
    addrs_b: tuple[str, ...],
    name_a: str = "eth1",
    name_b: str = "eth1",
) -> Iterator[tuple[str, str]]:
    """Connect two namespaces with a veth pair and assign addresses (each "addr/prefix", v4 or v6).

    IPv6 duplicate address detection is disabled so addresses are usable at once. The pair disappears with its
    namespaces; on exit we delete it explicitly as well.
    """
    tmp_a, tmp_b = f"tv{os.getpid() % 10000}a{next(_counter)}", f"tv{os.getpid() % 10000}b{next(_counter)}"
    ip("link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
    try:
        for tmp, ns, final, addrs in ((tmp_a, ns_a, name_a, addrs_a), (tmp_b, ns_b, name_b, addrs_b)):
            ip("link", "set", tmp, "netns", ns)
            ip("link", "set", tmp, "name", final, netns=ns)
            subprocess.run(
                ["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{final}.accept_dad=0"],
                check=True,
            )
            for addr in addrs:
                ip("addr", "add", addr, "dev", final, *(["nodad"] if ":" in addr else []), netns=ns)
            ip("link", "set", final, "up", netns=ns)
        yield name_a, name_b
    finally:
        subprocess.run(["ip", "-n", ns_a, "link", "del", name_a], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", tmp_a], capture_output=True, check=False)
