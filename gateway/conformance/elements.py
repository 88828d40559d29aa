"""Find the ElementDefinition behind a property name, walking from a type into its data types.

Both the XML converter (is this element a list? a primitive? a resource?) and the snapshot generator need to answer
"what is ``name`` under ``path``" from StructureDefinition snapshots, descending into the data type's own
StructureDefinition when the snapshot does not list the children.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.conformance.loader import Definitions

PRIMITIVE_TYPES = frozenset(
    {
        "base64Binary",
        "boolean",
        "canonical",
        "code",
        "date",
        "dateTime",
        "decimal",
        "id",
        "instant",
        "integer",
        "markdown",
        "oid",
        "positiveInt",
        "string",
        "time",
        "unsignedInt",
        "uri",
        "url",
        "uuid",
        "xhtml",
    }
)
INTEGER_TYPES = frozenset({"integer", "positiveInt", "unsignedInt"})
RESOURCE_WRAPPERS = frozenset({"Resource", "DomainResource"})
SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."


def type_code(type_entry: dict[str, Any]) -> str:
    """The FHIR type of a ``type`` entry; the FHIRPath System types of ``id``/``url``/``value`` become ``string``."""
    code = str(type_entry.get("code", ""))
    if code.startswith(SYSTEM_PREFIX):
        return "string"
    return code


def capitalised(code: str) -> str:
    return code[:1].upper() + code[1:]


@dataclass(frozen=True, slots=True)
class ElementIndex:
    """The elements of one StructureDefinition snapshot, by path (slices left out)."""

    by_path: dict[str, dict[str, Any]]
    parents: frozenset[str]

    @classmethod
    def of(cls, structure: dict[str, Any]) -> ElementIndex:
        by_path: dict[str, dict[str, Any]] = {}
        parents: set[str] = set()
        for element in structure.get("snapshot", {}).get("element", []):
            if ":" in str(element.get("id", "")):
                continue
            path = element["path"]
            by_path.setdefault(path, element)
            if "." in path:
                parents.add(path.rsplit(".", 1)[0])
        return cls(by_path, frozenset(parents))


@dataclass(frozen=True, slots=True)
class Child:
    """What a property name resolves to: its definition, the concrete type and where its own children are."""

    name: str
    element: dict[str, Any]
    type: str
    is_list: bool
    #: (StructureDefinition url, path) where this child's children are defined; None for primitives.
    scope: tuple[str, str] | None

    @property
    def is_primitive(self) -> bool:
        return self.type in PRIMITIVE_TYPES

    @property
    def is_resource(self) -> bool:
        return self.type in RESOURCE_WRAPPERS


class Navigator:
    """Resolves property names against the base StructureDefinitions of a :class:`Definitions` registry."""

    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions
        self._indexes: dict[str, ElementIndex] = {}

    def index(self, url: str) -> ElementIndex:
        found = self._indexes.get(url)
        if found is None:
            structure = self.definitions.structure(url)
            if structure is None:
                raise KeyError(f"unknown StructureDefinition {url}")
            found = self._indexes[url] = ElementIndex.of(structure)
        return found

    def root_scope(self, type_name: str) -> tuple[str, str]:
        structure = self.definitions.type_structure(type_name)
        if structure is None:
            raise KeyError(f"unknown type {type_name}")
        return (str(structure["url"]), str(structure["type"]))

    def child(self, scope: tuple[str, str], name: str) -> Child | None:
        """Resolve ``name`` (e.g. ``valueQuantity``) under ``scope``; None when the type has no such element."""
        url, path = scope
        index = self.index(url)
        element = index.by_path.get(f"{path}.{name}")
        chosen: str | None = None
        if element is None:
            element, chosen = self._choice(index, path, name)
            if element is None:
                return None
        types = [type_code(t) for t in element.get("type", [])]
        concrete = chosen or (types[0] if types else "")
        is_list = str(element.get("max", "1")) != "1"
        element_path = str(element["path"])
        reference = element.get("contentReference")
        if reference:
            target = str(reference).split("#", 1)[1]
            return Child(name, element, "BackboneElement", is_list, (url, target))
        if element_path in index.parents:
            return Child(name, element, concrete, is_list, (url, element_path))
        if concrete in PRIMITIVE_TYPES or concrete in RESOURCE_WRAPPERS or not concrete:
            return Child(name, element, concrete, is_list, None)
        return Child(name, element, concrete, is_list, self.root_scope(concrete))

    @staticmethod
    def _choice(index: ElementIndex, path: str, name: str) -> tuple[dict[str, Any] | None, str | None]:
        for cut in range(len(name) - 1, 0, -1):
            element = index.by_path.get(f"{path}.{name[:cut]}[x]")
            if element is None:
                continue
            suffix = name[cut:]
            for entry in element.get("type", []):
                code = type_code(entry)
                if capitalised(code) == suffix:
                    return element, code
        return None, None
