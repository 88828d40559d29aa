"""Generate a StructureDefinition snapshot from its differential and its base's snapshot.

UK Core ships differentials only; the validator walks snapshots. The algorithm follows the FHIR rules closely
enough for the profiles we load:

- start from a copy of the base snapshot;
- each differential element is found by ``id`` (``Patient.identifier:nhsNumber.system``) and its constraints
  are merged onto it (``constraint`` is added to, everything else replaces);
- a slice that is not there yet is created by copying its sliced element and that element's children, inserted
  after the element's other slices;
- a child that is not there yet is created by unfolding the parent's data type (its StructureDefinition, or the
  extension's own profile when the parent is an extension slice with one) under the parent;
- a differential path naming a concrete choice (``valueQuantity``) constrains the ``value[x]`` element.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.conformance.elements import type_code
from gateway.conformance.loader import Definitions

Element = dict[str, Any]


class SnapshotError(ValueError):
    """The differential cannot be applied to its base (unknown base, element or type)."""


def _copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def split_id(element_id: str) -> list[str]:
    """Split an element id into segments, keeping slice names (``a:b``) with their element."""
    segments: list[str] = []
    current = ""
    depth = 0
    for char in element_id:
        if char == "." and depth == 0:
            segments.append(current)
            current = ""
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        current += char
    segments.append(current)
    return segments


def _element_id(element: Element) -> str:
    if "id" in element:
        return str(element["id"])
    path = str(element["path"])
    if element.get("sliceName"):
        return f"{path}:{element['sliceName']}"
    return path


class _Snapshot:
    def __init__(self, elements: list[Element], definitions: Definitions) -> None:
        self.elements = elements
        self.definitions = definitions

    def find(self, element_id: str) -> int | None:
        for index, element in enumerate(self.elements):
            if element.get("id") == element_id:
                return index
        return None

    def _subtree_end(self, index: int) -> int:
        """One past the last element inside the element at ``index`` (its children and its slices)."""
        root = str(self.elements[index]["id"])
        end = index + 1
        while end < len(self.elements):
            other = str(self.elements[end]["id"])
            if not (other.startswith(root + ".") or other.startswith(root + ":")):
                break
            end += 1
        return end

    def locate(self, element_id: str) -> int:
        found = self.find(element_id)
        if found is not None:
            return found
        segments = split_id(element_id)
        if len(segments) < 2:
            raise SnapshotError(f"no element {element_id} in the base")
        parent_id = ".".join(segments[:-1])
        last = segments[-1]
        if ":" in last:
            return self._make_slice(parent_id, last)
        parent = self.locate(parent_id)
        choice = self._choice_for(parent_id, last)
        if choice is not None:
            return choice
        self._unfold(parent)
        found = self.find(element_id)
        if found is None:
            choice = self._choice_for(parent_id, last)
            if choice is not None:
                return choice
            raise SnapshotError(f"no element {element_id}: {last} is not a child of {parent_id}")
        return found

    def _choice_for(self, parent_id: str, name: str) -> int | None:
        for cut in range(len(name) - 1, 0, -1):
            found = self.find(f"{parent_id}.{name[:cut]}[x]")
            if found is not None:
                return found
        return None

    def _make_slice(self, parent_id: str, last: str) -> int:
        name, slice_name = last.split(":", 1)
        sliced_id = f"{parent_id}.{name}" if parent_id else name
        sliced = self.locate(sliced_id)
        if name.endswith("[x]") and slice_name.startswith(name[:-3]):
            return sliced  # a type "slice" of a choice (value[x]:valueQuantity) constrains the choice itself
        end = self._subtree_end(sliced)
        copies = []
        new_id = f"{sliced_id}:{slice_name}"
        for element in self.elements[sliced:end]:
            element_id = str(element["id"])
            if element_id != sliced_id and not element_id.startswith(sliced_id + "."):
                continue
            copy = _copy(element)
            copy["id"] = new_id + element_id[len(sliced_id) :]
            copies.append(copy)
        copies[0]["sliceName"] = slice_name.split("/")[-1]
        copies[0].pop("slicing", None)
        self.elements[end:end] = copies
        return end

    def _unfold(self, index: int) -> None:
        """Insert the children of the element at ``index`` from its data type's StructureDefinition."""
        parent = self.elements[index]
        types = parent.get("type", [])
        if len(types) != 1:
            raise SnapshotError(f"cannot unfold {parent['id']}: it has {len(types)} types")
        profiles = types[0].get("profile", [])
        structure = self.definitions.structure(profiles[0]) if profiles else None
        if structure is None or "snapshot" not in structure:
            structure = self.definitions.type_structure(type_code(types[0]))
        if structure is None or "snapshot" not in structure:
            raise SnapshotError(f"cannot unfold {parent['id']}: no definition of {types[0].get('code')}")
        source = structure["snapshot"]["element"]
        root = str(source[0]["path"])
        children = []
        for element in source[1:]:
            copy = _copy(element)
            copy["path"] = str(parent["path"]) + str(element["path"])[len(root) :]
            copy["id"] = str(parent["id"]) + str(element.get("id", element["path"]))[len(root) :]
            children.append(copy)
        self.elements[index + 1 : index + 1] = children


def _merge(target: Element, diff: Element) -> None:
    for key, value in diff.items():
        if key in ("id", "path"):
            continue
        if key == "constraint":
            existing = {c.get("key") for c in target.get("constraint", [])}
            target["constraint"] = list(target.get("constraint", [])) + [
                c for c in value if c.get("key") not in existing
            ]
        else:
            if key.startswith(("fixed", "pattern")):
                for old in [k for k in target if k.startswith(("fixed", "pattern"))]:
                    del target[old]
            target[key] = _copy(value)


def generate_snapshot(structure: dict[str, Any], definitions: Definitions) -> dict[str, Any]:
    """A copy of ``structure`` with ``snapshot`` generated from its differential and base (recursively)."""
    base_url = structure.get("baseDefinition")
    if not base_url:
        raise SnapshotError(f"{structure.get('url')} has no baseDefinition")
    base = definitions.structure(base_url)
    if base is None:
        raise SnapshotError(f"{structure.get('url')}: unknown base {base_url}")
    if "snapshot" not in base:
        base = generate_snapshot(base, definitions)
        definitions.add(base)
    snapshot = _Snapshot(_copy(base["snapshot"]["element"]), definitions)
    for diff in structure.get("differential", {}).get("element", []):
        index = snapshot.locate(_element_id(diff))
        _merge(snapshot.elements[index], diff)
    out = dict(structure)
    out["snapshot"] = {"element": snapshot.elements}
    return out
