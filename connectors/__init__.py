"""Connectors to NHS, local authority and education systems (typed interface, one fake per connector)."""
