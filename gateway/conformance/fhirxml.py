"""FHIR XML to FHIR JSON, guided by the StructureDefinitions (which elements repeat, which are primitives).

Used at build time (UK Core ships XML) and by tests; the gateway itself speaks JSON only. The rules are those of
the FHIR R4 JSON representation: repeating elements become arrays, primitives become JSON strings, numbers or
booleans with their ``id``/``extension`` in a ``_name`` sibling, ``div`` stays XHTML text, and a resource inside
``contained`` or ``entry.resource`` gets its ``resourceType``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

from gateway.conformance.elements import INTEGER_TYPES, Child, Navigator

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"


class FhirXmlError(ValueError):
    """The XML is not a FHIR resource the converter understands (unknown element, wrong root)."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _primitive(type_name: str, text: str | None) -> Any:
    if text is None:
        return None
    if type_name == "boolean":
        return text == "true"
    if type_name in INTEGER_TYPES:
        return int(text)
    if type_name == "decimal":
        number = Decimal(text)
        return int(number) if number == number.to_integral_value() and "." not in text else float(number)
    return text


def _xhtml(element: ET.Element) -> str:
    ET.register_namespace("", XHTML_NS)
    return ET.tostring(element, encoding="unicode").strip()


class FhirXmlConverter:
    def __init__(self, navigator: Navigator) -> None:
        self.navigator = navigator

    def convert(self, text: str | bytes) -> dict[str, Any]:
        root = ET.fromstring(text)
        if _namespace(root.tag) != FHIR_NS:
            raise FhirXmlError(f"the root element {root.tag!r} is not in the FHIR namespace")
        return self._resource(root)

    def _resource(self, element: ET.Element) -> dict[str, Any]:
        type_name = _local(element.tag)
        out: dict[str, Any] = {"resourceType": type_name}
        try:
            scope = self.navigator.root_scope(type_name)
        except KeyError as exc:
            raise FhirXmlError(f"unknown resource type {type_name}") from exc
        self._fill(out, element, scope)
        return out

    def _fill(self, out: dict[str, Any], element: ET.Element, scope: tuple[str, str]) -> None:
        groups: dict[str, list[ET.Element]] = {}
        for child in element:
            if not isinstance(child.tag, str):  # comments, processing instructions
                continue
            groups.setdefault(_local(child.tag), []).append(child)
        for name, children in groups.items():
            info = self.navigator.child(scope, name)
            if info is None:
                raise FhirXmlError(f"{scope[1]}.{name} is not an element of {scope[1]}")
            self._put(out, info, children)

    def _put(self, out: dict[str, Any], info: Child, children: list[ET.Element]) -> None:
        values: list[Any] = []
        extras: list[dict[str, Any] | None] = []
        for child in children:
            if info.name == "div" and _namespace(child.tag) == XHTML_NS:
                values.append(_xhtml(child))
                extras.append(None)
            elif info.is_resource:
                inner = [c for c in child if isinstance(c.tag, str)]
                if len(inner) != 1:
                    raise FhirXmlError(f"{info.name} must hold exactly one resource")
                values.append(self._resource(inner[0]))
                extras.append(None)
            elif info.is_primitive or info.scope is None:
                values.append(_primitive(info.type, child.get("value")))
                extra: dict[str, Any] = {}
                if child.get("id") is not None:
                    extra["id"] = child.get("id")
                if len(child):
                    self._fill(extra, child, self.navigator.root_scope(info.type or "Element"))
                    extra.pop("value", None)
                extras.append(extra or None)
            else:
                obj: dict[str, Any] = {}
                for attribute in ("id", "url"):
                    if child.get(attribute) is not None:
                        obj[attribute] = child.get(attribute)
                self._fill(obj, child, info.scope)
                values.append(obj)
                extras.append(None)
        if info.is_list:
            if any(v is not None for v in values):
                out[info.name] = values
            if any(e is not None for e in extras):
                out["_" + info.name] = extras
        else:
            if values[0] is not None:
                out[info.name] = values[0]
            if extras[0] is not None:
                out["_" + info.name] = extras[0]
