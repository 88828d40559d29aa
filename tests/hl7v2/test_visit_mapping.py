"""ADT → Encounter and Provenance: every sample reads and maps to structurally valid FHIR, the status transitions
follow the table in ``mappings/hl7v2/visit.py``, London times are right, and the processor stores the visit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.hl7v2.alerts import AlertSettings
from gateway.hl7v2.decoding import decode_message
from gateway.hl7v2.log import StoredMessage
from gateway.hl7v2.processing import Hl7Processor
from gateway.register.apply import RegisterRules
from gateway.store.repository import SqlFhirRepository
from mappings.fhir import validate_structure
from mappings.hl7v2.times import hl7_time
from mappings.hl7v2.tokenizer import HL7ParseError, parse
from mappings.hl7v2.visit import encounter_for, encounter_id, provenance_for, read_visit
from tests.api.test_domain_api import API, record
from tests.hl7v2.test_alerts import NHS, adt

SAMPLES = sorted((Path(__file__).parent.parent / "fixtures" / "hl7v2").glob("*.hl7"))


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_sample_reads_and_maps_to_valid_fhir(path: Path) -> None:
    message = parse(decode_message(path.read_bytes()))
    try:
        visit = read_visit(message)
    except HL7ParseError as exc:  # a sample with a malformed field: the error names it precisely
        assert exc.location and "-" in exc.location
        return
    encounter = encounter_for(visit, None, patient_id="p1")
    if encounter is None:
        assert visit.trigger not in ("A01", "A02", "A03", "A04", "A05")
        return
    assert validate_structure(encounter) == []
    provenance = provenance_for(visit, [f"Encounter/{encounter['id']}/_history/1"], provenance_id="prov-1")
    assert validate_structure(provenance) == []


def visit_of(trigger: str, **facts: str) -> object:
    return read_visit(parse(adt(trigger, **facts).decode()))


def test_the_status_table() -> None:
    encounter = encounter_for(visit_of("A05"), None, patient_id="p1")  # type: ignore[arg-type]
    assert encounter is not None and encounter["status"] == "planned"
    steps = [
        ("A01", "in-progress"),
        ("A02", "in-progress"),
        ("A03", "finished"),
        ("A03", None),  # a second discharge changes nothing
        ("A13", "in-progress"),
        ("A11", "cancelled"),
    ]
    for trigger, expected in steps:
        ward = "WARD9" if trigger == "A02" else "MHU1"
        after = encounter_for(visit_of(trigger, ward=ward), encounter, patient_id="p1")  # type: ignore[arg-type]
        if expected is None:
            assert after is None
            continue
        assert after is not None and after["status"] == expected, trigger
        encounter = after
    assert [h["status"] for h in encounter["statusHistory"]] == ["planned", "in-progress", "finished", "in-progress"]
    transferred = [loc for loc in encounter["location"] if loc["status"] == "completed"]
    assert transferred  # the ward before the transfer has an ended period
    assert "end" not in encounter["period"] or encounter["status"] != "in-progress"


def test_times_are_london_time() -> None:
    summer = read_visit(parse(adt("A01", when="20260710143000").decode()))
    winter = read_visit(parse(adt("A01", when="20261210143000").decode()))
    assert summer.occurred_at == datetime(2026, 7, 10, 13, 30, tzinfo=UTC)
    assert winter.occurred_at == datetime(2026, 12, 10, 14, 30, tzinfo=UTC)
    # The autumn hour that happens twice: the first (BST) reading.
    assert hl7_time("20261025013000", "EVN-2") == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)))
def test_times_with_an_offset_round_trip(moment: datetime) -> None:
    text = moment.strftime("%Y%m%d%H%M%S") + "+0000"
    assert hl7_time(text, "MSH-7") == moment.replace(microsecond=0)


def test_a_malformed_visit_time_names_the_field() -> None:
    bad = adt("A01").decode().replace("||20260710143000", "||2026-07-10")
    with pytest.raises(HL7ParseError, match="PV1-45"):  # the builder writes its time in PV1-45
        read_visit(parse(bad))


async def test_the_processor_stores_the_visit_and_who_said_so(
    client: httpx.AsyncClient, repo: SqlFhirRepository
) -> None:
    assert (await client.put(f"{API}/people/yp-amira-khan", json=record("person"))).status_code == 201
    processor = Hl7Processor(repo, RegisterRules(), AlertSettings())  # no mental-health wards: no alerts
    for n, trigger in enumerate(("A01", "A03")):
        raw = adt(trigger, when="20260710143000", control=f"C{n}")
        await processor(StoredMessage(n, "RX4", f"C{n}", f"ADT^{trigger}", NHS, raw))
    eid = encounter_id(read_visit(parse(adt("A01", when="20260710143000").decode())))
    encounter = (await client.get(f"/fhir/Encounter/{eid}")).json()
    assert encounter["status"] == "finished" and encounter["class"]["code"] == "IMP"
    assert encounter["subject"] == {"reference": "Patient/yp-amira-khan"}
    assert encounter["period"]["start"].startswith("2026-07-10T13:30")
    provenances = (await client.get("/fhir/Provenance", params={"target": f"Encounter/{eid}"})).json()
    assert len(provenances.get("entry", [])) == 2


UK = Path(__file__).parent.parent / "fixtures" / "hl7v2" / "uk-synthetic-adt-a01.hl7"


async def test_the_uk_message_updates_verification_and_gp_and_records_the_visit(
    client: httpx.AsyncClient, repo: SqlFhirRepository
) -> None:
    person = {**record("person"), "id": "yp-alex", "nhs_number": "944 930 6753", "upn": None, "la_child_id": None}
    person = {k: v for k, v in person.items() if v is not None and k not in ("nhs_number_verification", "gp_practice")}
    assert (await client.put(f"{API}/people/yp-alex", json=person)).status_code == 201
    processor = Hl7Processor(repo, RegisterRules(), AlertSettings())
    await processor(StoredMessage(1, "RX1", "RX1-000012345", "ADT^A01", "9449306753", UK.read_bytes()))
    updated = (await client.get(f"{API}/people/yp-alex")).json()
    assert updated["nhs_number_verification"] == "01" and updated["gp_practice"] == "B86001"
    encounters = (await client.get("/fhir/Encounter", params={"subject": "Patient/yp-alex"})).json()["entry"]
    [encounter] = [e["resource"] for e in encounters]
    assert encounter["class"]["code"] == "IMP" and encounter["status"] == "in-progress"
    assert encounter["identifier"][0]["value"] == "RX1V000123"
    assert "RX1W07" in encounter["location"][0]["location"]["display"]
    assert encounter["period"]["start"] == "2024-03-15T14:20:00+00:00"  # March: GMT
    # The person's update names the hospital's system and the message, like the visit's.
    found = await repo.search("Provenance", [("target", "Patient/yp-alex")])
    [provenance] = [orjson.loads(r.content or b"{}") for r in found.matches]
    assert provenance["target"] == [{"reference": "Patient/yp-alex/_history/2"}]
    assert provenance["agent"][0]["onBehalfOf"]["identifier"]["value"] == "RX1"
    assert provenance["entity"][0]["what"]["identifier"]["value"] == "RX1-000012345"


async def test_a_merge_of_two_held_people_waits_for_review(client: httpx.AsyncClient, repo: SqlFhirRepository) -> None:
    from gateway.hl7v2.processing import MergeNeedsReview

    for pid, nhs in (("yp-a", "944 930 6753"), ("yp-b", "999 001 1133")):
        body = {**record("person"), "id": pid, "nhs_number": nhs, "upn": None, "la_child_id": None}
        assert (
            await client.put(f"{API}/people/{pid}", json={k: v for k, v in body.items() if v is not None})
        ).status_code == 201
    merge = "\r".join(
        [
            "MSH|^~\\&|PAS|RX1|KWG|KWG|20260301100000||ADT^A40^ADT_A39|M1|P|2.4",
            "EVN|A40|20260301100000",
            "PID|1||9449306753^^^NHS^NH||TEST^ALEX",
            "MRG|9990011133^^^NHS^NH",
        ]
    ).encode()
    processor = Hl7Processor(repo, RegisterRules(), AlertSettings())
    with pytest.raises(MergeNeedsReview, match="review and merge by hand"):
        await processor(StoredMessage(1, "RX1", "M1", "ADT^A40", "9449306753", merge))
