"""The keyworking domain services behind ``/api/v1``: records in, profiled FHIR through the repository, records out.

``gather`` knows which stored resources make up each record kind; ``service`` writes a record's resources in one
transaction (removing the ones a new version no longer has), reads records back from FHIR, and applies the case
and care-team state machine. Nothing here speaks HTTP: the routes in :mod:`gateway.api.v1` are thin shells.
"""
