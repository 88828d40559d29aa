"""HL7 v2 ADT → AdtEvent → FHIR changes (``mappings/hl7v2/adt.py``): every sample reads and maps to structurally
valid FHIR, the synthetic UK messages give NHS number, verification, GP practice and BST/GMT-correct times, the
Encounter status table holds for every (current status, event) pair, DTM parsing round-trips, and errors name the
field at fault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings.fhir import validate_structure
from mappings.hl7v2 import encounter_status
from mappings.hl7v2.adt import (
    AdmissionAlertRules,
    AdtChanges,
    AdtError,
    AdtEvent,
    is_mental_health_admission,
    read_adt,
    to_fhir,
)
from mappings.hl7v2.dtm import LONDON, parse_date, parse_instant, to_dtm
from mappings.hl7v2.tokenizer import HL7ParseError, escape, parse

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hl7v2"
SAMPLES = sorted(FIXTURES.glob("*.hl7"))
NHS = "9990000018"  # 999 test range, valid check digit
VERIFY = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
Resource = dict[str, Any]


def read(name: str) -> AdtEvent:
    return read_adt(parse((FIXTURES / name).read_bytes().decode("utf-8")))


def changes(event: AdtEvent, **kwargs: Any) -> AdtChanges:
    return to_fhir(event, patient_id="p1", encounter_id="e1", source="urn:kwg:hl7:1", **kwargs)


# -- a message builder --------------------------------------------------------------------------------------------


def segment(name: str, fields: dict[int, str]) -> str:
    width = max(fields, default=0)
    values = [fields.get(n, "") for n in range(1, width + 1)]
    if name == "MSH":  # MSH-1 is the field separator itself, MSH-2 the encoding characters
        return "MSH|" + "|".join(values[1:])
    return "|".join([name, *values])


def adt(
    trigger: str,
    *,
    when: str = "20260710143000",
    pid: dict[int, str] | None = None,
    pv1: dict[int, str] | None = None,
    extra: tuple[str, ...] = (),
) -> str:
    msh = {2: "^~\\&", 3: "PAS", 4: "RX4", 5: "KWG", 6: "KWG", 7: when, 9: f"ADT^{trigger}", 10: f"C-{trigger}-{when}"}
    msh |= {11: "P", 12: "2.4"}
    pid_fields = {1: "1", 3: f"{NHS}^^^NHS^NH~MRN77^^^RX4^MR", 5: "KHAN^AMIRA^^^MS^^L", 7: "20110504", 8: "F"}
    pid_fields |= {11: "1 ROAD^^YORK^^YO1 7HH^GBR^H", 32: "NSTS01"} | (pid or {})
    pv1_fields = {1: "1", 2: "I", 3: "MHU1^BAY2^BED4^RX4", 10: "PSY", 19: "V1", 44: when} | (pv1 or {})
    segments = [
        segment("MSH", msh),
        segment("EVN", {1: trigger, 2: when}),
        segment("PID", pid_fields),
        segment("PD1", {3: "PRACTICE^^B86001"}),
        segment("PV1", pv1_fields),
        *extra,
    ]
    return "\r".join(s for s in segments if s)


def event_of(trigger: str, **kwargs: Any) -> AdtEvent:
    return read_adt(parse(adt(trigger, **kwargs)))


# -- every sample ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_sample_reads_and_maps_to_valid_fhir(path: Path) -> None:
    event = read_adt(parse(path.read_bytes().decode("utf-8")))
    assert event.trigger.startswith("A") and event.control_id and event.message_time.tzinfo is UTC
    result = changes(event, replaces=("p0",) if event.trigger == "A40" else ())
    for resource in result.resources:
        assert validate_structure(resource) == [], (resource["resourceType"], validate_structure(resource))
    if event.trigger in ("A01", "A02", "A03", "A04", "A05", "A08"):
        assert result.encounter is not None and result.patient is not None
    if event.trigger in ("A28", "A31", "A40"):
        assert result.encounter is None and result.patient is not None
    if result.resources:
        assert result.provenance is not None
        targets = {t["reference"] for t in result.provenance["target"]}
        assert "Patient/p1/_history/1" in targets


def test_the_synthetic_uk_admission_golden() -> None:
    event = read("uk-synthetic-adt-a01.hl7")
    assert (event.trigger, event.control_id, event.sending_application, event.sending_facility) == (
        "A01",
        "RX1-000012345",
        "PAS",
        "RX1",
    )
    assert event.message_time == datetime(2024, 3, 15, 14, 30, tzinfo=UTC)  # March 15th: GMT, no shift
    assert event.event_time == datetime(2024, 3, 15, 14, 20, tzinfo=UTC)  # EVN-6 rather than EVN-2
    result = changes(event)
    patient, encounter, provenance = result.patient, result.encounter, result.provenance
    assert patient is not None and encounter is not None and provenance is not None
    nhs = patient["identifier"][0]
    assert nhs["system"] == "https://fhir.nhs.uk/Id/nhs-number" and nhs["value"] == "9449306753"
    assert nhs["extension"][0]["url"] == VERIFY
    assert nhs["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "01"
    assert patient["identifier"][1]["value"] == "RX1123456"
    assert patient["name"] == [{"use": "official", "family": "TEST", "given": ["ALEX", "JAMES"], "prefix": ["MR"]}]
    assert (patient["gender"], patient["birthDate"]) == ("male", "2008-05-12")
    assert patient["address"] == [{"use": "home", "postalCode": "LS1 4AP"}]
    assert patient["generalPractitioner"][0]["identifier"] == {
        "system": "https://fhir.nhs.uk/Id/ods-organization-code",
        "value": "B86001",
    }
    assert patient["meta"]["profile"] == ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]
    assert encounter["status"] == "in-progress"
    assert encounter["class"]["code"] == "IMP"
    assert encounter["identifier"][0]["value"] == "RX1V000123"
    assert encounter["identifier"][0]["system"].endswith("/visit-number/RX1")
    assert encounter["serviceProvider"]["identifier"]["value"] == "RX1"
    assert encounter["period"] == {"start": "2024-03-15T14:20:00Z"}
    assert encounter["location"][0]["location"]["display"] == "WARD 7 CAMHS TIER 4 (RX1 / RX1W07 / BAY1 / BED3)"
    assert provenance["recorded"] == "2024-03-15T14:30:00Z"
    assert [t["reference"] for t in provenance["target"]] == ["Patient/p1/_history/1", "Encounter/e1/_history/1"]
    assert provenance["entity"][0]["what"]["identifier"]["value"] == "RX1-000012345"
    assert provenance["agent"][0]["who"]["display"] == "PAS at RX1"
    assert provenance["agent"][0]["onBehalfOf"]["identifier"]["value"] == "RX1"


def test_the_synthetic_uk_discharge_in_summer_time() -> None:
    event = read("uk-synthetic-adt-a03-bst.hl7")
    assert event.patient.nhs_number == "9990000026" and event.patient.nhs_number_verification == "02"
    assert event.patient.gp_practice == "Y01234"  # PD1-3 XON.10 (v2.5 form)
    assert event.patient.names[0].given == ("SI\u00e2N",)  # \XC3A2\ decoded as UTF-8
    assert event.patient.birth_date == "2012-02-29" and event.patient.postcode == "YO1 7HH"
    assert event.visit is not None
    assert event.visit.admitted_at == datetime(2026, 7, 2, 8, 30, tzinfo=UTC)  # 09:30 BST
    assert event.visit.discharged_at == datetime(2026, 7, 10, 15, 0, tzinfo=UTC)  # 16:00 BST
    admitted: Resource = {
        "resourceType": "Encounter",
        "id": "e1",
        "meta": {"versionId": "4"},
        "status": "in-progress",
        "period": {"start": "2026-07-02T08:30:00Z"},
        "location": [{"location": {"display": "X"}, "status": "active", "period": {"start": "2026-07-02T08:30:00Z"}}],
    }
    result = changes(event, current_encounter=admitted)
    encounter = result.encounter
    assert encounter is not None and result.provenance is not None
    assert encounter["status"] == "finished"
    assert encounter["period"] == {"start": "2026-07-02T08:30:00Z", "end": "2026-07-10T15:00:00Z"}
    assert encounter["statusHistory"] == [
        {"status": "in-progress", "period": {"start": "2026-07-02T08:30:00Z", "end": "2026-07-10T15:00:00Z"}}
    ]
    assert encounter["location"][0]["status"] == "completed"
    assert "Encounter/e1/_history/5" in [t["reference"] for t in result.provenance["target"]]
    assert validate_structure(encounter) == []


def test_the_synthetic_uk_merge_in_the_repeated_autumn_hour() -> None:
    event = read("uk-synthetic-adt-a40.hl7")
    assert event.message_time == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 01:30 read as BST (fold=0)
    assert event.merge is not None and event.merge.prior_identifiers[0].value == "RX4000999"
    result = changes(event, replaces=("p0",))
    patient = result.patient
    assert patient is not None and result.encounter is None
    assert patient["link"] == [{"other": {"reference": "Patient/p0"}, "type": "replaces"}]
    old = [i for i in patient["identifier"] if i.get("use") == "old"]
    assert [i["value"] for i in old] == ["RX4000999"]
    assert validate_structure(patient) == []
    with pytest.raises(ValueError, match="replace itself"):
        changes(event, replaces=("p1",))


def test_a_us_sample_golden() -> None:
    event = read("ms__ADT-A01-01.hl7")
    assert event.patient.nhs_number is None
    assert event.message_time == datetime(1989, 8, 18, 9, 11, tzinfo=UTC)  # 11:26 at +02:15
    assert event.event_time == datetime(2021, 8, 17, 13, 19, 43, 400000, tzinfo=UTC)  # EVN-6 with a fraction
    assert event.visit is not None and event.visit.patient_class == "P"
    assert event.visit.location is not None and event.visit.location.point_of_care == "HUH AE OMU"  # HD.1 only
    encounter = changes(event).encounter
    assert encounter is not None and encounter["class"]["code"] == "PRENC"


# -- the status table -----------------------------------------------------------------------------------------------

#: Written out independently of ``encounter_status.TRANSITIONS``: (current, event) → status, None (no change),
#: "refused" (AdtError). The A08-on-nothing case depends on PV1-45 (tested separately).
EXPECTED = {
    None: {"A05": "planned", "A01": "in-progress", "A04": "in-progress", "A02": "in-progress", "A03": "finished",
           "A11": None, "A12": None, "A13": None},
    "planned": {"A05": "planned", "A01": "in-progress", "A04": "in-progress", "A02": "in-progress",
                "A03": "finished", "A08": "planned", "A11": "cancelled", "A12": "refused", "A13": "refused"},
    "in-progress": {"A05": None, "A01": "in-progress", "A04": "in-progress", "A02": "in-progress",
                    "A03": "finished", "A08": "in-progress", "A11": "cancelled", "A12": "in-progress", "A13": None},
    "finished": {"A05": None, "A01": "refused", "A04": "refused", "A02": "refused", "A03": None,
                 "A08": "finished", "A11": "refused", "A12": "refused", "A13": "in-progress"},
    "cancelled": {"A05": "planned", "A01": "in-progress", "A04": "in-progress", "A02": "refused",
                  "A03": "refused", "A08": None, "A11": None, "A12": "refused", "A13": "refused"},
}  # fmt: skip


def current(status: str) -> Resource:
    encounter: Resource = {
        "resourceType": "Encounter",
        "id": "e1",
        "meta": {"versionId": "2"},
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2026-07-01T09:00:00Z"},
        "location": [
            {"location": {"display": "RX4 / WARD9"}, "status": "completed",
             "period": {"start": "2026-07-01T09:00:00Z", "end": "2026-07-05T09:00:00Z"}},
            {"location": {"display": "RX4 / MHU1 / BAY2 / BED4"}, "status": "active",
             "period": {"start": "2026-07-05T09:00:00Z"}},
        ],
    }  # fmt: skip
    if status == "finished":
        encounter["period"]["end"] = "2026-07-08T09:00:00Z"
        encounter["location"][1]["status"] = "completed"
        encounter["location"][1]["period"]["end"] = "2026-07-08T09:00:00Z"
    return encounter


CASES = [(state, event) for state, row in EXPECTED.items() for event in row]


@pytest.mark.parametrize(("state", "trigger"), CASES, ids=[f"{s}-{e}" for s, e in CASES])
def test_the_transition_table(state: str | None, trigger: str) -> None:
    expected = EXPECTED[state][trigger]
    # the A02 moves to a new ward; A12 names the ward the patient goes back to (PV1-3)
    ward = {"A02": "ICU3^^^RX4", "A12": "WARD9^^^RX4"}.get(trigger, "MHU1^BAY2^BED4^RX4")
    event = event_of(trigger, when="20260710143000", pv1={3: ward, 44: "20260701100000"})
    before = None if state is None else current(state)
    if expected == "refused":
        with pytest.raises(AdtError) as caught:
            changes(event, current_encounter=before)
        assert caught.value.location == "MSH-9.2" and "V1" in str(caught.value)
        return
    encounter = changes(event, current_encounter=before).encounter
    if expected is None:
        assert encounter is None
        return
    assert encounter is not None and encounter["status"] == expected
    assert validate_structure(encounter) == []
    assert encounter_status.outcome(trigger, state) in (expected, encounter_status.AS_SENT)
    period = encounter.get("period", {})
    if expected == "finished":
        assert "end" in period
    if expected == "in-progress":
        assert "end" not in period
    if before is not None and expected != state:
        assert encounter["statusHistory"][-1]["status"] == state


def test_a08_for_an_unknown_visit_takes_its_status_from_pv1_45() -> None:
    open_ = changes(event_of("A08")).encounter
    closed = changes(event_of("A08", pv1={45: "20260711100000"})).encounter
    assert open_ is not None and open_["status"] == "in-progress"
    assert closed is not None and closed["status"] == "finished"
    assert closed["period"]["end"] == "2026-07-11T09:00:00Z"


def test_a_transfer_ends_the_previous_location_and_its_cancel_restores_it() -> None:
    admitted = changes(event_of("A01", when="20260701100000")).encounter
    assert admitted is not None
    moved = changes(event_of("A02", when="20260705100000", pv1={3: "ICU3^^^RX4"}), current_encounter=admitted)
    encounter = moved.encounter
    assert encounter is not None
    assert [(loc["location"]["display"], loc["status"]) for loc in encounter["location"]] == [
        ("RX4 / MHU1 / BAY2 / BED4", "completed"),
        ("RX4 / ICU3", "active"),
    ]
    assert (
        encounter["location"][0]["period"]["end"]
        == "2026-07-05T09:00:00Z"
        == encounter["location"][1]["period"]["start"]
    )
    back = changes(
        event_of("A12", when="20260705120000", pv1={3: "MHU1^BAY2^BED4^RX4"}), current_encounter=encounter
    ).encounter
    assert back is not None
    assert [(loc["location"]["display"], loc["status"]) for loc in back["location"]] == [
        ("RX4 / MHU1 / BAY2 / BED4", "active")
    ]
    assert "end" not in back["location"][0]["period"]


def test_a_cancelled_discharge_reopens_the_visit_and_its_last_location() -> None:
    admitted = changes(event_of("A01", when="20260701100000")).encounter
    discharged = changes(
        event_of("A03", when="20260708100000", pv1={45: "20260708100000"}), current_encounter=admitted
    ).encounter
    assert discharged is not None and discharged["period"]["end"] == "2026-07-08T09:00:00Z"
    reopened = changes(event_of("A13", when="20260708120000"), current_encounter=discharged).encounter
    assert reopened is not None and reopened["status"] == "in-progress"
    assert "end" not in reopened["period"]
    assert reopened["location"][-1]["status"] == "active" and "end" not in reopened["location"][-1]["period"]
    assert [h["status"] for h in reopened["statusHistory"]] == ["in-progress", "finished"]


def test_the_same_message_twice_changes_nothing_the_second_time() -> None:
    event = read("uk-synthetic-adt-a01.hl7")
    first = changes(event)
    assert first.patient is not None and first.encounter is not None
    stored_patient = {**first.patient, "meta": {**first.patient["meta"], "versionId": "1"}}
    stored_encounter = {**first.encounter, "meta": {**first.encounter["meta"], "versionId": "1"}}
    again = changes(event, current_patient=stored_patient, current_encounter=stored_encounter)
    assert again == AdtChanges(None, None, None)


def test_the_patient_keeps_what_the_message_does_not_cover() -> None:
    held: Resource = {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "7", "profile": ["https://example.org/KeyworkingPatient"]},
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS}],
        "telecom": [{"system": "phone", "value": "07700900000"}],
        "address": [{"line": ["1 Road"], "postalCode": "YO1 7HH"}],
    }
    result = changes(event_of("A31"), current_patient=held)
    patient = result.patient
    assert patient is not None and result.provenance is not None
    assert patient["telecom"] == held["telecom"]
    assert patient["address"] == held["address"]  # same postcode: the fuller address stays
    assert patient["meta"]["profile"][0] == "https://example.org/KeyworkingPatient"
    assert [i["system"] for i in patient["identifier"]].count("https://fhir.nhs.uk/Id/nhs-number") == 1
    assert result.provenance["target"] == [{"reference": "Patient/p1/_history/8"}]
    assert result.provenance["activity"]["coding"][0]["code"] == "UPDATE"


# -- errors name the field ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "location"),
    [
        (adt("A01", pid={7: "2011-05-04"}), "PID-7"),
        (adt("A01", pid={7: "20110231"}), "PID-7"),
        (adt("A01", pv1={44: "20260710T1430"}), "PV1-44"),
        (adt("A01", pv1={44: "202607101430+2500"}), "PV1-44"),
        (adt("A03", pv1={45: "2026"}), "PV1-45"),  # not precise to the day
        (adt("A01", pid={3: ""}), "PID-3"),
        (adt("A01", pid={3: "9990000019^^^NHS^NH"}), "PID-3"),  # bad check digit
        (adt("A01", pid={32: "NSTS09"}), "PID-32"),
        (adt("A01").replace("ADT^A01", "ORU^R01"), "MSH-9.1"),
        (adt("A01").replace("ADT^A01", "ADT").replace("EVN|A01", "EVN|"), "MSH-9.2"),
        (adt("A01").replace("|C-A01-20260710143000|", "||"), "MSH-10"),
        (adt("A01", when="").replace("EVN|A01|", "EVN|A01|20260710"), "MSH-7"),
        ("\r".join(s for s in adt("A01").split("\r") if not s.startswith("PV1")), "PV1"),
        ("\r".join(s for s in adt("A01").split("\r") if not s.startswith("PID")), "PID"),
        (adt("A40"), "MRG"),
        (adt("A40", extra=("MRG|",)), "MRG-1"),
    ],
)
def test_errors_name_the_segment_and_field(text: str, location: str) -> None:
    with pytest.raises(AdtError) as caught:
        read_adt(parse(text))
    assert caught.value.location == location
    assert str(caught.value).startswith(f"{location}: ")
    assert isinstance(caught.value, HL7ParseError)  # the listener's AE path handles it unchanged


def test_a_discharge_before_the_admission_is_refused() -> None:
    event = event_of("A03", pv1={44: "20260710143000", 45: "20260709143000"})
    with pytest.raises(AdtError, match="PV1-45"):
        changes(event)


def test_unknown_or_empty_sex_and_class_are_not_errors() -> None:
    event = event_of("A01", pid={8: "X"}, pv1={2: "N"})
    result = changes(event)
    assert result.patient is not None and result.patient["gender"] == "unknown"
    assert result.encounter is not None and result.encounter["class"]["code"] == "UNK"
    assert validate_structure(result.encounter) == []


# -- times ----------------------------------------------------------------------------------------------------------


def test_naive_times_are_london_time_on_both_sides_of_each_change() -> None:
    assert parse_instant("20260329005900", "X") == datetime(2026, 3, 29, 0, 59, tzinfo=UTC)  # GMT
    # 01:30 on 29 March 2026 does not exist in London: read with the offset before the change (GMT)
    assert parse_instant("20260329013000", "X") == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert parse_instant("20260329020000", "X") == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # BST
    # 01:30 on 25 October 2026 happens twice: the first (BST) is taken
    assert parse_instant("20261025013000", "X") == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert parse_instant("20261025020000", "X") == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)  # GMT again
    assert parse_instant("20260710", "X") == datetime(2026, 7, 9, 23, 0, tzinfo=UTC)  # midnight BST


def test_birth_dates_keep_the_calendar_date_and_precision() -> None:
    assert parse_date("20110504", "PID-7") == "2011-05-04"
    assert parse_date("201105", "PID-7") == "2011-05"
    assert parse_date("2011", "PID-7") == "2011"
    assert parse_date("201107100030+0100", "PID-7") == "2011-07-10"  # never shifted to the day before


offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 12, 30), timezones=offsets).map(
    lambda d: d.replace(microsecond=d.microsecond // 100 * 100)
)


@given(moments)
def test_dtm_with_an_offset_round_trips(moment: datetime) -> None:
    assert parse_instant(to_dtm(moment), "MSH-7") == moment


@given(
    st.datetimes(min_value=datetime(2026, 3, 28), max_value=datetime(2026, 10, 26)).map(
        lambda d: d.replace(microsecond=0)
    )
)
def test_naive_dtm_is_london_wall_clock_time(naive: datetime) -> None:
    text = naive.strftime("%Y%m%d%H%M%S")
    moment = parse_instant(text, "EVN-2")
    assert moment is not None and moment.tzinfo is UTC
    in_gap = naive.date() == datetime(2026, 3, 29).date() and naive.hour == 1
    if in_gap:
        assert moment == naive.replace(tzinfo=UTC)  # read as GMT
    else:
        assert moment.astimezone(LONDON).replace(tzinfo=None) == naive


# -- random but valid messages read back ----------------------------------------------------------------------------

text = (
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=12)
    .map(str.strip)
    .filter(bool)
)
codes = st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ0123456789", min_size=3, max_size=8)
nine_digits = st.integers(min_value=100_000_000, max_value=999_999_999).map(str)


def _valid_nhs(nine: str) -> str | None:
    from mappings.identifiers import nhs_number_check_digit

    check = nhs_number_check_digit(nine)
    return None if check is None else nine + str(check)


nhs_numbers = nine_digits.map(_valid_nhs).filter(lambda n: n is not None)
london_moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC)
)


@given(
    nhs=nhs_numbers,
    status=st.integers(min_value=1, max_value=8),
    family=text,
    given_name=text,
    birth=st.dates(min_value=datetime(1900, 1, 1).date(), max_value=datetime(2030, 1, 1).date()),
    sex=st.sampled_from("MFOUAN"),
    gp=codes,
    ward=codes,
    visit=codes,
    service=codes,
    admitted=london_moments,
    trigger=st.sampled_from(["A01", "A02", "A03", "A04", "A05", "A08", "A11", "A12", "A13", "A28", "A31"]),
    patient_class=st.sampled_from("IOEPRB"),
)
def test_random_valid_fields_read_back(
    nhs: str,
    status: int,
    family: str,
    given_name: str,
    birth: Any,
    sex: str,
    gp: str,
    ward: str,
    visit: str,
    service: str,
    admitted: datetime,
    trigger: str,
    patient_class: str,
) -> None:
    dtm = to_dtm(admitted)
    message = adt(
        trigger,
        when=dtm,
        pid={
            3: f"{nhs}^^^NHS^NH",
            5: f"{escape(family)}^{escape(given_name)}",
            7: birth.strftime("%Y%m%d"),
            8: sex,
            32: f"NSTS{status:02d}",
        },
        pv1={2: patient_class, 3: f"{ward}^^^RX4", 10: service, 19: visit, 44: dtm},
    ).replace("PD1|||PRACTICE^^B86001", f"PD1|||PRACTICE^^{gp}")
    event = read_adt(parse(message))
    assert event.trigger == trigger and event.message_time == admitted and event.event_time == admitted
    assert event.patient.nhs_number == nhs and event.patient.nhs_number_verification == f"{status:02d}"
    assert event.patient.names[0].family == family and event.patient.names[0].given == (given_name,)
    assert event.patient.birth_date == birth.isoformat() and event.patient.sex == sex
    assert event.patient.gp_practice == gp
    assert event.visit is not None
    assert (event.visit.patient_class, event.visit.hospital_service, event.visit.visit_number) == (
        patient_class,
        service,
        visit,
    )
    assert event.visit.location is not None and event.visit.location.point_of_care == ward
    assert event.visit.admitted_at == admitted
    for resource in changes(event).resources:
        assert validate_structure(resource) == []


# -- the register alert ---------------------------------------------------------------------------------------------

RULES = AdmissionAlertRules(wards=frozenset({"mhu1"}), services=frozenset({"PSY"}), senders=frozenset({"RXT"}))


def test_mental_health_admissions() -> None:
    assert is_mental_health_admission(event_of("A01", pv1={10: "GEN"}), RULES)  # by ward (case-insensitive)
    assert is_mental_health_admission(event_of("A02", pv1={3: "GEN3^^^RX4"}), RULES)  # by service PSY
    assert not is_mental_health_admission(event_of("A01", pv1={3: "GEN3^^^RX4", 10: "GEN"}), RULES)
    assert not is_mental_health_admission(event_of("A01", pv1={2: "O"}), RULES)  # not an inpatient
    assert not is_mental_health_admission(event_of("A03"), RULES)  # a discharge is not an admission
    assert not is_mental_health_admission(event_of("A28"), RULES)
    by_sender = AdmissionAlertRules(senders=frozenset({"RX4"}))
    assert is_mental_health_admission(event_of("A01", pv1={3: "GEN3^^^RX4", 10: "GEN"}), by_sender)
    assert not is_mental_health_admission(event_of("A01"), AdmissionAlertRules())
    assert is_mental_health_admission(
        read("uk-synthetic-adt-a01.hl7"), AdmissionAlertRules(wards=frozenset({"RX1W07"}))
    )


def test_the_docs_print_the_status_table_the_code_uses() -> None:
    docs = (Path(__file__).parent.parent.parent / "docs" / "hl7v2-mapping.md").read_text()
    events = encounter_status.EVENTS
    lines = [f"| held \\ event | {' | '.join(events)} |"]
    lines += [
        f"| {state} | {' | '.join(encounter_status.TRANSITIONS[(state, e)] for e in events)} |"
        for state in encounter_status.STATES
    ]
    for line in lines:
        assert line in docs


@given(
    st.lists(
        st.tuples(
            st.sampled_from(encounter_status.EVENTS), st.sampled_from(["MHU1^BAY2^BED4^RX4", "ICU3^^^RX4", "GEN5"])
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_sequence_of_visit_events_keeps_the_encounter_valid(steps: list[tuple[str, str]]) -> None:
    held: Resource | None = None
    start = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    for n, (trigger, ward) in enumerate(steps):
        when = to_dtm(start + timedelta(hours=n))
        try:
            after = changes(event_of(trigger, when=when, pv1={3: ward, 44: to_dtm(start)}), current_encounter=held)
        except AdtError as refused:
            assert refused.location == "MSH-9.2"
            assert encounter_status.outcome(trigger, None if held is None else held["status"]) == "refused"
            continue
        if after.encounter is None:
            continue
        encounter = after.encounter
        assert validate_structure(encounter) == []
        assert ("end" in encounter.get("period", {})) == (encounter["status"] == "finished")
        assert len([loc for loc in encounter.get("location", []) if loc["status"] == "active"]) <= 1
        assert held is None or after.provenance is not None
        held = {**encounter, "meta": {**encounter["meta"], "versionId": str(n + 1)}}
