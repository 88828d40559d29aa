"""``kwg demo``: a synthetic ICS loaded through the gateway's public domain API (``population`` makes it,
``loader`` sends it)."""
