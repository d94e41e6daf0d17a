"""The installed console script works."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from trinet import __version__
from trinet.cli import main


def test_console_script_reports_version() -> None:
    script = Path(sys.executable).with_name("trinet")
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"trinet {__version__}"


def test_help_describes_the_daemon() -> None:
    script = Path(sys.executable).with_name("trinet")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True).stdout
    assert "MultiNetworkPolicy" in out


KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
"""


def _cli(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, env or {}, out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return path


def test_check_config_accepts_a_good_configuration(kubeconfig: Path) -> None:
    code, out, _ = _cli(["check-config", "--kubeconfig", str(kubeconfig)], {"NODE_NAME": "n1"})
    assert code == 0
    assert "configuration OK (node n1" in out


def test_check_config_needs_a_node_name(kubeconfig: Path) -> None:
    code, _, err = _cli(["check-config", "--kubeconfig", str(kubeconfig)])
    assert code == 2
    assert "--hostname-override" in err and "NODE_NAME" in err


@pytest.mark.parametrize("command", ["check-config", "run", "cleanup"])
def test_bad_custom_rules_are_refused_with_file_and_line(kubeconfig: Path, tmp_path: Path, command: str) -> None:
    rules = tmp_path / "v6-egress.rules"
    rules.write_text("ip6 daddr 2001:db8::/32 accept\nnot a rule at all\n")
    argv = [command, "--kubeconfig", str(kubeconfig), "--hostname-override", "n1",
            "--custom-v6-egress-rule-file", str(rules)]  # fmt: skip
    code, _, err = _cli(argv)
    assert code == 2  # run and cleanup refuse to start on the errors check-config reports
    assert f"{rules}:2" in err


def test_an_invalid_environment_value_names_the_variable(kubeconfig: Path) -> None:
    code, _, err = _cli(["check-config", "--kubeconfig", str(kubeconfig)], {"NODE_NAME": "n", "TRINET_WORKERS": "0"})
    assert code == 2
    assert "TRINET_WORKERS" in err


def test_a_missing_kubeconfig_is_reported(tmp_path: Path) -> None:
    code, _, err = _cli(["check-config", "--kubeconfig", str(tmp_path / "absent")], {"NODE_NAME": "n"})
    assert code == 2
    assert "--kubeconfig" in err


def test_python_dash_m_trinet_lists_the_subcommands() -> None:
    out = subprocess.run([sys.executable, "-m", "trinet", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("run", "cleanup", "check-config"):
        assert command in out


def test_run_help_names_every_flag() -> None:
    out = subprocess.run([sys.executable, "-m", "trinet", "run", "--help"], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    for flag in ("--hostname-override", "--network-plugins", "--container-runtime-endpoint", "--host-prefix",
                 "--accept-icmp", "--accept-icmpv6", "--custom-v4-ingress-rule-file", "--custom-v4-egress-rule-file",
                 "--custom-v6-ingress-rule-file", "--custom-v6-egress-rule-file", "--kubeconfig", "--netns-source",
                 "--table-name", "--workers", "--resync-period", "--metrics-bind-address",
                 "--health-probe-bind-address", "--log-level", "--log-format"):  # fmt: skip
        assert flag in out, flag
