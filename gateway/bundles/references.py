"""References between the entries of a Bundle: placeholders (``urn:uuid:``, ``urn:oid:``) and their rewriting.

A transaction's entries refer to each other by the ``fullUrl`` of the entry they point at, usually a
``urn:uuid:``. Once the server has chosen ids, every ``reference`` that equals such a fullUrl becomes
``Type/id`` (FHIR R4 http.html#trules). The walk is one pass over each resource, in place, through extensions,
contained resources and every other element. A placeholder that names no entry is an error: storing it would
leave a reference to nothing.

Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PLACEHOLDER_PREFIXES = ("urn:uuid:", "urn:oid:")


def is_placeholder(value: str) -> bool:
    return value.startswith(PLACEHOLDER_PREFIXES)


def rewrite_references(node: Any, targets: Mapping[str, str]) -> bool:
    """Replace, in place, every ``reference`` below ``node`` that is a key of ``targets`` by its value.

    Returns True when a placeholder reference that ``targets`` does not know remains (the caller then asks
    :func:`dangling_references` where, which only the error path pays for).
    """
    dangling = False
    if isinstance(node, dict):
        ref = node.get("reference")
        if ref.__class__ is str:
            target = targets.get(ref)
            if target is not None:
                node["reference"] = target
            elif ref.startswith(PLACEHOLDER_PREFIXES):
                dangling = True
        for value in node.values():
            cls = value.__class__
            if (cls is dict or cls is list) and rewrite_references(value, targets):
                dangling = True
    elif isinstance(node, list):
        for item in node:
            cls = item.__class__
            if (cls is dict or cls is list) and rewrite_references(item, targets):
                dangling = True
    return dangling


def dangling_references(node: Any, path: str = "") -> list[tuple[str, str]]:
    """Every placeholder reference below ``node`` as (element path, reference), e.g. ``.subject.reference``."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}"
            if key == "reference" and isinstance(value, str):
                if is_placeholder(value):
                    found.append((here, value))
            elif isinstance(value, dict | list):
                found += dangling_references(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += dangling_references(item, f"{path}[{i}]")
    return found


def rewrite_criteria(params: list[tuple[str, str]], targets: Mapping[str, str]) -> list[str]:
    """Rewrite, in place, search values (or comma-separated parts of them) that are fullUrls of entries.

    Returns the placeholders left unresolved, e.g. ``Observation?subject=urn:uuid:...`` naming no entry.
    """
    unresolved: list[str] = []
    for i, (name, value) in enumerate(params):
        if "urn:" not in value:
            continue
        parts = value.split(",")
        for j, part in enumerate(parts):
            target = targets.get(part)
            if target is not None:
                parts[j] = target
            elif is_placeholder(part):
                unresolved.append(part)
        params[i] = (name, ",".join(parts))
    return unresolved
