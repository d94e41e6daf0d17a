"""Build, start and stop a real kube-apiserver + etcd on 127.0.0.1 for tests and local runs.

Every start gets its own temporary directory and free ports, so runs on one machine never collide; `stop()`
terminates exactly the processes it started and removes the directory.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self

import httpx

from e2e.controlplane.manifests import apply_manifests, load_manifests

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = Path(__file__).resolve().parent / "build.sh"
DEPLOY = REPO / "deploy"
# What every test control plane gets from deploy/: both CRDs, trinet's namespace, ServiceAccount and RBAC.
CLUSTER_MANIFESTS = (
    DEPLOY / "crds" / "multi-networkpolicies.yaml",
    DEPLOY / "components" / "network-attachment-definitions" / "network-attachment-definitions.yaml",
    DEPLOY / "base" / "namespace.yaml",
    DEPLOY / "base" / "rbac.yaml",
)
DAEMON_SERVICE_ACCOUNT = ("trinet-system", "trinet")


class ControlPlaneError(RuntimeError):
    """The control plane could not be built or started; the message carries the relevant log tail."""


@dataclass(frozen=True)
class Credentials:
    """What a client needs to reach the test API server."""

    url: str
    ca_file: Path
    admin_token: str
    daemon_token: str
    """A real ServiceAccount token (TokenRequest API) of the deploy/ ServiceAccount bound to the ClusterRole."""

    def client(self, token: str | None = None, **kwargs: object) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            verify=tls_context(self.ca_file),
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
            **kwargs,  # type: ignore[arg-type]
        )

    def write_kubeconfig(self, path: Path, token: str | None = None) -> Path:
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: trinet-test\n  cluster:\n    server: {self.url}\n"
            f"    certificate-authority: {self.ca_file}\n"
            f"users:\n- name: trinet-test\n  user:\n    token: {token or self.admin_token}\n"
            "contexts:\n- name: trinet-test\n  context: {cluster: trinet-test, user: trinet-test}\n"
            "current-context: trinet-test\n"
        )
        return path


def build_binaries(progress: IO[str] | None = None) -> Path:
    """Build (or find cached) kube-apiserver and etcd; return their directory. Progress goes to `progress`."""
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=progress or sys.stderr,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ControlPlaneError(f"{BUILD_SCRIPT} failed with exit code {proc.returncode}")
    return Path(proc.stdout.strip().splitlines()[-1])


def tls_context(ca_file: Path) -> ssl.SSLContext:
    """A client TLS context trusting only the test API server's certificate."""
    return ssl.create_default_context(cafile=str(ca_file))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class ControlPlane:
    """One etcd + kube-apiserver pair. Use as a context manager, or call start() and stop().

    With `bare=True` nothing of deploy/ is installed (for tests of the install itself) and `daemon_token` is "".
    `extra_args` are appended to kube-apiserver's command line (e.g. ``--watch-cache=false``).
    """

    def __init__(
        self, bin_dir: Path, startup_timeout: float = 120.0, *, bare: bool = False, extra_args: Sequence[str] = ()
    ) -> None:
        self.bin_dir = bin_dir
        self.extra_args = list(extra_args)
        self.etcd_url = ""
        """http://127.0.0.1:PORT of this instance's etcd (for tests that compact it), set by start()."""
        self.startup_timeout = startup_timeout
        self.bare = bare
        self.workdir = Path(tempfile.mkdtemp(prefix="trinet-controlplane-"))
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.credentials: Credentials | None = None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Credentials:
        work = self.workdir
        etcd_port, etcd_peer, api_port = _free_port(), _free_port(), _free_port()
        url = f"https://127.0.0.1:{api_port}"
        ca_file = self._make_certs()
        admin_token = secrets.token_urlsafe(24)
        (work / "tokens.csv").write_text(f'{admin_token},trinet-test-admin,admin-uid,"system:masters"\n')
        self.etcd_url = f"http://127.0.0.1:{etcd_port}"

        self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=trinet-test",
                f"--data-dir={work / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=trinet-test=http://127.0.0.1:{etcd_peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={work / 'certs'}",
                f"--tls-cert-file={work / 'serving.crt'}",
                f"--tls-private-key-file={work / 'serving.key'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--authorization-mode=RBAC",
                f"--token-auth-file={work / 'tokens.csv'}",
                f"--service-account-issuer={url}",
                f"--service-account-key-file={work / 'sa.pub'}",
                f"--service-account-signing-key-file={work / 'sa.key'}",
                # No controller-manager runs, so nothing would create default ServiceAccounts for pods.
                "--disable-admission-plugins=ServiceAccount",
                "--profiling=false",
                "-v=1",
                *self.extra_args,
            ],
        )
        self._wait_ready(url, ca_file, admin_token)
        with httpx.Client(
            base_url=url, verify=tls_context(ca_file), headers={"Authorization": f"Bearer {admin_token}"}
        ) as admin:
            daemon_token = ""
            if not self.bare:
                apply_manifests(admin, load_manifests(*CLUSTER_MANIFESTS))
                daemon_token = self._request_token(admin, *DAEMON_SERVICE_ACCOUNT)
        self.credentials = Credentials(url, ca_file, admin_token, daemon_token)
        return self.credentials

    def restart_apiserver(self) -> None:
        """Stop kube-apiserver (SIGTERM) and start it again on the same port and etcd; wait until it is ready."""
        assert self.credentials is not None, "start() first"
        index, (name, proc) = next((i, p) for i, p in enumerate(self._procs) if p[0] == "kube-apiserver")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        argv = [str(a) for a in proc.args]  # type: ignore[union-attr]
        del self._procs[index]
        self._spawn(name, argv)
        self._wait_ready(self.credentials.url, self.credentials.ca_file, self.credentials.admin_token)

    def stop(self) -> None:
        """Stop every process this instance started (newest first) and remove its directory."""
        for name, proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    print(f"{name} did not stop on SIGTERM; killing it", file=sys.stderr)
                    proc.kill()
                    proc.wait()
        self._procs.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- internals ---------------------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self._procs.append((name, proc))

    def _make_certs(self) -> Path:
        """A self-signed serving certificate for 127.0.0.1 (it is its own CA) and the ServiceAccount key pair."""
        work = self.workdir
        for argv in (
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-days", "2", "-subj", "/CN=trinet-test-apiserver",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout", str(work / "serving.key"), "-out", str(work / "serving.crt"),
            ],
            ["openssl", "genrsa", "-out", str(work / "sa.key"), "2048"],
            ["openssl", "rsa", "-in", str(work / "sa.key"), "-pubout", "-out", str(work / "sa.pub")],
        ):  # fmt: skip
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise ControlPlaneError(f"{' '.join(argv[:3])} failed: {proc.stderr.strip()}")
        return work / "serving.crt"

    def _wait_ready(self, url: str, ca_file: Path, token: str) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer yet"
        with httpx.Client(verify=tls_context(ca_file), headers={"Authorization": f"Bearer {token}"}, timeout=5) as c:
            while time.monotonic() < deadline:
                for name, proc in self._procs:
                    if proc.poll() is not None:
                        raise ControlPlaneError(
                            f"{name} exited with code {proc.returncode}:\n{_tail(self.workdir / f'{name}.log')}"
                        )
                try:
                    response = c.get(f"{url}/readyz")
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}: {response.text[-500:]}"
                except httpx.TransportError as exc:
                    last = repr(exc)
                time.sleep(0.25)
        raise ControlPlaneError(
            f"kube-apiserver not ready after {self.startup_timeout}s ({last}):\n"
            f"{_tail(self.workdir / 'kube-apiserver.log')}"
        )

    @staticmethod
    def _request_token(admin: httpx.Client, namespace: str, name: str) -> str:
        response = admin.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                  "spec": {"expirationSeconds": 3600}},
        )  # fmt: skip
        response.raise_for_status()
        return str(response.json()["status"]["token"])


def running_pids() -> list[int]:
    """PIDs of live processes started by any ControlPlane of this user (for leak checks)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"trinet-controlplane-" in arg for arg in cmdline):
            pids.append(int(entry.name))
    return sorted(pids)
