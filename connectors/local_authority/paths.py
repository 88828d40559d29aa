"""A small path language for picking one value out of a FHIR resource (the field mappings of the LA connectors).

Grammar (documented in docs/connectors/local-authority.md)::

    path     := Type ( "." step )+
    step     := name ( "[" n "]" | ".where(system='" text "')" )*

- ``Type`` is the resource type the path applies to: a path for ``Patient`` gives nothing on a ``Task``.
- ``name`` follows an element; a list is searched item by item (the first match wins).
- ``[n]`` keeps the n-th item (from 0) of a list.
- ``where(system='...')`` keeps the items whose ``system`` is that text (identifiers, codings, telecoms).

It is deliberately not FHIRPath: three constructs cover the mappings partners ask for, and a path that a
configuration reviewer cannot read at a glance is a data-protection risk. Parsing happens once, when the
configuration is validated; evaluation is a pure walk over dicts and lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TYPE = re.compile(r"[A-Z][A-Za-z]+")
_NAME = re.compile(r"[a-z][A-Za-z0-9]*")
_INDEX = re.compile(r"\[(\d+)\]")
_WHERE = re.compile(r"\.where\(system='([^']*)'\)")

#: What a path may give: a JSON scalar (a list or an object is not a field value).
Scalar = str | int | float | bool


class PathError(ValueError):
    """A path the language cannot read; the message says where."""


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    index: int | None = None
    system: str | None = None


@dataclass(frozen=True, slots=True)
class ElementPath:
    """A parsed path: the resource type it applies to and the steps from the resource down."""

    text: str
    resource_type: str
    steps: tuple[Step, ...]

    def value(self, resource: dict[str, Any] | None) -> Scalar | None:
        """The first scalar the path reaches in ``resource``, or None (other type, absent element, not a scalar)."""
        if resource is None or resource.get("resourceType") != self.resource_type:
            return None
        found = _walk([resource], self.steps)
        for item in found:
            if isinstance(item, str | int | float | bool):
                return item
        return None


def parse_path(text: str) -> ElementPath:
    """Parse a path; PathError names the position of the first thing it cannot read."""
    match = _TYPE.match(text)
    if match is None:
        raise PathError(f"{text!r}: a path starts with a resource type, e.g. 'Patient'")
    resource_type, pos = match.group(0), match.end()
    steps: list[Step] = []
    while pos < len(text):
        if text[pos] != "." or _WHERE.match(text, pos):
            raise PathError(f"{text!r}: expected '.element' at position {pos}")
        name_match = _NAME.match(text, pos + 1)
        if name_match is None:
            raise PathError(f"{text!r}: expected an element name at position {pos + 1}")
        name, pos = name_match.group(0), name_match.end()
        index: int | None = None
        system: str | None = None
        while pos < len(text):
            if (m := _INDEX.match(text, pos)) is not None and index is None:
                index, pos = int(m.group(1)), m.end()
            elif (w := _WHERE.match(text, pos)) is not None and system is None:
                system, pos = w.group(1), w.end()
            else:
                break
        steps.append(Step(name, index, system))
    if not steps:
        raise PathError(f"{text!r}: a path names at least one element after the resource type")
    return ElementPath(text, resource_type, tuple(steps))


def _walk(current: list[Any], steps: tuple[Step, ...]) -> list[Any]:
    for step in steps:
        following: list[Any] = []
        for node in current:
            if not isinstance(node, dict) or step.name not in node:
                continue
            child = node[step.name]
            items = child if isinstance(child, list) else [child]
            if step.system is not None:
                items = [i for i in items if isinstance(i, dict) and i.get("system") == step.system]
            if step.index is not None:
                items = items[step.index : step.index + 1]
            following.extend(items)
        current = following
    return current
