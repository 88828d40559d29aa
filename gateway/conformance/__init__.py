"""Conformance: FHIR StructureDefinitions, snapshots and the profile validator."""
