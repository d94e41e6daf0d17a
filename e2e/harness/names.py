"""Names of everything a run creates, all under one prefix so that `sweep` can find what a killed run left."""

from __future__ import annotations

import os
from pathlib import Path

PREFIX = "trinet-e2e"
STATE_DIR = Path("/run/trinet-e2e")
"""One directory per live run (`<run id>/`), holding what cannot be found by name (control-plane workdirs)."""
CGROUP_ROOT = Path("/sys/fs/cgroup/unified")
"""cgroup v2 hierarchy on these machines (v1 controllers are mounted beside it, `machine-facts.md`)."""
KUBEPODS = CGROUP_ROOT / "kubepods.slice"
POD_TABLE = "multi_networkpolicy"
"""The `inet` table the daemon installs in policed pods."""


def new_run_id() -> str:
    return f"{PREFIX}-{os.getpid()}"


def pod_cgroup(uid: str, run_id: str) -> Path:
    """The kubelet (systemd driver, BestEffort QoS) cgroup of a pod, with a scope of ours for the holder process."""
    slice_ = f"kubepods-besteffort-pod{uid.replace('-', '_')}.slice"
    return KUBEPODS / "kubepods-besteffort.slice" / slice_ / f"{run_id}.scope"
