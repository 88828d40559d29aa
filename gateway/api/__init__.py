"""HTTP API: FHIR REST at /fhir, the domain API at /api/v1, health and admin."""
