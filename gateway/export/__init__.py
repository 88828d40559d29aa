"""FHIR Bulk Data export (``$export``): kick-off parameters, durable jobs, the streaming ndjson writer and the
Celery-side run. See docs/bulk-export.md."""
