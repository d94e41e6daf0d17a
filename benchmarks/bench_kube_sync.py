"""trinet.kube against the official `kubernetes` client on a real kube-apiserver holding 10,000 pods.

Usage (repository root): ``.venv/bin/python -m benchmarks.bench_kube_sync [--pods N]``
(the official client is the optional extra ``bench``: ``.venv/bin/pip install -e '.[bench]'``)

Starts a private control plane (e2e.controlplane), creates N pods in 20 namespaces with realistic labels and two
network annotations each (the Multus request and its network-status), then measures, each client in a fresh child
process of its own so that RSS is the whole process holding the objects:

* initial sync: trinet's reflector until synced (paginated LIST, 500 per page; and the WatchList stream) versus
  the official client's plain ``list_pod_for_all_namespaces()`` into its models;
* peak RSS (ru_maxrss) and RSS after the sync with every pod held;

and, in this process on one core, over the real bytes of a watch stream of N ADDED events captured from the
server: watch events decoded per second (trinet's msgspec decoder versus the official client's
``Watch.unmarshal_event``), and trinet's decode + store update per second.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from e2e.controlplane import ControlPlane, Credentials, build_binaries  # noqa: E402
from e2e.controlplane.runner import tls_context  # noqa: E402

NAMESPACES = 20


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pod(i: int) -> dict[str, Any]:
    app = f"svc-{i % 150}"
    ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    net_ip = f"192.168.{(i >> 8) & 255}.{i & 255}"
    status = [
        {"name": "cluster-net", "interface": "eth0", "ips": [ip], "mac": "0a:58:0a:00:00:01", "default": True},
        {"name": f"ns-{i % NAMESPACES}/macvlan-a", "interface": "net1", "ips": [net_ip], "mac": "ee:2a:4f:00:00:01"},
    ]
    return {
        "metadata": {
            "name": f"{app}-{i:06d}-x7k2p",
            "labels": {
                "app.kubernetes.io/name": app,
                "app.kubernetes.io/instance": f"{app}-prod",
                "app.kubernetes.io/component": ["web", "api", "worker", "db"][i % 4],
                "pod-template-hash": f"{i * 2654435761 % 2**32:08x}"[:10],
                "tier": ["frontend", "backend"][i % 2],
                "version": f"v{i % 7}.{i % 3}",
            },
            "annotations": {
                "k8s.v1.cni.cncf.io/networks": "macvlan-a",
                "k8s.v1.cni.cncf.io/network-status": json.dumps(status),
            },
        },
        "spec": {
            "nodeName": f"node-{i % 50:02d}",
            "containers": [
                {
                    "name": "app",
                    "image": f"registry.example.com/{app}:1.{i % 9}",
                    "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                }
            ],
        },
    }


async def create_pods(creds: Credentials, n: int) -> None:
    async with httpx.AsyncClient(
        base_url=creds.url,
        verify=tls_context(creds.ca_file),
        headers={"Authorization": f"Bearer {creds.admin_token}"},
        timeout=60,
        limits=httpx.Limits(max_connections=32),
    ) as admin:
        for ns in range(NAMESPACES):
            r = await admin.post("/api/v1/namespaces", json={"metadata": {"name": f"ns-{ns}"}})
            r.raise_for_status()
        limiter = trio.CapacityLimiter(32)

        async def one(i: int) -> None:
            async with limiter:
                r = await admin.post(f"/api/v1/namespaces/ns-{i % NAMESPACES}/pods", json=pod(i))
                r.raise_for_status()

        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(one, i)


async def capture_watch(creds: Credentials, n: int) -> list[bytes]:
    """The raw lines of a real watch stream: N synthetic ADDED events (resourceVersion=0)."""
    lines: list[bytes] = []
    async with (
        httpx.AsyncClient(
            base_url=creds.url,
            verify=tls_context(creds.ca_file),
            headers={"Authorization": f"Bearer {creds.admin_token}"},
            timeout=60,
        ) as client,
        client.stream("GET", "/api/v1/pods", params={"watch": "1", "resourceVersion": "0"}) as response,
    ):
        buf = b""
        async for chunk in response.aiter_bytes():
            buf += chunk
            *done, buf = buf.split(b"\n")
            lines.extend(line for line in done if line)
            if len(lines) >= n:
                break
    return lines[:n]


# -- children: one client each, in a fresh process ------------------------------------------------------------


def child_trinet(url: str, ca: str, token: str, n: int, watch_list: bool) -> dict[str, float]:
    from trinet.kube import PODS, ApiClient, Change, ClusterStore, KubeConfig, Reflector, ReflectorOptions  # noqa: PLC0415

    store = ClusterStore()

    async def main() -> float:
        send, receive = trio.open_memory_channel[Change[Any]](1000)
        received = 0

        async def consume() -> None:  # a daemon consumes the changes; this one only counts them
            nonlocal received
            async for _ in receive:
                received += 1

        async with ApiClient(KubeConfig(server=url, ca_file=ca, token=token)) as api, trio.open_nursery() as nursery:
            reflector = Reflector(PODS, api, store, send, options=ReflectorOptions(watch_list=watch_list))
            nursery.start_soon(consume)
            start = time.perf_counter()
            nursery.start_soon(reflector.run)
            await reflector.synced.wait()
            elapsed = time.perf_counter() - start
            while received < n:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        return elapsed

    elapsed = trio.run(main)
    assert len(store.pods) == n, len(store.pods)
    gc.collect()
    return {"seconds": elapsed, "rss": rss_mb(), "peak": peak_rss_mb()}


def child_official(url: str, ca: str, token: str, n: int) -> dict[str, float]:
    import kubernetes  # noqa: PLC0415

    conf = kubernetes.client.Configuration(host=url, api_key={"authorization": f"Bearer {token}"})
    conf.ssl_ca_cert = ca
    api = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(conf))
    start = time.perf_counter()
    pods = api.list_pod_for_all_namespaces()
    elapsed = time.perf_counter() - start
    assert len(pods.items) == n, len(pods.items)
    gc.collect()
    return {"seconds": elapsed, "rss": rss_mb(), "peak": peak_rss_mb()}


def run_child(kind: str, creds: Credentials, n: int) -> dict[str, float]:
    argv = [sys.executable, "-m", "benchmarks.bench_kube_sync", "--child", kind, "--pods", str(n)]
    argv += ["--url", creds.url, "--ca", str(creds.ca_file), "--token", creds.admin_token]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {kind} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- in-process decode throughput ------------------------------------------------------------------------------


def best_rate(fn: Any, count: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return count / best


def decode_rates(lines: list[bytes]) -> dict[str, float]:
    import kubernetes  # noqa: PLC0415

    from trinet.kube import PODS  # noqa: PLC0415
    from trinet.kube.store import PodStore  # noqa: PLC0415

    def trinet_decode() -> None:
        for line in lines:
            PODS.decode_event(line)

    def trinet_apply() -> None:
        store = PodStore()
        for line in lines:
            _, obj, _ = PODS.decode_event(line)
            assert obj is not None
            store.upsert(obj)

    watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
    texts = [line.decode() for line in lines]

    def official_decode() -> None:
        for text in texts:
            watch.unmarshal_event(text, "V1Pod")  # type: ignore[no-untyped-call]

    return {
        "trinet": best_rate(trinet_decode, len(lines)),
        "trinet+store": best_rate(trinet_apply, len(lines)),
        "official": best_rate(official_decode, len(texts), repeats=1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--child", choices=["trinet-list", "trinet-watchlist", "official"])
    parser.add_argument("--url")
    parser.add_argument("--ca")
    parser.add_argument("--token")
    args = parser.parse_args()
    if args.child:
        if args.child == "official":
            result = child_official(args.url, args.ca, args.token, args.pods)
        else:
            result = child_trinet(args.url, args.ca, args.token, args.pods, args.child == "trinet-watchlist")
        print(json.dumps(result))
        return

    print(f"starting a control plane and creating {args.pods} pods ...", file=sys.stderr)
    with ControlPlane(build_binaries(progress=sys.stderr)) as plane:
        creds = plane.credentials
        assert creds is not None
        start = time.perf_counter()
        trio.run(create_pods, creds, args.pods)
        print(f"created in {time.perf_counter() - start:.1f}s", file=sys.stderr)
        results = {kind: run_child(kind, creds, args.pods) for kind in ("official", "trinet-list", "trinet-watchlist")}
        lines = trio.run(capture_watch, creds, args.pods)
    size = sum(map(len, lines)) / len(lines)
    rates = decode_rates(lines)

    official = results["official"]
    print(f"\n{args.pods} pods, {size:.0f} bytes per watch event, kube-apiserver v1.36 on 127.0.0.1 (TLS)\n")
    print(f"{'measurement':<44}{'trinet':>12}{'kubernetes':>12}{'ratio':>8}")
    print("-" * 76)
    for label, kind in (
        ("initial sync, paginated LIST (s)", "trinet-list"),
        ("initial sync, WatchList (s)", "trinet-watchlist"),
    ):
        r = results[kind]
        print(
            f"{label:<44}{r['seconds']:>12.2f}{official['seconds']:>12.2f}{official['seconds'] / r['seconds']:>7.1f}x"
        )
    for label, key in (("peak RSS of the process (MB)", "peak"), ("RSS holding every pod (MB)", "rss")):
        r = results["trinet-list"]
        print(f"{label:<44}{r[key]:>12.0f}{official[key]:>12.0f}{official[key] / r[key]:>7.1f}x")
    r = results["trinet-watchlist"]
    print(f"{'  (WatchList child: peak / holding, MB)':<44}{r['peak']:>6.0f} /{r['rss']:>4.0f}")
    print(f"{'watch events decoded per second (1 core)':<44}{rates['trinet']:>12,.0f}{rates['official']:>12,.0f}"
          f"{rates['trinet'] / rates['official']:>7.1f}x")  # fmt: skip
    print(f"{'  decoded + applied to the store per second':<44}{rates['trinet+store']:>12,.0f}")
    print("\ngoals: sync faster than the official client; >= 20,000 events/s; RSS <= 100 MB holding 10,000 pods")


if __name__ == "__main__":
    main()
