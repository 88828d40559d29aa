"""The cohort filter against the FHIR store's identifier index, on both databases."""

from __future__ import annotations

import random

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.hl7v2.cohort import FhirCohortLookup
from gateway.store.repository import SqlFhirRepository
from gateway.validation import validate_resource
from mappings.hl7v2.tokenizer import peek
from mappings.identifiers import NHS_NUMBER_SYSTEM


def _adt(pid3: str) -> str:
    return f"MSH|^~\\&|PAS|RX1|KWG|KWG|20250101||ADT^A01|C1|P|2.4\rEVN|A01\rPID|||{pid3}||Jones^Siân"


def _fresh_number() -> str:
    return str(random.randint(10**9, 10**10 - 1))  # not a valid NHS number: unique to this test run


async def test_lookup_finds_stored_patients_by_nhs_number_or_local_id(engine: AsyncEngine) -> None:
    nhs, mrn, stranger = _fresh_number(), f"MRN{_fresh_number()}", _fresh_number()
    repo = SqlFhirRepository(engine, validator=validate_resource)  # commits: the lookup uses its own connections
    await repo.create(
        {
            "resourceType": "Patient",
            "identifier": [
                {"system": NHS_NUMBER_SYSTEM, "value": nhs},
                {"system": "https://example.nhs.uk/Id/rx1-mrn", "value": mrn},
            ],
        }
    )
    lookup = FhirCohortLookup(engine)
    assert await lookup.contains(peek(_adt(f"{nhs}^^^NHS^NH")))
    assert await lookup.contains(peek(_adt(f"{nhs}^^^NHS^HN")))  # Epic's type code
    assert await lookup.contains(peek(_adt(f"{mrn}^^^RX1^MR")))
    assert await lookup.contains(peek(_adt(f"{stranger}^^^NHS^NH~{mrn}^^^RX1^MR")))
    assert not await lookup.contains(peek(_adt(f"{stranger}^^^NHS^NH")))
    assert not await lookup.contains(peek(_adt(f"{stranger}^^^RX1^MR")))
    assert not await lookup.contains(peek(_adt("")))  # no identifier at all: nothing to keep


async def test_negative_answers_are_cached_until_forgotten(engine: AsyncEngine) -> None:
    nhs = _fresh_number()
    lookup = FhirCohortLookup(engine, ttl_seconds=3600)
    message = peek(_adt(f"{nhs}^^^NHS^NH"))
    assert not await lookup.contains(message)
    repo = SqlFhirRepository(engine, validator=validate_resource)
    await repo.create({"resourceType": "Patient", "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": nhs}]})
    assert not await lookup.contains(message)  # cached
    lookup.forget()
    assert await lookup.contains(message)
