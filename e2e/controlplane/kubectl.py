"""The real kubectl (built beside kube-apiserver, same version) run against a test control plane."""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from pathlib import Path
from typing import IO

from e2e.controlplane.runner import Credentials, build_binaries


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message has its command line and stderr."""

    def __init__(self, argv: list[str], proc: subprocess.CompletedProcess[str]) -> None:
        super().__init__(f"kubectl {' '.join(argv)} exited with {proc.returncode}:\n{proc.stderr.strip()}")
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr


@functools.cache
def build_kubectl(progress: IO[str] | None = None) -> Path:
    """Build (or find cached) the control-plane binaries; return the kubectl among them."""
    return build_binaries(progress) / "kubectl"


def kubectl(
    credentials: Credentials,
    *args: str,
    token: str | None = None,
    stdin: str | None = None,
    check: bool = True,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `kubectl ARGS` as the admin (or as `token`) with a throwaway kubeconfig, cache and no user config.

    With `check`, a non-zero exit raises KubectlError; otherwise the caller reads returncode/stdout/stderr.
    """
    binary = build_kubectl()
    with tempfile.TemporaryDirectory(prefix="trinet-kubectl-") as tmp:
        kubeconfig = credentials.write_kubeconfig(Path(tmp) / "kubeconfig", token)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "KUBECONFIG": str(kubeconfig),
            "KUBERC": "off",
        }
        argv = [str(binary), f"--cache-dir={Path(tmp) / 'cache'}", *args]
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if check and proc.returncode != 0:
        raise KubectlError(list(args), proc)
    return proc
