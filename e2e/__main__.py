"""`python -m e2e run FILE... | demo | churn | scale | sweep`: the end-to-end harness from the command line."""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time
from pathlib import Path
from types import FrameType

from e2e.harness import churn, demo, parallel, runner, scale, scenario, sweep

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


_UNRAISABLE_FILES = ("_weakrefset.py", "weakref.py")
_pending_signal = 0


def _terminate(signum: int, frame: FrameType | None) -> None:
    """Unwind through every `finally`, so the run removes what it made.

    An exception raised while the interpreter runs a weakref callback or a ``__del__`` is printed and dropped
    ("Exception ignored in ..."), which would leave the run going as if the signal never came (seen once in CI).
    There, the signal is redelivered 50 ms later instead, outside that callback."""
    global _pending_signal  # noqa: PLW0603 (signal handlers have nowhere else to keep state)
    signum = signum if signum != signal.SIGALRM else _pending_signal
    if frame is not None and (
        frame.f_code.co_name == "__del__" or frame.f_code.co_filename.endswith(_UNRAISABLE_FILES)
    ):
        _pending_signal = signum
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _summary(results: list[runner.Result], wall: float) -> str:
    times = sorted(t for r in results for t in r.convergence)
    line = (
        f"{sum(r.passed for r in results)}/{len(results)} scenarios passed, "
        f"{sum(r.expects for r in results)} matrices, {sum(r.probes for r in results)} probes, {wall:.1f}s wall"
    )
    if times:
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        line += (
            f"; change -> enforcement seen by probes: median {statistics.median(times):.3f}s, "
            f"p95 {p95:.3f}s, max {times[-1]:.3f}s over {len(times)} matrices"
        )
    return line  # fmt: skip


def _run_parallel(files: list[Path], jobs: int, args: list[str]) -> int:
    for f in files:
        scenario.load(f)
    started = time.monotonic()

    def done(path: Path, result: runner.Result, output: str) -> None:
        status = "PASS" if result.passed else "FAIL"
        print(f"== {status} {result.name} ({path.name}): {result.probes} probes, {result.seconds:.1f}s", flush=True)
        if not result.passed:
            print(output[-6000:], flush=True)

    results = parallel.run_files(files, jobs=jobs, args=args, on_done=done)
    print(_summary(list(results.values()), time.monotonic() - started), flush=True)
    return 0 if all(r.passed for r in results.values()) else 1


def _run(files: list[Path], daemons: bool, oracle: bool, result_json: Path | None = None) -> int:
    loaded = [(f, scenario.load(f)) for f in files]  # every file is validated before anything starts
    from e2e.controlplane import build_binaries  # noqa: PLC0415 (only `run` needs the binaries)

    bin_dir = build_binaries()
    failed = 0
    started = time.monotonic()
    results = []
    for path, sc in loaded:
        print(f"== {sc.name} ({path})", flush=True)
        result = runner.run(
            sc, bin_dir=bin_dir, say=lambda line: print(line, flush=True), daemons=daemons, oracle=oracle
        )
        results.append(result)
        if result_json is not None:
            result_json.write_text(parallel.result_to_json(result))
        status = "PASS" if result.passed else "FAIL"
        times = ", ".join(f"{t:.2f}" for t in result.convergence)
        print(f"== {status} {sc.name}: {result.expects} matrices, {result.probes} probes, {result.seconds:.1f}s"
              f" (converged after [{times}] s)", flush=True)  # fmt: skip
        if not result.passed:
            failed += 1
            print(result.error, flush=True)
            print(f"logs kept in {result.logs}", flush=True)
    if len(results) > 1:
        print(_summary(results, time.monotonic() - started), flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scenario files (default: the whole catalogue)")
    run.add_argument("files", nargs="*", type=Path)
    run.add_argument("--no-daemon", action="store_true", help="do not start trinet (tests the harness itself)")
    run.add_argument("--jobs", "-j", type=int, default=1, help="scenarios run at once, each in its own process")
    run.add_argument("--result-json", type=Path, help=argparse.SUPPRESS)
    run.add_argument("--oracle", action="store_true",
                     help="no daemon, no probes: check every matrix against trinet.policy.oracle")  # fmt: skip
    sub.add_parser("sweep", help="remove what killed runs left behind")
    sub.add_parser("demo", help="a local cluster, the matrix before and after a sample policy, trinet explain")
    churn_cmd = sub.add_parser("churn", help="atomicity: floods through a policy updated back to back")
    churn_cmd.add_argument("--seconds", type=float, default=20.0)
    scale_cmd = sub.add_parser("scale", help="benchmark: nodes x pods x policies, enforcement time, daemon RSS/CPU")
    scale_cmd.add_argument("--nodes", type=int, default=5)
    scale_cmd.add_argument("--pods-per-node", type=int, default=200)
    scale_cmd.add_argument("--policies", type=int, default=100)
    scale_cmd.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):  # SIGALRM: a redelivery (see _terminate)
        signal.signal(signum, _terminate)
    if args.command == "sweep":
        for line in sweep.sweep():
            print(line)
        return 0
    if args.command == "scale":
        return scale.main(args.nodes, args.pods_per_node, args.policies, args.rounds,
                          lambda line: print(line, flush=True))  # fmt: skip
    if args.command == "churn":
        return churn.main(args.seconds, lambda line: print(line, flush=True))
    if args.command == "demo":
        return demo.main(lambda line: print(line, flush=True))
    files = args.files or sorted(SCENARIOS.glob("*.yaml"))
    try:
        if args.jobs > 1 and len(files) > 1:
            flags = [*(["--no-daemon"] if args.no_daemon else []), *(["--oracle"] if args.oracle else [])]
            return _run_parallel(files, args.jobs, flags)
        return _run(files, daemons=not args.no_daemon, oracle=args.oracle, result_json=args.result_json)
    except scenario.ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
