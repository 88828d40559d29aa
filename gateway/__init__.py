"""Keyworking Gateway: FHIR R4 store, domain API and sync engine for keyworking services."""

__version__ = "0.1.0"
