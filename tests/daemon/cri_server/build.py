"""Build the CRI test server (Go, k8s.io/cri-api from the Go module proxy) once per source version; cached."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CACHE = HERE.parents[2] / ".cache" / "cri-test-server"


def build_cri_server() -> Path:
    """The path of the built binary (skips, and fails in CI, without Go)."""
    if shutil.which("go") is None:
        pytest.skip("the CRI test server needs go")
    digest = hashlib.sha256(b"".join((HERE / f).read_bytes() for f in ("go.mod", "go.sum", "main.go"))).hexdigest()
    binary = CACHE / f"criserver-{digest[:16]}"
    if not binary.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = binary.with_suffix(f".tmp{os.getpid()}")
        env = {**os.environ, "GOFLAGS": "-mod=mod"}
        subprocess.run(["go", "build", "-o", str(tmp), "."], cwd=HERE, env=env, check=True)
        tmp.rename(binary)
    return binary
