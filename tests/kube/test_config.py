"""Kubeconfig and in-cluster configuration: every credential form, every malformed case with its message."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from e2e.controlplane import Credentials
from trinet.kube import ApiClient, KubeConfigError, load_config
from trinet.kube.client import ssl_context
from trinet.kube.config import in_cluster_config


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A client certificate and its key (self-signed; only loading is tested here)."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=trinet", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return d / "cert.pem", d / "key.pem"


def kubeconfig(tmp_path: Path, cluster: str, user: str, extra: str = "", name: str = "config") -> Path:
    path = tmp_path / name
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: c\n  cluster:\n{cluster}"
        f"users:\n- name: u\n  user:\n{user}"
        "contexts:\n- name: ctx\n  context: {cluster: c, user: u, namespace: team}\n"
        f"current-context: ctx\n{extra}"
    )
    return path


SERVER = "    server: https://10.0.0.1:6443\n"


def test_token_and_ca_file(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    cert, _ = keypair
    config = load_config(str(kubeconfig(tmp_path, SERVER + f"    certificate-authority: {cert}\n", "    token: abc\n")))
    assert (config.server, config.token, config.ca_file, config.namespace) == (
        "https://10.0.0.1:6443", "abc", str(cert), "team"
    )  # fmt: skip
    assert "abc" not in repr(config)


def test_relative_token_file_resolves_against_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("t0k\n")
    config = load_config(str(kubeconfig(tmp_path, SERVER, "    tokenFile: tok\n")))
    assert config.token_file == str(tmp_path / "tok")


def test_client_certificate_files_and_inline_data(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    cert, key = keypair
    files = load_config(str(kubeconfig(tmp_path, SERVER, f"    client-certificate: {cert}\n    client-key: {key}\n")))
    assert (files.client_cert_file, files.client_key_file) == (str(cert), str(key))
    ssl_context(files)  # loads
    inline = load_config(
        str(
            kubeconfig(
                tmp_path,
                SERVER + f"    certificate-authority-data: {b64(cert.read_bytes())}\n",
                f"    client-certificate-data: {b64(cert.read_bytes())}\n"
                f"    client-key-data: {b64(key.read_bytes())}\n",
                name="inline",
            )
        )
    )
    assert inline.client_cert_data == cert.read_bytes() and inline.ca_data == cert.read_bytes()
    ssl_context(inline)


def test_insecure_skip_tls_verify(tmp_path: Path) -> None:
    config = load_config(str(kubeconfig(tmp_path, SERVER + "    insecure-skip-tls-verify: true\n", "    token: x\n")))
    assert config.insecure_skip_tls_verify
    assert ssl_context(config).check_hostname is False


def test_named_context_and_merged_files(tmp_path: Path) -> None:
    first = kubeconfig(tmp_path, SERVER, "    token: first\n", name="a")
    second = tmp_path / "b"
    second.write_text(
        "clusters:\n- name: c\n  cluster: {server: 'https://other:1'}\n- name: c2\n  cluster: {server: 'https://two:2'}\n"
        "users:\n- name: u\n  user: {token: second}\n"
        "contexts:\n- name: other\n  context: {cluster: c2, user: u}\ncurrent-context: other\n"
    )
    merged = f"{first}:{second}"
    assert load_config(merged).token == "first"  # the first file's current-context and user win
    other = load_config(merged, "other")
    assert (other.server, other.token, other.namespace) == ("https://two:2", "first", "default")


@pytest.mark.parametrize(
    ("cluster", "user", "message"),
    [
        (SERVER, "    exec: {command: aws}\n", "field users[u].user.exec: exec credential plugins are not supported"),
        ("    insecure-skip-tls-verify: true\n", "    token: x\n", "field clusters[c].cluster.server is required"),
        ("    server: 10.0.0.1\n", "    token: x\n", "field clusters[c].cluster.server must be an http(s) URL"),
        (
            SERVER + "    certificate-authority-data: '@@@'\n",
            "    token: x\n",
            "certificate-authority-data is not valid base64",
        ),
        (
            SERVER + "    certificate-authority: /nonexistent/ca\n",
            "    token: x\n",
            "names /nonexistent/ca, which does not exist",
        ),
        (SERVER, "    tokenFile: missing-token\n", "field users[u].user.tokenFile names"),
        (SERVER, "    client-certificate-data: Zm9v\n", "client-key(-data) is required with the other half"),
        (SERVER, "    token: [1, 2]\n", "field users[u].user.token must be a string"),
        (
            SERVER + "    insecure-skip-tls-verify: 'yes'\n",
            "    token: x\n",
            "insecure-skip-tls-verify must be a boolean",
        ),
        (SERVER, "    username: admin\n    password: p\n", "basic auth is not supported"),
    ],
)
def test_malformed_kubeconfig_names_file_and_field(tmp_path: Path, cluster: str, user: str, message: str) -> None:
    path = kubeconfig(tmp_path, cluster, user)
    with pytest.raises(KubeConfigError) as info:
        load_config(str(path))
    assert str(path) in str(info.value) and message in str(info.value)


def test_structural_errors(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad"
    bad_yaml.write_text("clusters: [\n")
    for path, context, message in [
        (tmp_path / "absent", None, "cannot read"),
        (bad_yaml, None, "not valid YAML"),
        (kubeconfig(tmp_path, SERVER, "    token: x\n"), "nope", "context 'nope' is not defined in contexts"),
    ]:
        with pytest.raises(KubeConfigError, match=message) as info:
            load_config(str(path), context)
        assert str(path) in str(info.value)
    not_list = tmp_path / "notlist"
    not_list.write_text("clusters: {a: 1}\n")
    with pytest.raises(KubeConfigError, match="field clusters must be a list"):
        load_config(str(not_list))
    no_current = tmp_path / "nocurrent"
    no_current.write_text("clusters: []\n")
    with pytest.raises(KubeConfigError, match="current-context is not set"):
        load_config(str(no_current))


def test_in_cluster(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("pem")
    (tmp_path / "namespace").write_text("kube-system\n")
    config = in_cluster_config(tmp_path, {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"})
    assert (config.server, config.token_file, config.namespace) == (
        "https://[fd00::1]:443", str(tmp_path / "token"), "kube-system"
    )  # fmt: skip
    with pytest.raises(KubeConfigError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set"):
        in_cluster_config(tmp_path, {})
    (tmp_path / "token").unlink()
    with pytest.raises(KubeConfigError, match=f"service-account token {tmp_path / 'token'} does not exist"):
        in_cluster_config(tmp_path, {"KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"})


@pytest.mark.parametrize("form", ["ca-file", "ca-data", "insecure"])
async def test_kubeconfig_reaches_the_real_server(control_plane: Credentials, tmp_path: Path, form: str) -> None:
    tls = {
        "ca-file": f"    certificate-authority: {control_plane.ca_file}\n",
        "ca-data": f"    certificate-authority-data: {b64(control_plane.ca_file.read_bytes())}\n",
        "insecure": "    insecure-skip-tls-verify: true\n",
    }[form]
    (tmp_path / "token").write_text(control_plane.daemon_token)
    path = kubeconfig(tmp_path, f"    server: {control_plane.url}\n{tls}", "    tokenFile: token\n")
    async with ApiClient(load_config(str(path))) as api:
        body = await api.request("GET", "/api/v1/namespaces", params={"limit": "1"})
    assert b'"kind":"NamespaceList"' in body
