"""Local terminology: expand ValueSets from the CodeSystems we hold, to check ``required`` bindings.

No terminology server is consulted. A ValueSet that includes a code system we do not hold (SNOMED CT, LOINC) or
uses a filter cannot be expanded here; bindings to it are not checked (``expand`` answers None).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.conformance.loader import Definitions, canonical

Code = tuple[str, str]


def _flatten(concepts: list[dict[str, Any]]) -> Iterator[str]:
    for concept in concepts:
        if "code" in concept:
            yield str(concept["code"])
        yield from _flatten(concept.get("concept", []))


class Terminology:
    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions
        self._systems: dict[str, frozenset[str] | None] = {}
        self._value_sets: dict[str, frozenset[Code] | None] = {}

    def system_codes(self, system: str) -> frozenset[str] | None:
        """Every code of a complete CodeSystem we hold; None when we do not hold all of it."""
        if system not in self._systems:
            code_system = self.definitions.code_systems.get(system)
            codes: frozenset[str] | None = None
            if code_system is not None and code_system.get("content", "complete") == "complete":
                codes = frozenset(_flatten(code_system.get("concept", [])))
            self._systems[system] = codes
        return self._systems[system]

    def expand(self, url: str) -> frozenset[Code] | None:
        """The (system, code) pairs of a ValueSet, or None when it cannot be expanded locally."""
        key = canonical(url)
        if key not in self._value_sets:
            self._value_sets[key] = None  # guards against import cycles
            self._value_sets[key] = self._expand(key)
        return self._value_sets[key]

    def _expand(self, url: str) -> frozenset[Code] | None:
        value_set = self.definitions.value_sets.get(url)
        if value_set is None:
            return None
        contains = value_set.get("expansion", {}).get("contains")
        if contains:
            return frozenset((str(c.get("system", "")), str(c["code"])) for c in contains if "code" in c)
        compose = value_set.get("compose", {})
        included: set[Code] = set()
        for include in compose.get("include", []):
            part = self._include(include)
            if part is None:
                return None
            included |= part
        for exclude in compose.get("exclude", []):
            part = self._include(exclude)
            if part is not None:
                included -= part
        return frozenset(included)

    def _include(self, include: dict[str, Any]) -> set[Code] | None:
        if include.get("filter"):
            return None
        codes: set[Code] | None = None
        system = include.get("system")
        if system is not None:
            if include.get("concept"):
                codes = {(str(system), str(c["code"])) for c in include["concept"]}
            else:
                known = self.system_codes(str(system))
                if known is None:
                    return None
                codes = {(str(system), code) for code in known}
        for imported in include.get("valueSet", []):
            part = self.expand(imported)
            if part is None:
                return None
            codes = set(part) if codes is None else codes & part
        return set(codes or ())
