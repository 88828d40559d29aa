"""Conformance resources the validator knows: StructureDefinitions, ValueSets and CodeSystems, by canonical URL.

They come from the committed JSON under ``profiles/`` (built by ``scripts/build-profiles``):

- ``profiles/base/``: the subset of the FHIR R4 core package (hl7.fhir.r4.core 4.0.1, CC0) the gateway needs:
  the served resource types, every data type, the core extensions and the terminology bound ``required``;
- ``profiles/ukcore/``: UK Core R4 (HL7 UK, Apache-2.0), converted from XML with generated snapshots;
- ``profiles/keyworking/``: our own profiles, extensions, CodeSystems, ValueSets and SearchParameters.

Loading reads JSON only (no XML, no snapshot generation), once per process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson

CORE_BASE = "http://hl7.org/fhir/StructureDefinition/"

Resource = dict[str, Any]


def canonical(url: str) -> str:
    """A canonical reference without its ``|version`` suffix."""
    return url.split("|", 1)[0]


@dataclass
class Definitions:
    """An in-memory registry of conformance resources, keyed by canonical URL."""

    structures: dict[str, Resource] = field(default_factory=dict)
    value_sets: dict[str, Resource] = field(default_factory=dict)
    code_systems: dict[str, Resource] = field(default_factory=dict)
    search_parameters: dict[str, Resource] = field(default_factory=dict)

    def add(self, resource: Resource) -> None:
        """Register one resource (a Bundle registers its entries); other types are ignored."""
        kind = resource.get("resourceType")
        if kind == "Bundle":
            for entry in resource.get("entry", []):
                if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                    self.add(entry["resource"])
            return
        url = resource.get("url")
        if not isinstance(url, str):
            return
        target = {
            "StructureDefinition": self.structures,
            "ValueSet": self.value_sets,
            "CodeSystem": self.code_systems,
            "SearchParameter": self.search_parameters,
        }.get(str(kind))
        if target is not None:
            target[canonical(url)] = resource

    def add_all(self, resources: Iterable[Resource]) -> None:
        for resource in resources:
            self.add(resource)

    def structure(self, url: str) -> Resource | None:
        return self.structures.get(canonical(url))

    def type_structure(self, type_code: str) -> Resource | None:
        """The base StructureDefinition of a FHIR type (``Identifier``, ``Patient``, ``string``)."""
        if type_code.startswith("http://"):
            return self.structures.get(type_code)
        return self.structures.get(CORE_BASE + type_code)

    def copy(self) -> Definitions:
        """A shallow copy: add case-specific resources without touching the shared registry."""
        return Definitions(
            dict(self.structures), dict(self.value_sets), dict(self.code_systems), dict(self.search_parameters)
        )


def profiles_dir() -> Path:
    """Where the committed conformance JSON lives: ``KWG_PROFILES_DIR``, the source tree, or ``./profiles``."""
    configured = os.environ.get("KWG_PROFILES_DIR")
    if configured:
        return Path(configured)
    in_tree = Path(__file__).resolve().parents[2] / "profiles"
    if in_tree.is_dir():
        return in_tree
    return Path.cwd() / "profiles"


def read_json_files(folder: Path) -> Iterator[Resource]:
    for path in sorted(folder.glob("*.json")):
        data = orjson.loads(path.read_bytes())
        if isinstance(data, dict):
            yield data


def load_definitions(root: Path, folders: Iterable[str] = ("base", "ukcore", "keyworking")) -> Definitions:
    definitions = Definitions()
    for name in folders:
        folder = root / name
        if folder.is_dir():
            definitions.add_all(read_json_files(folder))
    return definitions


@cache
def default_definitions() -> Definitions:
    """The process-wide registry (read once, then shared; treat it as read-only)."""
    return load_definitions(profiles_dir())
