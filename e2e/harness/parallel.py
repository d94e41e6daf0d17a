"""Run many scenario files at once, each in its own `python -m e2e run` process (own control plane, own nodes),
at most `jobs` at a time; collect each one's `Result` as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from e2e.harness.runner import Result

REPO = Path(__file__).resolve().parents[2]


def result_to_json(result: Result) -> str:
    data = asdict(result)
    data["logs"] = str(result.logs) if result.logs else None
    return json.dumps(data)


def result_from_json(text: str) -> Result:
    data: dict[str, Any] = json.loads(text)
    logs = data.pop("logs")
    return Result(**data, logs=Path(logs) if logs else None)


def run_files(
    files: list[Path],
    *,
    jobs: int,
    args: list[str] | None = None,
    on_done: Callable[[Path, Result, str], None] | None = None,
) -> dict[Path, Result]:
    """Each file in a child process; `on_done(file, result, child output)` as each one ends."""
    pending = list(files)
    running: dict[Path, tuple[subprocess.Popen[bytes], Path, Path]] = {}
    results: dict[Path, Result] = {}
    work = Path(tempfile.mkdtemp(prefix="trinet-e2e-parallel-"))
    try:
        while pending or running:
            while pending and len(running) < jobs:
                path = pending.pop(0)
                out, res = work / f"{path.stem}.out", work / f"{path.stem}.json"
                with out.open("wb") as log:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "e2e", "run", *(args or []), "--result-json", str(res), str(path)],
                        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    )  # fmt: skip
                running[path] = (proc, out, res)
            for path, (proc, out, res) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[path]
                output = out.read_text(errors="replace")
                if res.exists():
                    result = result_from_json(res.read_text())
                else:
                    result = Result(path.stem, error=f"exit code {proc.returncode}, no result:\n{output[-3000:]}")
                results[path] = result
                if on_done:
                    on_done(path, result, output)
            time.sleep(0.1)  # supervising child processes, not waiting for an effect
    finally:
        for proc, _, _ in running.values():
            proc.terminate()  # SIGTERM: each child removes what it made
        for proc, _, _ in running.values():
            proc.wait()
        for leftover in work.iterdir():
            leftover.unlink()
        work.rmdir()
    return results
