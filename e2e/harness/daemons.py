"""The real daemon per simulated node: `trinet run` as a separate process inside the node's namespace.

The API server listens on 127.0.0.1 of the root namespace only, which a node namespace cannot reach; an
`ApiForwarder` listens on 127.0.0.1:<same port> inside the node namespace and relays each connection to the real
server, so the daemon's kubeconfig (and the serving certificate, issued for 127.0.0.1) is the same as anywhere.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.netns import run_in_netns


class DaemonError(RuntimeError):
    """A daemon exited or never became ready; the message carries its log tail."""


class ApiForwarder:
    """127.0.0.1:`port` in `netns` → 127.0.0.1:`port` in the root namespace, one thread pair per connection."""

    def __init__(self, netns: str, port: int) -> None:
        self.port = port
        self._listener = run_in_netns(netns, socket.socket, socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(64)
        self._closed = False
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name=f"api-forward:{netns}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                inner, _ = self._listener.accept()
            except OSError:
                return
            try:
                outer = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            except OSError:
                inner.close()
                continue
            outer.settimeout(None)
            self._conns += [inner, outer]
            for a, b in ((inner, outer), (outer, inner)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._thread.join(timeout=5)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def trinet_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m trinet`."""
    script = Path(sys.executable).with_name("trinet")
    return [str(script)] if script.exists() else [sys.executable, "-m", "trinet"]


class Daemon:
    """One `trinet run` process for one node; its output goes to `log_path`."""

    def __init__(self, node: str, netns: str, kubeconfig: Path, log_path: Path, args: list[str]) -> None:
        self.node = node
        self.netns = netns
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def argv(self) -> list[str]:
        return [*trinet_command(), "run", "--kubeconfig", str(self.kubeconfig), "--hostname-override", self.node,
                *self.args]  # fmt: skip

    def start(self, args: list[str] | None = None) -> None:
        if args is not None:
            self.args = list(args)
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}: {' '.join(self.argv())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.netns}", *self.argv()],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "NODE_NAME": self.node, "PYTHONUNBUFFERED": "1"},
            )

    def health_port(self) -> int | None:
        """The port of /readyz inside the node namespace (None when disabled)."""
        value = "8081"
        for i, arg in enumerate(self.args):
            if arg == "--health-probe-bind-address" and i + 1 < len(self.args):
                value = self.args[i + 1]
            elif arg.startswith("--health-probe-bind-address="):
                value = arg.split("=", 1)[1]
        port = value.rsplit(":", 1)[-1]
        return int(port) if port.isdigit() and int(port) else None

    def ready(self) -> bool:
        """Does /readyz answer 200 (initial sync done)? Asked from inside the node's namespace."""
        port = self.health_port()
        if port is None:
            return self.alive()
        try:
            sock = run_in_netns(self.netns, socket.socket, socket.AF_INET, socket.SOCK_STREAM)
            with sock:
                sock.settimeout(1.0)
                sock.connect(("127.0.0.1", port))
                sock.sendall(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
                return sock.recv(64).split(b" ")[1:2] == [b"200"]
        except OSError:
            return False

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if not self.alive():
                raise DaemonError(f"daemon {self.node} exited (code {self.proc and self.proc.returncode}):\n"
                                   f"{self.log_tail()}")  # fmt: skip
            if time.monotonic() >= deadline:
                raise DaemonError(f"daemon {self.node} not ready after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (the daemon leaves its rules in place), SIGKILL after `timeout`; return the exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, nothing cleaned up."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
