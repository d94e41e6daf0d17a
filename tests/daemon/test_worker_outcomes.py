"""The worker in-process, against the real kernel and a real pod sandbox: forced commit outcomes.

`OutcomeUnknown` cannot be provoked from outside (it needs a receive overflow or a short send), so the socket is
wrapped to raise it after (or instead of) a real transaction; the kernel's table is always real.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import trio

import netlink_nft as nl
from tests.conftest import require_root_and_nftables
from tests.daemon.cluster import FakePodNetwork, make_sandbox, table_text
from tests.support.netns import ip, throwaway_netns
from trinet.daemon.netns import ProcfsResolver
from trinet.daemon.observer import NullObserver, TransactionKind, TransactionOutcome
from trinet.daemon.queue import DirtyQueue
from trinet.daemon.snapshots import SnapshotCache
from trinet.daemon.worker import PodState, PodWorker
from trinet.kube import ClusterStore
from trinet.objects import (
    LabelSelector,
    MultiNetworkPolicy,
    MultiNetworkPolicyIngressRule,
    MultiNetworkPolicyPeer,
    MultiNetworkPolicySpec,
    Namespace,
    NetworkAttachmentDefinition,
    NetworkAttachmentDefinitionSpec,
    ObjectMeta,
    Pod,
    PodSpec,
    PodStatus,
)
from trinet.policy import CompileOptions

NODE = "node-under-test"
KEY = "ns1/server"


@dataclass
class Recorder(NullObserver):
    transactions: list[tuple[TransactionKind, TransactionOutcome]] = field(default_factory=list)
    adoptions: list[bool] = field(default_factory=list)

    def transaction(self, pod: str, kind: TransactionKind, outcome: TransactionOutcome, messages: int) -> None:
        self.transactions.append((kind, outcome))

    def adopted(self, pod: str, unchanged: bool) -> None:
        self.adoptions.append(unchanged)


class FlakySocket(nl.NftSocket):
    """Raises OutcomeUnknown once: after really applying the batch (``commit``) or without sending it."""

    armed = True
    commit = True

    def apply(self, batch: nl.Batch, *, genid: int | None = None) -> None:
        if FlakySocket.armed:
            FlakySocket.armed = False
            if FlakySocket.commit:
                super().apply(batch, genid=genid)
            raise nl.OutcomeUnknown("forced by the test")
        super().apply(batch, genid=genid)


async def open_flaky(path: str) -> nl.TrioNftSocket:
    return nl.TrioNftSocket(await trio.to_thread.run_sync(FlakySocket.open, path))


@pytest.fixture
def sandbox() -> Iterator[tuple[FakePodNetwork, str]]:
    require_root_and_nftables()
    with contextlib.ExitStack() as stack:
        fabric = stack.enter_context(throwaway_netns("trinet-test-dfab"))
        ip("link", "add", "br0", "type", "bridge", netns=fabric)
        uid = str(uuid.uuid4())
        yield make_sandbox(stack, fabric, uid), uid


def _store(sb: FakePodNetwork, uid: str) -> ClusterStore:
    store = ClusterStore()
    status = [{"name": "ns1/macnet", "interface": "net1", "ips": [sb.address.split("/")[0]]}]
    annotations = {"k8s.v1.cni.cncf.io/networks": "macnet", "k8s.v1.cni.cncf.io/network-status": json.dumps(status)}
    store.namespaces.upsert(Namespace(metadata=ObjectMeta(name="ns1", resource_version="1")))
    store.nads.upsert(NetworkAttachmentDefinition(
        metadata=ObjectMeta(name="macnet", namespace="ns1", resource_version="1"),
        spec=NetworkAttachmentDefinitionSpec(config='{"type": "macvlan"}')))  # fmt: skip
    store.pods.upsert(Pod(
        metadata=ObjectMeta(name="server", namespace="ns1", uid=uid, annotations=annotations, resource_version="1"),
        spec=PodSpec(node_name=NODE), status=PodStatus(phase="Running")))  # fmt: skip
    store.policies.upsert(MultiNetworkPolicy(
        metadata=ObjectMeta(name="deny", namespace="ns1", resource_version="1",
                            annotations={"k8s.v1.cni.cncf.io/policy-for": "macnet"}),
        spec=MultiNetworkPolicySpec(policy_types=["Ingress"], ingress=[MultiNetworkPolicyIngressRule(
            from_=[MultiNetworkPolicyPeer(pod_selector=LabelSelector(match_labels={"app": "client"}))])])))  # fmt: skip
    return store


def _worker(store: ClusterStore, recorder: Recorder) -> PodWorker:
    return PodWorker(
        store=store,
        node_name=NODE,
        options=CompileOptions(),
        resolver=ProcfsResolver(),
        queue=DirtyQueue(),
        observer=recorder,
        snapshots=SnapshotCache(store),
        open_socket=open_flaky,
    )


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "not-committed"])
async def test_an_unknown_outcome_is_settled_by_reading_the_table_back(
    sandbox: tuple[FakePodNetwork, str], committed: bool
) -> None:
    sb, uid = sandbox
    FlakySocket.armed, FlakySocket.commit = True, committed
    recorder = Recorder()
    worker = _worker(_store(sb, uid), recorder)

    assert await worker.work(KEY) == "retry"
    assert recorder.transactions == [("create", "unknown")]
    assert worker.states[KEY].check == "unknown-outcome"
    assert (table_text(sb.netns) is not None) == committed

    assert await worker.work(KEY) == "ok"
    # first visit: a pod first seen, read back (no table); then committed: the dump matches, no second transaction
    assert recorder.adoptions == [False, committed]
    assert recorder.transactions[1:] == ([] if committed else [("create", "ok")])
    assert table_text(sb.netns) is not None
    assert worker.states[KEY].check is None


async def test_a_rejected_transaction_leaves_the_previous_rules_intact(sandbox: tuple[FakePodNetwork, str]) -> None:
    sb, uid = sandbox
    FlakySocket.armed = False
    leftover = "table inet multi_networkpolicy {\nset ingress-net1-0.g1 {\ntype inet_service\nelements = { 7 }\n}\n}\n"
    subprocess.run(["ip", "netns", "exec", sb.netns, "nft", "-f", "-"], input=leftover, text=True, check=True)
    before = table_text(sb.netns)
    recorder = Recorder()
    worker = _worker(_store(sb, uid), recorder)
    worker.states[KEY] = PodState(uid, None)  # known to have no table (a belief the leftover contradicts)

    assert await worker.work(KEY) == "retry"
    assert recorder.transactions == [("create", "rejected")]
    assert table_text(sb.netns) == before  # nothing of the rejected batch was applied
    assert await worker.work(KEY) == "ok"  # the retry reads the table back and replaces its contents
    assert recorder.transactions[1:] == [("repair", "ok")]
    assert "ingress-net1-0.g1" not in (table_text(sb.netns) or "")
