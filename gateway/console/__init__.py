"""The operations console at ``/console``: server-rendered pages for operators (destinations, the message log,
register data quality, a person's timeline), behind a local operator sign-in (docs/console.md)."""
