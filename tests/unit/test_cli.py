"""The installed console script works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from trinet import __version__


def test_console_script_reports_version() -> None:
    script = Path(sys.executable).with_name("trinet")
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"trinet {__version__}"


def test_help_describes_the_daemon() -> None:
    script = Path(sys.executable).with_name("trinet")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True).stdout
    assert "MultiNetworkPolicy" in out
