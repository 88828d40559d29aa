"""The cross-agency summary (``Patient/{id}/$summary``): one person's keyworking picture as a FHIR document Bundle,
an HTML page or a PDF, tailored to the requesting organisation's sharing profile (docs/summary.md)."""
