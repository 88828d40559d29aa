"""Keyworking records (what case-management systems send) and their pure mappings to profiled FHIR R4 and back.

``records`` holds the models; one module per record kind (``person``, ``register``, ``case``, ``care_team``,
``contact``, ``review``) has ``to_fhir(record) -> list[resource]`` and ``from_fhir(resources) -> record``, and
``mapping`` is the single entry point over them; ``lifecycle`` is the case state machine; ``terminology`` and
``urls`` are the codes and canonical URLs the profiles publish. Tables: docs/mapping.md.
"""
