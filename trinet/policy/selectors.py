"""Label selectors: validation with precise messages, and a fast compiled matcher (semantics.md §2.1.2).

A selector is compiled once per policy into a ``Selector``; matching a label dict is then a few dict lookups.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

from trinet.objects import LabelSelector

__all__ = ["Requirement", "Selector", "compile_selector", "label_key_problem", "label_value_problem"]

_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label key (``[prefix/]name``), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return f"label key {key!r}: prefix must be a DNS subdomain of at most 253 characters"
    if not name or len(name) > 63 or not _NAME.match(name):
        return f"label key {key!r}: name must be 1-63 alphanumerics, '-', '_' or '.', alphanumeric at both ends"
    return None


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value (empty, or a name of at most 63 characters), or None."""
    if value == "" or (len(value) <= 63 and _NAME.match(value)):
        return None
    return f"label value {value!r}: must be empty or 1-63 alphanumerics, '-', '_' or '.', alphanumeric at both ends"


class Requirement(msgspec.Struct, frozen=True):
    key: str
    operator: str
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator == "In":
            return value is not None and value in self.values
        if self.operator == "NotIn":
            return value is None or value not in self.values
        if self.operator == "Exists":
            return value is not None
        return value is None  # DoesNotExist


class Selector(msgspec.Struct, frozen=True):
    """A valid selector: all ``labels`` equal and every requirement holds. Empty = matches everything."""

    labels: tuple[tuple[str, str], ...] = ()
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.labels:
            if labels.get(key) != value:
                return False
        for requirement in self.requirements:  # noqa: SIM110 (a loop, not all(): no generator per pod and peer)
            if not requirement.matches(labels):
                return False
        return True


def compile_selector(selector: LabelSelector, path: str) -> tuple[Selector | None, list[str]]:
    """Validate and compile; on any error return ``(None, errors)`` — the caller decides how to fail closed."""
    errors: list[str] = []
    labels: list[tuple[str, str]] = []
    for key, value in sorted((selector.match_labels or {}).items()):
        for problem in (label_key_problem(key), label_value_problem(value)):
            if problem:
                errors.append(f"{path}.matchLabels: {problem}")
        labels.append((key, value))
    requirements: list[Requirement] = []
    for i, expr in enumerate(selector.match_expressions or ()):
        where = f"{path}.matchExpressions[{i}]"
        values = expr.values or []
        if problem := label_key_problem(expr.key):
            errors.append(f"{where}.key: {problem}")
        if expr.operator not in _OPERATORS:
            errors.append(f"{where}.operator: {expr.operator!r} is not one of In, NotIn, Exists, DoesNotExist")
        elif expr.operator in ("In", "NotIn") and not values:
            errors.append(f"{where}.values: must be non-empty when operator is {expr.operator}")
        elif expr.operator in ("Exists", "DoesNotExist") and values:
            errors.append(f"{where}.values: must be empty when operator is {expr.operator}")
        for j, value in enumerate(values):
            if problem := label_value_problem(value):
                errors.append(f"{where}.values[{j}]: {problem}")
        requirements.append(Requirement(expr.key, expr.operator, frozenset(values)))
    if errors:
        return None, errors
    return Selector(tuple(labels), tuple(requirements)), []
