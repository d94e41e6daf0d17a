"""The deploy/ ServiceAccount can read what the daemon watches and write Events, and nothing more."""

from __future__ import annotations

import pytest

from e2e.controlplane import Credentials
from tests.api.helpers import MNP_API, unique_namespace

READ_COLLECTIONS = [
    "/api/v1/pods",
    "/api/v1/namespaces",
    f"{MNP_API}/multi-networkpolicies",
    "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions",
]


@pytest.mark.parametrize("collection", READ_COLLECTIONS)
def test_daemon_can_list_and_watch(control_plane: Credentials, collection: str) -> None:
    with control_plane.client(control_plane.daemon_token) as daemon:
        listed = daemon.get(collection)
        assert listed.status_code == 200, listed.text
        params = {"watch": "1", "timeoutSeconds": "1", "resourceVersion": listed.json()["metadata"]["resourceVersion"]}
        with daemon.stream("GET", collection, params=params) as watch:
            assert watch.status_code == 200


def test_daemon_can_get_single_objects(control_plane: Credentials) -> None:
    with control_plane.client() as admin, control_plane.client(control_plane.daemon_token) as daemon:
        ns = unique_namespace(admin)
        admin.post(f"/api/v1/namespaces/{ns}/pods", json=_pod()).raise_for_status()
        admin.post(f"{MNP_API}/namespaces/{ns}/multi-networkpolicies", json=_policy()).raise_for_status()
        nads = f"/apis/k8s.cni.cncf.io/v1/namespaces/{ns}/network-attachment-definitions"
        admin.post(nads, json=_nad("net1")).raise_for_status()
        for path in (
            f"/api/v1/namespaces/{ns}",
            f"/api/v1/namespaces/{ns}/pods/p",
            f"{MNP_API}/namespaces/{ns}/multi-networkpolicies/deny",
            f"{nads}/net1",
        ):
            response = daemon.get(path)
            assert response.status_code == 200, (path, response.text)


def test_daemon_can_create_events(control_plane: Credentials) -> None:
    with control_plane.client() as admin, control_plane.client(control_plane.daemon_token) as daemon:
        ns = unique_namespace(admin)
        involved = {
            "kind": "MultiNetworkPolicy",
            "namespace": ns,
            "name": "deny",
            "apiVersion": "k8s.cni.cncf.io/v1beta1",
        }
        core = daemon.post(
            f"/api/v1/namespaces/{ns}/events",
            json={"metadata": {"generateName": "deny-"}, "involvedObject": involved, "reason": "InvalidPolicy",
                  "message": "spec.ingress[0]: test", "type": "Warning"},
        )  # fmt: skip
        assert core.status_code == 201, core.text
        modern = daemon.post(
            f"/apis/events.k8s.io/v1/namespaces/{ns}/events",
            json={"metadata": {"generateName": "deny-"}, "regarding": involved, "reason": "InvalidPolicy",
                  "note": "spec.ingress[0]: test", "type": "Warning", "action": "Validate",
                  "reportingController": "trinet", "reportingInstance": "trinet-node-a",
                  "eventTime": "2026-01-01T00:00:00.000000Z"},
        )  # fmt: skip
        assert modern.status_code == 201, modern.text


def test_daemon_cannot_write_policies_or_pods(control_plane: Credentials) -> None:
    with control_plane.client() as admin, control_plane.client(control_plane.daemon_token) as daemon:
        ns = unique_namespace(admin)
        policies = f"{MNP_API}/namespaces/{ns}/multi-networkpolicies"
        pods = f"/api/v1/namespaces/{ns}/pods"
        admin.post(policies, json=_policy()).raise_for_status()
        admin.post(pods, json=_pod()).raise_for_status()
        merge = {"Content-Type": "application/merge-patch+json"}
        label = b'{"metadata":{"labels":{"x":"y"}}}'
        attempts = {
            "create policy": daemon.post(policies, json=_policy("other")),
            "patch policy": daemon.patch(f"{policies}/deny", content=label, headers=merge),
            "delete policy": daemon.delete(f"{policies}/deny"),
            "create pod": daemon.post(pods, json=_pod("q")),
            "patch pod": daemon.patch(f"{pods}/p", content=label, headers=merge),
            "delete pod": daemon.delete(f"{pods}/p"),
            "create nad": daemon.post(
                f"/apis/k8s.cni.cncf.io/v1/namespaces/{ns}/network-attachment-definitions",
                json=_nad("n"),
            ),
        }
        assert {what: r.status_code for what, r in attempts.items()} == dict.fromkeys(attempts, 403)
        assert admin.get(f"{policies}/deny").json()["metadata"].get("labels") is None


def test_bad_token_is_rejected(control_plane: Credentials) -> None:
    with control_plane.client("not-a-token") as stranger:
        assert stranger.get("/api/v1/pods").status_code == 401


def _policy(name: str = "deny") -> dict[str, object]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1beta1",
        "kind": "MultiNetworkPolicy",
        "metadata": {"name": name, "annotations": {"k8s.v1.cni.cncf.io/policy-for": "net1"}},
        "spec": {"podSelector": {}},
    }


def _pod(name: str = "p") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "example.invalid/c"}]},
    }


def _nad(name: str) -> dict[str, object]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name},
        "spec": {"config": '{"cniVersion":"0.3.1","type":"macvlan"}'},
    }
