"""The CRDs in deploy/ on a real kube-apiserver: MultiNetworkPolicy create, list and watch, endPort preserved."""

from __future__ import annotations

from typing import Any

from e2e.controlplane import Credentials
from tests.api.helpers import MNP_API, unique_namespace, watch_events


def _policy(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1beta1",
        "kind": "MultiNetworkPolicy",
        "metadata": {
            "name": "allow-range",
            "namespace": namespace,
            "annotations": {"k8s.v1.cni.cncf.io/policy-for": "macvlan-net1"},
        },
        "spec": {
            "podSelector": {"matchLabels": {"app": "server"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": "10.1.0.0/16", "except": ["10.1.2.0/24"]}}],
                    "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8080}, {"port": "http"}],
                }
            ],
        },
    }


def test_create_list_watch_multinetworkpolicy_keeps_endport(control_plane: Credentials) -> None:
    with control_plane.client() as admin:
        ns = unique_namespace(admin)
        collection = f"{MNP_API}/namespaces/{ns}/multi-networkpolicies"
        listed = admin.get(collection)
        listed.raise_for_status()
        assert listed.json()["kind"] == "MultiNetworkPolicyList"
        assert listed.json()["items"] == []
        start_rv = listed.json()["metadata"]["resourceVersion"]

        created = admin.post(collection, json=_policy(ns))
        assert created.status_code == 201, created.text
        assert created.json()["spec"]["ingress"][0]["ports"][0] == {"protocol": "TCP", "port": 8000, "endPort": 8080}

        items = admin.get(collection).json()["items"]
        assert [item["metadata"]["name"] for item in items] == ["allow-range"]
        assert items[0]["spec"] == _policy(ns)["spec"]
        assert items[0]["metadata"]["annotations"]["k8s.v1.cni.cncf.io/policy-for"] == "macvlan-net1"

        event = next(watch_events(admin, collection, start_rv))
        assert event["type"] == "ADDED"
        assert event["object"]["metadata"]["name"] == "allow-range"
        assert event["object"]["spec"]["ingress"][0]["ports"][0]["endPort"] == 8080

        cluster_wide = admin.get("/apis/k8s.cni.cncf.io/v1beta1/multi-networkpolicies").json()["items"]
        assert any(item["metadata"]["namespace"] == ns for item in cluster_wide)


def test_v1beta2_is_defined_but_not_served(control_plane: Credentials) -> None:
    with control_plane.client() as admin:
        crd = admin.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/multi-networkpolicies.k8s.cni.cncf.io")
        versions = {v["name"]: (v["served"], v["storage"]) for v in crd.json()["spec"]["versions"]}
        assert versions == {"v1beta1": (True, True), "v1beta2": (False, False)}
        assert admin.get("/apis/k8s.cni.cncf.io/v1beta2/multi-networkpolicies").status_code == 404


def test_network_attachment_definition_round_trip(control_plane: Credentials) -> None:
    config = '{"cniVersion":"0.3.1","type":"macvlan","master":"eth1","mode":"bridge"}'
    with control_plane.client() as admin:
        ns = unique_namespace(admin)
        path = f"/apis/k8s.cni.cncf.io/v1/namespaces/{ns}/network-attachment-definitions"
        nad = {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "macvlan-net1"},
            "spec": {"config": config},
        }
        assert admin.post(path, json=nad).status_code == 201
        assert admin.get(f"{path}/macvlan-net1").json()["spec"]["config"] == config
