"""HL7 v2 from the outside, fuzzed: arbitrary bytes and damaged real messages (tests/fixtures/hl7v2).

- The listener answers every frame with an original-mode ACK (AA, AE or AR in MSA-1), never an exception (which
  would close the connection without an answer).
- The structured reading a cohort message gets (tokenizer, visit, person facts, ADT event, the FHIR it leads to, the
  alert decision) either works or fails with :class:`HL7ParseError` naming where (an AE/AR-worthy error).
- Processing against the store (both databases) fails, when it fails, with a located HL7 error or a gateway error
  the message log records, never with a crash of the parser underneath.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.errors import GatewayError
from gateway.hl7v2.alerts import AlertSettings, decide
from gateway.hl7v2.cohort import EveryoneInCohort
from gateway.hl7v2.decoding import decode_message
from gateway.hl7v2.inbox import HL7Inbox, InboxItem, Stored
from gateway.hl7v2.listener import MllpListener
from gateway.hl7v2.log import StoredMessage
from gateway.hl7v2.processing import Hl7Processor, MergeNeedsReview, event_of
from gateway.register.apply import RegisterRules
from gateway.store.repository import SqlFhirRepository
from mappings.hl7v2.adt import read_adt
from mappings.hl7v2.adt_fhir import to_fhir as adt_to_fhir
from mappings.hl7v2.tokenizer import HL7ParseError, parse, peek
from mappings.hl7v2.visit import encounter_for, read_person_facts, read_visit
from tests.fuzz.mutations import mutated_text

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "hl7v2").glob("*.hl7"))
TEXTS = [decode_message(p.read_bytes()) for p in SAMPLES]
messages = mutated_text(TEXTS, "\r", "|")
#: Alerts on for the samples' wards and services, so the alert rules run too.
ALERTS = AlertSettings(wards=frozenset({"RX1W07"}), services=frozenset({"CAMHS"}))


class MemoryInbox(HL7Inbox):
    """The inbox without a database: appends are kept in a list (the listener's storage seam)."""

    def __init__(self) -> None:
        self.items: list[InboxItem] = []

    async def append(self, item: InboxItem) -> Stored:
        self.items.append(item)
        return Stored.STORED

    def count(self, sending_facility: str, message_type: str, outcome: str) -> None:
        pass


LISTENER = MllpListener(MemoryInbox(), EveryoneInCohort())


async def assert_acked(payload: bytes) -> None:
    """An AA (stored: the inbox here never fails, so never AE) or an AR with an ERR segment saying why."""
    ack = parse((await LISTENER.accept(payload, "127.0.0.1:1")).decode("utf-8"))
    msa = ack.segment("MSA")
    assert msa is not None and msa.value(1) in ("AA", "AR"), ack.text
    if msa.value(1) == "AR":
        err = ack.segment("ERR")
        assert err is not None and err.value(8), ack.text


def test_samples_are_present() -> None:
    assert len(TEXTS) >= 30


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400) | st.text(max_size=400).map(lambda t: ("MSH|^~\\&|" + t).encode("utf-8", "replace")))
@example(b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.4|||||||8859/1\r")
@example(b"\xef\xbb\xbfMSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.4\rPID|1||\xff\xfe^^^NHS^NH")
async def test_the_listener_answers_any_bytes_with_an_ack(payload: bytes) -> None:
    await assert_acked(payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages, st.sampled_from(["utf-8", "latin-1"]))
async def test_the_listener_answers_damaged_messages_with_an_ack(text: str, encoding: str) -> None:
    await assert_acked(text.encode(encoding, "replace"))


def read_everything(text: str) -> None:
    """What processing reads of a cohort message, pure: raises only HL7ParseError (AdtError is one)."""
    peek(text)
    message = parse(text)
    visit = read_visit(message)
    read_person_facts(message)
    encounter_for(visit, None, patient_id="yp-fuzz")
    decide(event_of(visit), (), ALERTS)
    event = read_adt(message)
    adt_to_fhir(event, patient_id="yp-fuzz", encounter_id="enc-fuzz", source="urn:uuid:fuzz")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_reading_a_damaged_message_fails_only_with_a_located_error(text: str) -> None:
    try:
        read_everything(text)
    except HL7ParseError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300).map(lambda t: "MSH|^~\\&|" + t))
def test_reading_arbitrary_text_fails_only_with_a_located_error(text: str) -> None:
    try:
        read_everything(text)
    except HL7ParseError:
        pass


NHS_NUMBERS = sorted({p.nhs_number for p in (peek(t) for t in TEXTS) if p.nhs_number})


@pytest.fixture
async def known_people(repo: SqlFhirRepository) -> SqlFhirRepository:
    """Everyone the samples are about is someone the gateway holds, so processing goes all the way."""
    for n, nhs in enumerate(NHS_NUMBERS):
        patient = {
            "resourceType": "Patient",
            "id": f"yp-fuzz-{n}",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
        }
        await repo.update("Patient", f"yp-fuzz-{n}", patient)
    return repo


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=messages)
async def test_processing_a_damaged_message_fails_only_with_an_error_the_log_can_record(
    known_people: SqlFhirRepository, text: str
) -> None:
    try:
        envelope = peek(text)
    except HL7ParseError:
        return  # the listener answered AR: never stored, never processed
    stored = StoredMessage(1, envelope.sending_facility[:64], envelope.control_id[:64], "ADT", None, text.encode())
    try:
        async with known_people.transaction() as tx:
            await Hl7Processor(tx, RegisterRules(), ALERTS)(stored)
            raise _RollBack
    except (_RollBack, HL7ParseError, MergeNeedsReview, GatewayError):
        pass


class _RollBack(Exception):
    """Each example's writes are undone, so the next starts from the same store."""
