"""Events from the daemon as a real process: one per problem, on the right object, de-duplicated, rate-limited."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.daemon.cluster import Daemon, Node, wait_for
from tests.observability.kube import Scraper

INVALID = {"podSelector": {}, "ingress": [{"ports": [{"protocol": "GRE"}]}]}


def trinet_events(admin: httpx.Client, ns: str) -> list[dict[str, Any]]:
    items = admin.get(f"/apis/events.k8s.io/v1/namespaces/{ns}/events").json()["items"]
    return [e for e in items if e.get("reportingController") == "trinet"]


def about(events: list[dict[str, Any]], kind: str, name: str, reason: str) -> list[dict[str, Any]]:
    return [
        e for e in events if e["regarding"]["kind"] == kind and e["regarding"]["name"] == name and e["reason"] == reason
    ]


def test_one_event_per_problem_on_its_object_and_none_on_repeats(
    cluster: Node, metrics_daemon: tuple[Daemon, Scraper], admin: httpx.Client
) -> None:
    daemon, scraper = metrics_daemon
    ns = cluster.namespace
    cluster.pod("server", {"app": "server"})
    cluster.pod("broken", {"app": "broken"})
    malformed = json.dumps([{"name": f"{ns}/macnet", "interface": "net1", "ips": ["300.1.2.3"]}])
    cluster.patch_pod("broken", {"metadata": {"annotations": {"k8s.v1.cni.cncf.io/network-status": malformed}}})
    cluster.policy("bad", INVALID)
    cluster.policy("nonad", {"podSelector": {}}, network="nowhere")
    cluster.create_nad("vlannet", cni_type="ipvlan")
    cluster.policy("unsupported", {"podSelector": {}}, network="vlannet")
    daemon.start().wait_ready()

    def four() -> list[dict[str, Any]]:
        events = trinet_events(admin, ns)
        found = [
            about(events, "MultiNetworkPolicy", "bad", "InvalidPolicy"),
            about(events, "MultiNetworkPolicy", "nonad", "PolicyNetworkMissing"),
            about(events, "Pod", "broken", "MalformedAnnotation"),
            about(events, "MultiNetworkPolicy", "unsupported", "PolicyNetworkUnsupported"),
        ]
        return [f[0] for f in found] if all(found) else []

    invalid, missing, pod, unsupported = wait_for(four, "an Event for each of the four problems")
    assert f"{ns}/vlannet, of CNI type 'ipvlan', which trinet does not police" in unsupported["note"]
    assert "'GRE' is not one of TCP, UDP, SCTP" in invalid["note"]
    assert f"policy-for names {ns}/nowhere, which does not exist" in missing["note"]
    assert "'300.1.2.3' is not an IP address" in pod["note"]
    for event in (invalid, missing, pod, unsupported):
        assert event["type"] == "Warning" and "Ignored: " in event["note"] and "isolation kept" in event["note"]
        assert event["reportingInstance"] == f"trinet-{cluster.name}"
    assert pod["regarding"]["uid"] and invalid["regarding"]["apiVersion"] == "k8s.cni.cncf.io/v1beta1"

    # Repeats: new versions of both objects with the same problems, then a new problem as a marker that the
    # reporter has audited a snapshot holding the repeats.
    admin.patch(
        f"/apis/k8s.cni.cncf.io/v1beta1/namespaces/{ns}/multi-networkpolicies/bad",
        json={"metadata": {"labels": {"touched": "yes"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).raise_for_status()
    cluster.patch_pod("broken", {"metadata": {"labels": {"touched": "yes"}}})
    cluster.policy("bad2", INVALID)
    wait_for(lambda: about(trinet_events(admin, ns), "MultiNetworkPolicy", "bad2", "InvalidPolicy"), "marker Event")
    events = trinet_events(admin, ns)
    assert len(about(events, "MultiNetworkPolicy", "bad", "InvalidPolicy")) == 1
    assert len(about(events, "MultiNetworkPolicy", "nonad", "PolicyNetworkMissing")) == 1
    assert len(about(events, "Pod", "broken", "MalformedAnnotation")) == 1
    assert len(about(events, "MultiNetworkPolicy", "unsupported", "PolicyNetworkUnsupported")) == 1
    assert len(events) == 5
    assert scraper.value("trinet_events", "trinet_events_total", reason="InvalidPolicy") == 2


def test_the_event_writer_keeps_its_rate_limit_under_a_storm(
    cluster: Node, metrics_daemon: tuple[Daemon, Scraper], admin: httpx.Client
) -> None:
    daemon, scraper = metrics_daemon
    ns = cluster.namespace
    cluster.pod("server", {"app": "server"})
    storm = 60
    for i in range(storm):
        cluster.policy(f"bad-{i}", INVALID)
    started = time.monotonic()
    daemon.start().wait_ready()
    wait_for(
        lambda: scraper.value("trinet_events", "trinet_events_total", reason="InvalidPolicy") == storm,
        "every finding handed to the writer",
    )
    elapsed = time.monotonic() - started
    written = len(trinet_events(admin, ns))
    burst, rate = 25, 1.0  # EventWriter's defaults
    assert burst <= written <= burst + rate * elapsed + 1, (written, elapsed)
    assert written < storm
