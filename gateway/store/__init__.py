"""The FHIR store: one repository interface over SQLAlchemy (SQLite embedded, PostgreSQL in production)."""
