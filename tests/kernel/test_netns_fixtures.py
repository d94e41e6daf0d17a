"""The kernel fixtures themselves: namespaces are isolated, always deleted, and threads come back home."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from tests.support.netns import netns_path, run_in_netns, throwaway_netns, veth_pair


def _own_netns_inode() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def test_run_in_netns_enters_and_restores(netns: str) -> None:
    before = _own_netns_inode()
    inside = run_in_netns(netns, _own_netns_inode)
    assert inside == os.stat(netns_path(netns)).st_ino
    assert inside != before
    assert _own_netns_inode() == before


def test_run_in_netns_propagates_errors(netns: str) -> None:
    def boom() -> None:
        raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        run_in_netns(netns, boom)
    assert _own_netns_inode() != os.stat(netns_path(netns)).st_ino


def test_namespace_deleted_even_when_body_fails() -> None:
    if os.geteuid() != 0:
        pytest.skip("kernel tests need root")
    with pytest.raises(RuntimeError), throwaway_netns() as name:
        assert os.path.exists(netns_path(name))
        raise RuntimeError("test body failed")
    assert not os.path.exists(netns_path(name))
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert name not in listed


def test_veth_pair_carries_tcp_between_namespaces(netns_pair: tuple[str, str]) -> None:
    a, b = netns_pair
    with veth_pair(a, b, ("10.99.0.1/24",), ("10.99.0.2/24",)):
        server = run_in_netns(b, socket.create_server, ("10.99.0.2", 8080))
        with server:
            client = run_in_netns(a, socket.create_connection, ("10.99.0.2", 8080), 2.0)
            conn, peer = server.accept()
            with client, conn:
                client.sendall(b"ping")
                assert conn.recv(4) == b"ping"
                assert peer[0] == "10.99.0.1"
