"""Find a pod's network namespace through the container runtime (CRI over its unix socket: containerd, CRI-O).

The pod's *sandbox* is asked first (the Go peer asks its first container, which fails while that container
restarts): ``ListPodSandbox`` filtered by the pod UID label and state READY (the newest if several), then
``PodSandboxStatus(verbose)``, whose ``info["info"]`` JSON carries the runtime spec's network namespace path
(containerd and CRI-O: ``runtimeSpec.linux.namespaces[type=network].path``) and the sandbox ``pid``. When neither
is usable, a *running* container of the sandbox is asked (``ContainerStatus(verbose)`` ``pid``). Paths are read
under ``--host-prefix``. A sandbox in the node's namespace (``NamespaceMode.NODE``) is refused, like every
candidate equal to the daemon's own namespace, and the interfaces must exist (``netns.check_netns``).

gRPC comes from the optional extra ``trinet[cri]`` (grpcio). The few CRI messages needed are encoded by hand
(protobuf wire format, field numbers of ``k8s.io/cri-api`` ``runtime/v1/api.proto``), so no generated code or
protobuf runtime is needed. Calls block: run ``resolve`` in a worker thread.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from trinet.daemon.netns import NetnsError, PodNetns, _ident, check_netns
from trinet.daemon.settings import cri_socket_path

__all__ = ["CriResolver", "decode", "encode"]

_SERVICE = "/runtime.v1.RuntimeService/"
_SANDBOX_READY = 0
_CONTAINER_RUNNING = 1
_NAMESPACE_MODE_NODE = 2
_UID_LABEL = "io.kubernetes.pod.uid"

Fields = dict[int, list[Any]]


# -- protobuf wire format (just what CRI needs: varints and length-delimited fields) ---------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode(*fields: tuple[int, int | bool | str | bytes]) -> bytes:
    """A message from (field number, value) pairs: ints/bools as varints, str/bytes length-delimited."""
    out = bytearray()
    for number, value in fields:
        if isinstance(value, bool | int):
            out += _varint(number << 3) + _varint(int(value))
        else:
            data = value.encode() if isinstance(value, str) else value
            out += _varint(number << 3 | 2) + _varint(len(data)) + data
    return bytes(out)


def decode(data: bytes) -> Fields:
    """Field number -> values in order (ints for varints, bytes for length-delimited; fixed fields skipped)."""
    fields: Fields = {}
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            if pos >= len(data):
                raise ValueError("truncated protobuf varint")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value = varint()
        elif wire == 2:
            length = varint()
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = None, pos + 8
        elif wire == 5:
            value, pos = None, pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if value is not None:
            fields.setdefault(number, []).append(value)
    return fields


def _first(fields: Fields, number: int, default: Any = None) -> Any:
    values = fields.get(number)
    return values[0] if values else default


def _map(fields: Fields, number: int) -> dict[str, str]:
    out = {}
    for entry in fields.get(number, []):
        kv = decode(entry)
        out[_first(kv, 1, b"").decode()] = _first(kv, 2, b"").decode()
    return out


def _label(key: str, value: str) -> bytes:
    return encode((1, key), (2, value))


# -- the resolver ------------------------------------------------------------------------------------------------


class CriResolver:
    """Pod UID -> network namespace, asking the runtime at ``<host_prefix><endpoint>``."""

    def __init__(self, endpoint: str, host_prefix: str = "", *, timeout: float = 5.0) -> None:
        import grpc  # noqa: PLC0415 (optional extra)

        self.socket = str(cri_socket_path(endpoint, host_prefix))
        self.host_prefix = host_prefix
        self.timeout = timeout
        self._grpc = grpc
        self._channel = grpc.insecure_channel(f"unix://{self.socket}")
        self._lock = threading.Lock()
        self._cache: dict[str, PodNetns] = {}
        self._calls: dict[str, Callable[..., bytes]] = {}

    def close(self) -> None:
        self._channel.close()

    def forget(self, uid: str) -> None:
        with self._lock:
            self._cache.pop(uid, None)

    def cached(self, uid: str, interfaces: Iterable[str] = ()) -> PodNetns | None:
        with self._lock:
            found = self._cache.get(uid)
        if found is not None and found.interfaces.issuperset(interfaces) and _ident(found.path) == found.ident:
            return found
        return None

    def _call(self, method: str, request: bytes) -> Fields:
        call = self._calls.get(method)
        if call is None:
            call = self._channel.unary_unary(
                _SERVICE + method, request_serializer=lambda b: b, response_deserializer=lambda b: b
            )
            self._calls[method] = call
        try:
            return decode(call(request, timeout=self.timeout))
        except self._grpc.RpcError as exc:
            raise NetnsError("cri", f"CRI {method} at {self.socket}: {exc.code().name}: {exc.details()}") from exc

    def _host_path(self, path: str) -> str:
        return str(Path(self.host_prefix or "/") / path.lstrip("/")) if self.host_prefix else path

    def resolve(self, uid: str, interfaces: Iterable[str] = ()) -> PodNetns:
        names = tuple(interfaces)
        with self._lock:
            cached = self._cache.get(uid)
        if cached is not None and _ident(cached.path) == cached.ident:
            if cached.interfaces.issuperset(names):
                return cached
            try:
                found = check_netns(uid, cached.path, cached.pid, names)
            except NetnsError:
                self.forget(uid)
            else:
                with self._lock:
                    self._cache[uid] = found
                return found
        found = self._lookup(uid, names)
        with self._lock:
            self._cache[uid] = found
        return found

    def _lookup(self, uid: str, names: tuple[str, ...]) -> PodNetns:
        selector = encode((2, encode((1, _SANDBOX_READY))), (3, _label(_UID_LABEL, uid)))
        items = [decode(item) for item in self._call("ListPodSandbox", encode((1, selector))).get(1, [])]
        if not items:
            raise NetnsError("no-sandbox", f"the runtime has no ready sandbox for pod {uid}")
        sandbox = max(items, key=lambda s: _first(s, 4, 0))  # the newest
        sandbox_id = _first(sandbox, 1, b"").decode()
        status_reply = self._call("PodSandboxStatus", encode((1, sandbox_id), (2, True)))
        status = decode(_first(status_reply, 1, b""))
        linux = decode(_first(status, 6, b""))
        options = decode(_first(decode(_first(linux, 1, b"")), 2, b""))
        if _first(options, 1, 0) == _NAMESPACE_MODE_NODE:
            raise NetnsError("own-netns", f"sandbox {sandbox_id} of pod {uid} uses the node's network namespace")
        problems: list[str] = []
        for path, pid in self._candidates(_map(status_reply, 2).get("info", "")):
            try:
                return check_netns(uid, path, pid, names)
            except NetnsError as exc:
                problems.append(str(exc))
        for pid in self._running_container_pids(sandbox_id):
            try:
                return check_netns(uid, self._host_path(f"/proc/{pid}/ns/net"), pid, names)
            except NetnsError as exc:
                problems.append(str(exc))
        detail = "; ".join(problems) or "no namespace path or pid in the sandbox's or its containers' status"
        raise NetnsError("cri-no-netns", f"pod {uid} (sandbox {sandbox_id}): {detail}")

    def _candidates(self, info_text: str) -> list[tuple[str, int]]:
        """Namespace paths from a verbose info JSON: the runtime spec's network namespace, then the pid's."""
        try:
            info = json.loads(info_text) if info_text else {}
        except json.JSONDecodeError:
            return []
        raw_pid = info.get("pid") if isinstance(info, dict) else None
        pid = raw_pid if isinstance(raw_pid, int) else 0
        out = []
        spec = (info.get("runtimeSpec") if isinstance(info, dict) else None) or {}
        for ns in ((spec.get("linux") or {}).get("namespaces") or []) if isinstance(spec, dict) else []:
            if isinstance(ns, dict) and ns.get("type") == "network" and ns.get("path"):
                out.append((self._host_path(str(ns["path"])), pid))
        if pid > 0:
            out.append((self._host_path(f"/proc/{pid}/ns/net"), pid))
        return out

    def _running_container_pids(self, sandbox_id: str) -> list[int]:
        flt = encode((2, encode((1, _CONTAINER_RUNNING))), (3, sandbox_id))
        pids = []
        for item in self._call("ListContainers", encode((1, flt))).get(1, []):
            container_id = _first(decode(item), 1, b"").decode()
            reply = self._call("ContainerStatus", encode((1, container_id), (2, True)))
            for _, pid in self._candidates(_map(reply, 2).get("info", "")):
                pids.append(pid)
        return [p for p in dict.fromkeys(pids) if p > 0]
