"""Keyworking records (what case-management systems send) and their pure mappings to profiled FHIR R4 and back.

One module per record kind (``person``, ``register``, ``case``, ``care_team``, ``contact``, ``review``), each with
``to_fhir(record) -> list[resource]`` and ``from_fhir(resources) -> record``; ``lifecycle`` is the case state
machine; ``terminology`` and ``urls`` are the codes and canonical URLs the profiles publish.
"""
