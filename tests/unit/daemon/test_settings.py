"""Settings: flags, environment, defaults and validation from one model."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest

from trinet.daemon.settings import (
    ConfigError,
    Settings,
    add_arguments,
    from_sources,
    grpc_available,
    load_custom_rules,
    parse_bind_address,
    parse_duration,
)


def settings(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_sources(parser.parse_args(argv), env or {})


def test_defaults() -> None:
    s = settings([])
    assert s.network_plugins == ("macvlan",)
    assert s.table_name == "multi_networkpolicy"
    assert s.workers == 4
    assert s.resync_period == 60.0
    assert s.metrics_bind_address == ":8080"
    assert s.health_address == ("", 8081)
    assert (s.log_level, s.log_format, s.resolved_netns_source) == ("info", "text", "procfs")
    assert not s.accept_icmp and not s.accept_icmpv6


def test_flags_win_over_environment_and_node_name_comes_from_node_name() -> None:
    env = {"NODE_NAME": "from-env", "TRINET_WORKERS": "7", "TRINET_NETWORK_PLUGINS": "macvlan, ipvlan"}
    s = settings(["--workers", "3"], env)
    assert (s.node_name, s.workers, s.network_plugins) == ("from-env", 3, ("macvlan", "ipvlan"))
    assert settings(["--hostname-override", "flag"], env).node_name == "flag"


def test_go_style_booleans() -> None:
    assert settings(["--accept-icmp"]).accept_icmp
    assert not settings(["--accept-icmp=false"]).accept_icmp
    assert settings([], {"TRINET_ACCEPT_ICMPV6": "true"}).accept_icmpv6


@pytest.mark.parametrize(("text", "seconds"), [("30", 30.0), ("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bind_addresses() -> None:
    assert parse_bind_address("0") is None
    assert parse_bind_address("127.0.0.1:9") == ("127.0.0.1", 9)
    assert parse_bind_address("[::1]:9") == ("::1", 9)


@pytest.mark.parametrize(
    ("argv", "env", "where"),
    [
        (["--workers", "0"], {}, "--workers"),
        ([], {"TRINET_WORKERS": "many"}, "TRINET_WORKERS"),
        (["--resync-period", "soon"], {}, "--resync-period"),
        (["--network-plugins", " , "], {}, "--network-plugins"),
        (["--health-probe-bind-address", "localhost"], {}, "--health-probe-bind-address"),
        (["--log-format", "xml"], {}, "--log-format"),
        (["--accept-icmp=maybe"], {}, "--accept-icmp"),
        (["--table-name", "bad name"], {}, "--table-name"),
        (["--netns-source", "cri"], {}, "settings"),
    ],
)
def test_invalid_values_name_their_source(argv: list[str], env: dict[str, str], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings(argv, env)
    assert any(p.startswith(where) for p in info.value.problems), info.value.problems


def test_custom_rule_errors_carry_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "good.rules"
    good.write_text("ip saddr 10.0.0.0/8 accept\n")
    bad = tmp_path / "bad.rules"
    bad.write_text("ip saddr 10.0.0.0/8 accept\nthis is not a rule\n")
    assert load_custom_rules(settings(["--custom-v4-ingress-rule-file", str(good)])).ingress
    with pytest.raises(ConfigError) as info:
        load_custom_rules(settings(["--custom-v4-egress-rule-file", str(bad)]))
    assert any(f"{bad}:2" in p for p in info.value.problems), info.value.problems
    with pytest.raises(ConfigError) as missing:
        load_custom_rules(settings(["--custom-v6-egress-rule-file", str(tmp_path / "absent")]))
    assert "cannot read" in missing.value.problems[0]


_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def _check_config(tmp_path: Path, *argv: str) -> tuple[int, str]:
    import io  # noqa: PLC0415

    from trinet.cli import main  # noqa: PLC0415

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(_KUBECONFIG)
    out, err = io.StringIO(), io.StringIO()
    code = main(["check-config", "--kubeconfig", str(kubeconfig), "--hostname-override", "n1", *argv], {}, out, err)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("source", ["cri", "auto"])
def test_a_missing_cri_socket_is_a_configuration_error(tmp_path: Path, source: str) -> None:
    if not grpc_available():
        pytest.skip("gRPC (trinet[cri]) not installed: auto means procfs, cri is refused for that reason")
    missing = tmp_path / "run" / "containerd.sock"
    code, text = _check_config(tmp_path, "--netns-source", source, "--container-runtime-endpoint", f"unix://{missing}")
    assert code == 2, text
    assert f"--container-runtime-endpoint: {missing}: No such file or directory" in text


def test_the_cri_socket_is_looked_for_under_the_host_prefix(tmp_path: Path) -> None:
    if not grpc_available():
        pytest.skip("gRPC (trinet[cri]) not installed")
    host = tmp_path / "host"
    (host / "run").mkdir(parents=True)
    (host / "proc").mkdir()
    not_a_socket = host / "run" / "plain-file.sock"
    not_a_socket.write_text("")
    code, text = _check_config(
        tmp_path, "--host-prefix", str(host), "--container-runtime-endpoint", "/run/plain-file.sock"
    )
    assert code == 2
    assert f"--container-runtime-endpoint: {not_a_socket} is not a unix socket" in text
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(host / "run" / "containerd.sock"))
        code, text = _check_config(tmp_path, "--host-prefix", str(host), "--container-runtime-endpoint",
                                   "unix:///run/containerd.sock")  # fmt: skip
    assert code == 0, text
    assert "configuration OK" in text
