"""The ServiceAccount as `kubectl apply -k` installs it can do what the daemon needs and nothing else."""

from __future__ import annotations

import pytest

from e2e.controlplane import Credentials, kubectl
from tests.deploy.helpers import NAMESPACE

# (API group, resource, verb) the daemon needs
NEEDED = {
    *((group, resource, verb) for group, resource in [("", "pods"), ("", "namespaces"),
      ("k8s.cni.cncf.io", "multi-networkpolicies"), ("k8s.cni.cncf.io", "network-attachment-definitions")]
      for verb in ("get", "list", "watch")),
    *((group, "events", verb) for group in ("", "events.k8s.io") for verb in ("create", "patch")),
}  # fmt: skip
# What Kubernetes grants every authenticated user (system:basic-user): asking the API what one may do.
EVERYONE = {
    ("authorization.k8s.io", "selfsubjectaccessreviews", "create"),
    ("authorization.k8s.io", "selfsubjectrulesreviews", "create"),
    ("authentication.k8s.io", "selfsubjectreviews", "create"),
}


@pytest.fixture(scope="module")
def daemon_token(installed: Credentials) -> str:
    """A token for trinet-system/trinet, asked for as an operator would: `kubectl create token`."""
    return kubectl(installed, "create", "token", "trinet", "-n", NAMESPACE, "--duration=1h").stdout.strip()


def test_rules_review_lists_exactly_what_the_daemon_needs(installed: Credentials, daemon_token: str) -> None:
    with installed.client(daemon_token) as daemon:
        for namespace in ("default", NAMESPACE):
            review = daemon.post(
                "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
                json={"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                      "spec": {"namespace": namespace}},
            )  # fmt: skip
            assert review.status_code == 201, review.text
            status = review.json()["status"]
            assert not status.get("incomplete"), status
            granted = set()
            for rule in status["resourceRules"]:
                assert not rule.get("resourceNames"), rule
                granted |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
            assert granted == NEEDED | EVERYONE


@pytest.mark.parametrize(
    "verb_resource",
    [
        "list pods --all-namespaces",
        "watch multi-networkpolicies.k8s.cni.cncf.io --all-namespaces",
        "get network-attachment-definitions.k8s.cni.cncf.io -n default",
        "get namespaces",
        "create events -n default",
        "patch events.events.k8s.io -n default",
    ],
)
def test_can(installed: Credentials, daemon_token: str, verb_resource: str) -> None:
    proc = kubectl(installed, "auth", "can-i", *verb_resource.split(), token=daemon_token, check=False)
    assert (proc.returncode, proc.stdout.strip()) == (0, "yes")


@pytest.mark.parametrize(
    "verb_resource",
    [
        "get secrets -n default",
        f"list secrets -n {NAMESPACE}",
        "watch secrets --all-namespaces",
        "get configmaps -n default",
        "create multi-networkpolicies.k8s.cni.cncf.io -n default",
        "patch multi-networkpolicies.k8s.cni.cncf.io -n default",
        "delete multi-networkpolicies.k8s.cni.cncf.io -n default",
        "update multi-networkpolicies.k8s.cni.cncf.io/status -n default",
        "create network-attachment-definitions.k8s.cni.cncf.io -n default",
        "create pods -n default",
        "patch pods -n default",
        "delete pods -n default",
        "create pods/exec -n default",
        "patch pods/status -n default",
        "update namespaces",
        "list nodes",
        "delete events -n default",
        "update events -n default",
        "list events -n default",
        "create serviceaccounts/token -n trinet-system",
        "impersonate serviceaccounts",
        "* *",
    ],
)
def test_cannot(installed: Credentials, daemon_token: str, verb_resource: str) -> None:
    proc = kubectl(installed, "auth", "can-i", *verb_resource.split(), token=daemon_token, check=False)
    assert (proc.returncode, proc.stdout.strip()) == (1, "no")


def test_a_denied_write_really_fails(installed: Credentials, daemon_token: str) -> None:
    """Not only the review: the daemon's token cannot read a Secret or create a policy (403 from kubectl)."""
    kubectl(installed, "create", "secret", "generic", "s", "-n", "default", "--from-literal=k=v")
    for args in (["get", "secret", "s", "-n", "default"], ["delete", "secret", "s", "-n", "default"]):
        proc = kubectl(installed, *args, token=daemon_token, check=False)
        assert proc.returncode == 1
        assert "Forbidden" in proc.stderr
    assert kubectl(installed, "get", "secret", "s", "-n", "default", "-o", "name").stdout.strip() == "secret/s"
    policy = (
        "apiVersion: k8s.cni.cncf.io/v1beta1\nkind: MultiNetworkPolicy\n"
        "metadata: {name: p, namespace: default}\nspec: {podSelector: {}}\n"
    )
    proc = kubectl(installed, "create", "-f", "-", stdin=policy, token=daemon_token, check=False)
    assert proc.returncode == 1
    assert "Forbidden" in proc.stderr
    assert kubectl(installed, "get", "multi-networkpolicies", "-A", "-o", "name").stdout.strip() == ""
