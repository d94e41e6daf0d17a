"""`python -m e2e.controlplane [build|run]`: build the binaries, or run a control plane until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from pathlib import Path

from e2e.controlplane.runner import ControlPlane, build_binaries


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.controlplane")
    parser.add_argument("command", choices=["build", "run"])
    parser.add_argument("--kubeconfig", type=Path, default=Path(".cache/controlplane/kubeconfig"))
    parser.add_argument("--bare", action="store_true", help="install nothing of deploy/ (to try the install)")
    args = parser.parse_args()
    bin_dir = build_binaries()
    if args.command == "build":
        print(bin_dir)
        return 0
    with ControlPlane(bin_dir, bare=args.bare) as cp:
        assert cp.credentials is not None
        cp.credentials.write_kubeconfig(args.kubeconfig)
        lines = [f"kube-apiserver ready at {cp.credentials.url}", f"  admin kubeconfig:  {args.kubeconfig}"]
        if not args.bare:
            daemon = cp.credentials.write_kubeconfig(args.kubeconfig.with_name("kubeconfig-daemon"),
                                                     cp.credentials.daemon_token)  # fmt: skip
            lines.append(f"  daemon kubeconfig: {daemon}")
        lines += [f"  kubectl:           {bin_dir / 'kubectl'}", "Ctrl-C stops it."]
        print("\n".join(lines), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
