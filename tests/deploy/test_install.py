"""deploy/ applied by the real kubectl to a real kube-apiserver: CRDs and RBAC for real, workloads dry-run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from e2e.controlplane import Credentials, kubectl
from tests.deploy.helpers import (
    COMPONENTS,
    DEPLOY,
    NAMESPACE,
    VARIANTS,
    WORKLOAD_KINDS,
    daemon_container,
    one,
    render,
    to_yaml,
    with_components,
)

_DRY_RUN_LINE = re.compile(r"^(\S+)/(\S+) (created|configured|unchanged) \(server dry run\)$")


def _applied(output: str) -> dict[str, str]:
    """`kind.group/name` -> outcome from the lines `kubectl apply --dry-run=server` prints."""
    outcomes = {}
    for line in output.splitlines():
        match = _DRY_RUN_LINE.match(line.strip())
        assert match, f"unexpected kubectl output line: {line!r}"
        outcomes[f"{match[1]}/{match[2]}"] = match[3]
    return outcomes


def test_install_creates_crds_namespace_and_rbac(installed: Credentials) -> None:
    with installed.client() as admin:
        crd = admin.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/multi-networkpolicies.k8s.cni.cncf.io")
        versions = {v["name"]: (v["served"], v["storage"]) for v in crd.json()["spec"]["versions"]}
        assert versions == {"v1beta1": (True, True), "v1beta2": (False, False)}
        assert admin.get("/apis/k8s.cni.cncf.io/v1/network-attachment-definitions").status_code == 200
        namespace = admin.get(f"/api/v1/namespaces/{NAMESPACE}").json()
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
        assert admin.get(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/trinet").status_code == 200
        binding = admin.get("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/trinet").json()
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "trinet"}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "trinet", "namespace": NAMESPACE}]
        rules = admin.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/trinet-custom-rules").json()["data"]
    # every rule file the daemon is told to read is a key of the ConfigMap it mounts, and nothing else is
    args = daemon_container(render(DEPLOY))["args"]
    files = {Path(a.split("=", 1)[1]).name for a in args if a.startswith("--custom-")}
    assert set(rules) == files


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_applies_with_server_dry_run(installed: Credentials, variant: str) -> None:
    docs = render(VARIANTS[variant])
    out = kubectl(installed, "apply", "-k", str(VARIANTS[variant]), "--dry-run=server").stdout
    outcomes = _applied(out)
    assert len(outcomes) == len(docs)
    assert outcomes["daemonset.apps/trinet"] == "created"
    assert all(outcome == "unchanged" for name, outcome in outcomes.items() if not name.startswith("daemonset"))
    with installed.client() as admin:  # a dry run: nothing was created
        assert admin.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets/trinet").status_code == 404


def test_components_apply_with_server_dry_run(installed: Credentials) -> None:
    """The optional components on the default install. The ServiceMonitor needs the Prometheus operator's CRD,
    which this cluster does not have: it is checked for wiring below, everything else is dry-run."""
    with with_components(DEPLOY) as variant:
        docs = render(variant)
    assert {d["kind"] for d in docs} >= {"ServiceMonitor", "Service", "DaemonSet"}
    sendable = [d for d in docs if d["kind"] != "ServiceMonitor"]
    outcomes = _applied(kubectl(installed, "apply", "-f", "-", "--dry-run=server", stdin=to_yaml(sendable)).stdout)
    assert outcomes["service/trinet-metrics"] == "created"
    assert outcomes["daemonset.apps/trinet"] == "created"
    assert outcomes["customresourcedefinition.apiextensions.k8s.io/network-attachment-definitions.k8s.cni.cncf.io"] == (
        "unchanged"
    )


def test_servicemonitor_selects_the_metrics_port_of_the_daemonset() -> None:
    with with_components(DEPLOY, ["servicemonitor"]) as variant:
        docs = render(variant)
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service", "trinet-metrics")
    pod_labels = one(docs, "DaemonSet", "trinet")["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    ports = {p["name"]: p["containerPort"] for p in daemon_container(docs)["ports"]}
    (service_port,) = service["spec"]["ports"]
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [service_port["name"]]
    assert service_port["targetPort"] == "metrics"
    assert service_port["port"] == ports["metrics"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_pod_is_admitted_in_trinet_namespace_and_refused_under_baseline(installed: Credentials, variant: str) -> None:
    """A pod made from the DaemonSet's template passes admission (Pod Security included) in trinet-system, and
    the same pod is refused in a namespace enforcing `baseline`: the namespace's privileged label is needed."""
    template = one(render(VARIANTS[variant]), "DaemonSet", "trinet")["spec"]["template"]
    baseline = f"baseline-{variant}"
    labels = {f"pod-security.kubernetes.io/{mode}": "baseline" for mode in ("enforce", "warn")}
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": baseline, "labels": labels}}
    kubectl(installed, "apply", "-f", "-", stdin=to_yaml([namespace]))

    def pod(ns: str) -> dict[str, object]:
        spec = {**template["spec"], "nodeName": "node-a"}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trinet-probe", "namespace": ns,
                "labels": template["metadata"]["labels"]}, "spec": spec}  # fmt: skip

    ok = kubectl(installed, "apply", "-f", "-", "--dry-run=server", stdin=to_yaml([pod(NAMESPACE)]))
    assert ok.stdout.strip() == "pod/trinet-probe created (server dry run)"
    assert "PodSecurity" not in ok.stderr
    refused = kubectl(installed, "apply", "-f", "-", "--dry-run=server", stdin=to_yaml([pod(baseline)]), check=False)
    assert refused.returncode != 0
    assert 'violates PodSecurity "baseline:latest"' in refused.stderr
    assert "non-default capabilities" in refused.stderr
    assert "hostPath volumes" in refused.stderr


def test_workloads_are_the_only_kinds_left_to_dry_run() -> None:
    """Every kind in every variant is either installed for real by the fixture or dry-run (nothing unchecked)."""
    installed_kinds = {"CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole",
                       "ClusterRoleBinding", "ConfigMap"}  # fmt: skip
    with with_components(DEPLOY, COMPONENTS) as variant:
        kinds = {d["kind"] for d in render(variant)}
    for directory in VARIANTS.values():
        kinds |= {d["kind"] for d in render(directory)}
    assert kinds == installed_kinds | WORKLOAD_KINDS
