"""``render`` and ``explain`` as processes against the real API server, with the daemon ServiceAccount's rights."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from e2e.controlplane import Credentials
from tests.api.helpers import unique_namespace
from tests.observability.kube import create_nad, create_pod, create_policy, trinet
from trinet.objects import MultiNetworkPolicy, Namespace, NetworkAttachmentDefinition, Pod
from trinet.policy import CompileOptions, Snapshot, compile, render
from trinet.policy.to_netlink import versioned


@pytest.fixture(scope="module")
def cluster(control_plane: Credentials, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Namespace with server s (app=s), clients a and b on macvlan net1; web: s accepts TCP/80 from app=a;
    tls: s accepts TCP/443 from every pod of the namespace. The kubeconfig is the daemon ServiceAccount's."""
    kubeconfig = control_plane.write_kubeconfig(
        tmp_path_factory.mktemp("kube") / "kubeconfig", control_plane.daemon_token
    )
    with control_plane.client() as admin:
        ns = unique_namespace(admin, "obs")
        create_nad(admin, ns, "net1")
        create_pod(admin, ns, "s", {"app": "s"}, [("net1", "net1", "10.1.0.1")])
        create_pod(admin, ns, "a", {"app": "a"}, [("net1", "net1", "10.1.0.2")])
        create_pod(admin, ns, "b", {"app": "b"}, [("net1", "net1", "10.1.0.3")])
        server = {"matchLabels": {"app": "s"}}
        from_a = [{"podSelector": {"matchLabels": {"app": "a"}}}]
        create_policy(admin, ns, "web", {"podSelector": server, "ingress": [{"from": from_a, "ports": [{"port": 80}]}]})
        create_policy(
            admin,
            ns,
            "tls",
            {"podSelector": server, "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 443}]}]},
        )
    yield ns, kubeconfig


def _objects(control_plane: Credentials, ns: str) -> Snapshot:
    with control_plane.client() as admin:
        pods = msgspec.convert(admin.get(f"/api/v1/namespaces/{ns}/pods").json()["items"], list[Pod])
        namespace = msgspec.convert(admin.get(f"/api/v1/namespaces/{ns}").json(), Namespace)
        policies = msgspec.convert(
            admin.get(f"/apis/k8s.cni.cncf.io/v1beta1/namespaces/{ns}/multi-networkpolicies").json()["items"],
            list[MultiNetworkPolicy],
        )
        nads = msgspec.convert(
            admin.get(f"/apis/k8s.cni.cncf.io/v1/namespaces/{ns}/network-attachment-definitions").json()["items"],
            list[NetworkAttachmentDefinition],
        )
    return Snapshot(pods, [namespace], policies, nads)


def test_render_prints_the_compiled_ruleset(control_plane: Credentials, cluster: tuple[str, Path]) -> None:
    ns, kubeconfig = cluster
    done = trinet(kubeconfig, "render", f"{ns}/s", "--accept-icmp")
    assert done.returncode == 0, done.stderr
    snapshot = _objects(control_plane, ns)
    expected = render(versioned(compile(snapshot, snapshot.pods[f"{ns}/s"], CompileOptions(accept_icmp=True)), 1))
    assert done.stdout == expected
    swapped = trinet(kubeconfig, "render", f"{ns}/s", "--accept-icmp", "--generation", "2")
    ruleset = compile(snapshot, snapshot.pods[f"{ns}/s"], CompileOptions(accept_icmp=True))
    assert swapped.stdout == render(versioned(ruleset, 2)) != done.stdout
    assert "10.1.0.2" in done.stdout and "10.1.0.3" in done.stdout  # web admits a, tls every pod
    assert f'comment "{ns}/web ingress[0]"' in done.stdout and "meta l4proto icmp accept" in done.stdout


def test_render_of_an_unpoliced_pod_and_of_a_missing_pod(cluster: tuple[str, Path]) -> None:
    ns, kubeconfig = cluster
    free = trinet(kubeconfig, "render", f"{ns}/a")
    assert free.returncode == 0, free.stderr
    assert free.stdout.startswith(f"# {ns}/a: nothing to enforce")
    missing = trinet(kubeconfig, "render", f"{ns}/nope")
    assert (missing.returncode, missing.stdout) == (2, "")
    assert f"pod {ns}/nope not found" in missing.stderr


def test_explain_allowed_names_the_rule(cluster: tuple[str, Path]) -> None:
    ns, kubeconfig = cluster
    done = trinet(kubeconfig, "explain", f"{ns}/a", f"{ns}/s", "--protocol", "tcp", "--port", "80")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == f"{ns}/a -> {ns}/s TCP/80 IPv4 10.1.0.2 -> 10.1.0.1 on {ns}/net1: ALLOWED"
    assert f"allowed by {ns}/web ingress[0]" in done.stdout
    assert f'accept comment "{ns}/web ingress[0]"' in done.stdout
    assert "BUG" not in done.stdout


def test_explain_isolated_and_unmatched(cluster: tuple[str, Path]) -> None:
    ns, kubeconfig = cluster
    done = trinet(kubeconfig, "explain", f"{ns}/b", f"{ns}/s", "--protocol", "TCP", "--port", "80")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines()[0].endswith(": DENIED")
    assert f"denied: the direction is isolated and no rule of {ns}/tls, {ns}/web matches" in done.stdout


def test_explain_two_policies(cluster: tuple[str, Path]) -> None:
    ns, kubeconfig = cluster
    done = trinet(
        kubeconfig, "explain", f"{ns}/b", f"{ns}/s", "--protocol", "TCP", "--port", "443", "--network", f"{ns}/net1"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"isolated by {ns}/tls, {ns}/web" in done.stdout
    assert f"allowed by {ns}/tls ingress[0]" in done.stdout and f"allowed by {ns}/web" not in done.stdout


def test_explain_bad_question_is_an_error(cluster: tuple[str, Path]) -> None:
    ns, kubeconfig = cluster
    done = trinet(kubeconfig, "explain", f"{ns}/a", f"{ns}/s", "--protocol", "TCP")
    assert (done.returncode, done.stdout) == (2, "")
    assert "TCP needs --port" in done.stderr


def test_unreadable_cluster_is_a_clear_error(tmp_path: Path) -> None:
    done = trinet(tmp_path / "missing-kubeconfig", "render", "ns/p")
    assert done.returncode == 2
    assert "missing-kubeconfig" in done.stderr and "Traceback" not in done.stderr
