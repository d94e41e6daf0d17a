"""`python -m e2e run FILE... | demo | sweep`: the end-to-end harness from the command line."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from e2e.harness import runner, scenario, sweep

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally`, so the run removes what it made


def _run(files: list[Path], daemons: bool, oracle: bool) -> int:
    loaded = [(f, scenario.load(f)) for f in files]  # every file is validated before anything starts
    from e2e.controlplane import build_binaries  # noqa: PLC0415 (only `run` needs the binaries)

    bin_dir = build_binaries()
    failed = 0
    for path, sc in loaded:
        print(f"== {sc.name} ({path})", flush=True)
        result = runner.run(
            sc, bin_dir=bin_dir, say=lambda line: print(line, flush=True), daemons=daemons, oracle=oracle
        )
        status = "PASS" if result.passed else "FAIL"
        times = ", ".join(f"{t:.2f}" for t in result.convergence)
        print(f"== {status} {sc.name}: {result.expects} matrices, {result.probes} probes, {result.seconds:.1f}s"
              f" (converged after [{times}] s)", flush=True)  # fmt: skip
        if not result.passed:
            failed += 1
            print(result.error, flush=True)
            print(f"logs kept in {result.logs}", flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scenario files (default: the whole catalogue)")
    run.add_argument("files", nargs="*", type=Path)
    run.add_argument("--no-daemon", action="store_true", help="do not start trinet (tests the harness itself)")
    run.add_argument("--oracle", action="store_true",
                     help="no daemon, no probes: check every matrix against trinet.policy.oracle")  # fmt: skip
    sub.add_parser("sweep", help="remove what killed runs left behind")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    if args.command == "sweep":
        for line in sweep.sweep():
            print(line)
        return 0
    files = args.files or sorted(SCENARIOS.glob("*.yaml"))
    try:
        return _run(files, daemons=not args.no_daemon, oracle=args.oracle)
    except scenario.ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
