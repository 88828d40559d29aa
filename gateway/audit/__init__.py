"""Audit: an AuditEvent for every access to a person's data (``events`` builds them, ``trail`` writes them)."""
