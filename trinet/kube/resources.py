"""The four API resources trinet watches: where they live and how their list and watch payloads decode.

Decoding goes straight from the response bytes into the msgspec types of `trinet.objects`. A whole list (or
watch event) is first decoded in one typed pass; only when that fails is it decoded item by item, so that one
malformed object is reported and skipped instead of losing the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec

from trinet.logs import event
from trinet.objects import MultiNetworkPolicy, Namespace, NetworkAttachmentDefinition, ObjectMeta, Pod

__all__ = [
    "NADS",
    "NAMESPACES",
    "PODS",
    "POLICIES",
    "RESOURCES",
    "ListMeta",
    "Resource",
    "key_of",
    "resource_for",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class ListMeta(msgspec.Struct, rename="camel"):
    resource_version: str = ""
    continue_: str = msgspec.field(default="", name="continue")
    remaining_item_count: int | None = None


class TypedList(msgspec.Struct, Generic[T]):
    metadata: ListMeta = msgspec.field(default_factory=ListMeta)
    items: list[T] | None = None


class RawList(msgspec.Struct):
    metadata: ListMeta = msgspec.field(default_factory=ListMeta)
    items: list[msgspec.Raw] | None = None


class TypedEvent(msgspec.Struct, Generic[T]):
    type: str
    object: T


class RawEvent(msgspec.Struct):
    type: str
    object: msgspec.Raw


class _MetaOnly(msgspec.Struct):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)


_meta_decoder = msgspec.json.Decoder(_MetaOnly)
_raw_list_decoder = msgspec.json.Decoder(RawList)
_raw_event_decoder = msgspec.json.Decoder(RawEvent)


def key_of(meta: ObjectMeta) -> str:
    """The store key: "namespace/name" for namespaced objects, "name" otherwise."""
    return f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name


def describe_raw(raw: bytes) -> str:
    """A best-effort name of a malformed object, for the log line that reports it."""
    try:
        return key_of(_meta_decoder.decode(raw).metadata) or "(no name)"
    except msgspec.DecodeError:
        return "(undecodable)"


@dataclass(frozen=True, eq=False)
class Resource(Generic[T]):
    """One API resource: its URL, the Python type of its objects, and decoders for its list and watch bytes."""

    name: str
    """The ClusterStore attribute and the `Change.resource` value ("pods", "namespaces", "policies", "nads")."""
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    type: type[T]
    _list: msgspec.json.Decoder[Any] = field(init=False, repr=False)
    _event: msgspec.json.Decoder[Any] = field(init=False, repr=False)
    _object: msgspec.json.Decoder[Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_list", msgspec.json.Decoder(TypedList[self.type]))  # type: ignore[name-defined]
        object.__setattr__(self, "_event", msgspec.json.Decoder(TypedEvent[self.type]))  # type: ignore[name-defined]
        object.__setattr__(self, "_object", msgspec.json.Decoder(self.type))

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection_path(self, namespace: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace is not None and self.namespaced:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def decode_list(self, body: bytes) -> tuple[ListMeta, list[T]]:
        """A LIST page: its metadata and its well-formed items (malformed ones are logged and skipped)."""
        try:
            typed: TypedList[T] = self._list.decode(body)
        except msgspec.ValidationError:
            raw = _raw_list_decoder.decode(body)  # framing errors (not JSON at all) propagate
            return raw.metadata, list(self._decode_items(raw.items or []))
        return typed.metadata, typed.items or []

    def _decode_items(self, items: list[msgspec.Raw]) -> Iterator[T]:
        for item in items:
            obj = self.decode_object(bytes(item))
            if obj is not None:
                yield obj

    def decode_object(self, raw: bytes) -> T | None:
        try:
            obj: T = self._object.decode(raw)
        except msgspec.DecodeError as exc:
            event(log, logging.WARNING, "object-malformed", kind=self.kind, object=describe_raw(raw), error=str(exc),
                  action="skipped")  # fmt: skip
            return None
        return obj

    def decode_event(self, line: bytes) -> tuple[str, T | None, bytes | None]:
        """(type, object or None if malformed, raw object bytes when the typed pass failed or type is ERROR)."""
        try:
            event: TypedEvent[T] = self._event.decode(line)
            if event.type != "ERROR":
                return event.type, event.object, None
        except msgspec.ValidationError:
            pass
        raw = _raw_event_decoder.decode(line)
        data = bytes(raw.object)
        if raw.type == "ERROR":
            return raw.type, None, data
        if raw.type == "BOOKMARK":  # only metadata is meaningful (pods come with "containers": null)
            return raw.type, _meta_decoder.decode(data), data  # type: ignore[return-value]
        return raw.type, self.decode_object(data), data


PODS: Resource[Pod] = Resource("pods", "", "v1", "pods", "Pod", True, Pod)
NAMESPACES: Resource[Namespace] = Resource("namespaces", "", "v1", "namespaces", "Namespace", False, Namespace)
POLICIES: Resource[MultiNetworkPolicy] = Resource(
    "policies", "k8s.cni.cncf.io", "v1beta1", "multi-networkpolicies", "MultiNetworkPolicy", True, MultiNetworkPolicy
)
NADS: Resource[NetworkAttachmentDefinition] = Resource(
    "nads",
    "k8s.cni.cncf.io",
    "v1",
    "network-attachment-definitions",
    "NetworkAttachmentDefinition",
    True,
    NetworkAttachmentDefinition,
)
RESOURCES: tuple[Resource[Any], ...] = (PODS, NAMESPACES, POLICIES, NADS)


def resource_for(obj: object) -> Resource[Any]:
    """The descriptor of an object of trinet.objects (for Event references)."""
    for resource in RESOURCES:
        if isinstance(obj, resource.type):
            return resource
    raise TypeError(f"no API resource is known for {type(obj).__name__}")
