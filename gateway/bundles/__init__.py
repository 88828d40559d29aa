"""FHIR R4 ``batch`` and ``transaction`` Bundles (http.html#transaction).

- :mod:`gateway.bundles.entries` checks the Bundle and turns each entry into a typed :class:`EntryRequest`.
- :mod:`gateway.bundles.references` resolves fullUrls (``urn:uuid``) and rewrites references to them.
- :mod:`gateway.bundles.interactions` runs one entry against the repository.
- :mod:`gateway.bundles.processor` runs a whole transaction (atomic) or batch (entry by entry).
- :mod:`gateway.bundles.response` writes the response Bundle from the stored bytes.
"""
