"""``Patient/{id}/$summary`` (document Bundle, HTML, PDF) and ``kwg export summary``, on SQLite and PostgreSQL.

The person is a young person of the demo ICS (gateway/demo/population.py) loaded through the domain API, chosen so
that every section has data: care team across agencies, register ratings, a keyworking case, contacts with the
young person's views, a C(E)TR with recommendations, consent.
"""

from __future__ import annotations

import base64
import io
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pypdf
import pytest
from fhir.resources.R4B.bundle import Bundle
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from gateway.auth import DEVELOPMENT_CALLER, Caller
from gateway.cli import app as kwg
from gateway.demo.loader import put_organisation, put_record, records_of
from gateway.demo.population import YoungPersonRecords, organisations, population
from gateway.errors import NotAcceptable
from gateway.settings import Settings
from gateway.store.migrate import upgrade
from gateway.store.repository import SqlFhirRepository
from gateway.summary.compose import Summary, compose
from gateway.summary.formats import SummaryFormat, choose
from gateway.summary.sections import care_team
from mappings.keyworking.terminology import CareTeamRole
from mappings.keyworking.urls import CS_TASK_TYPE
from tests.api.test_access_matrix import STRANGER, act_as

TODAY = date(2026, 11, 2)
SECTIONS = [
    "The young person",
    "Care team across agencies",
    "Register rating and history",
    "Keyworking phase and next review",
    "Recent contacts",
    "C(E)TR recommendations",
    "Consent and sharing limits",
]
HOSTILE = "<script>alert('x')</script> O'Neil & Co"


def full_person() -> YoungPersonRecords:
    """The first demo young person with every kind of record, and the young person's views on a contact."""
    for young_person in population(people=200, today=TODAY):
        if (
            young_person.reviews
            and young_person.case is not None
            and young_person.care_team is not None
            and any(c.views for c in young_person.contacts)
            and any(r.recommendations for r in young_person.reviews)
        ):
            return young_person
    raise AssertionError("the demo population has nobody with every kind of record")


PERSON = full_person()
PID = PERSON.person.id or ""
SUMMARY = f"/fhir/Patient/{PID}/$summary"


def member_agency(role: CareTeamRole) -> str:
    assert PERSON.care_team is not None
    member = next(m for m in PERSON.care_team.members if m.role is role and m.end is None and m.agency is not None)
    assert member.agency is not None
    return member.agency.ods_code


SCHOOL = Caller("school-mis", member_agency(CareTeamRole.SENCO_OR_TEACHER), "DIRECT_CARE", organisation_type="school")
TRUST = Caller("trust-ehr", member_agency(CareTeamRole.KEYWORKER), "DIRECT_CARE", organisation_type="nhs-provider")


async def load(client: httpx.AsyncClient) -> None:
    for organisation in organisations():
        await put_organisation(client, organisation)
    for record in records_of(PERSON):
        await put_record(client, record)
    assert PERSON.care_team is not None
    hostile = {"role": "advocate", "member": {"name": HOSTILE}, "start": "2026-01-05"}
    response = await client.post(f"/api/v1/care-teams/{PERSON.care_team.id}/members", json=hostile)
    assert response.status_code in (200, 201), response.text


def entries_of(bundle: dict[str, Any], res_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == res_type]


async def test_the_document_bundle_cites_what_it_contains(client: httpx.AsyncClient) -> None:
    await load(client)
    response = await client.get(SUMMARY)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    Bundle.model_validate(bundle)  # FHIR R4 structure and invariants (bdl-*: document needs identifier, timestamp)
    assert bundle["type"] == "document" and bundle["identifier"]["value"].startswith("urn:uuid:")
    composition = bundle["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    assert composition["title"] == "Keyworking cross-agency summary"
    assert [s["title"] for s in composition["section"]] == SECTIONS
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(urls) == len(set(urls))
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    assert by_url[composition["subject"]["reference"]]["id"] == PID
    assert by_url[composition["author"][0]["reference"]]["resourceType"] == "Device"
    cited = [ref["reference"] for s in composition["section"] for ref in s.get("entry", ())]
    assert cited and all(ref in by_url for ref in cited)
    for section in composition["section"]:  # every section has data for this person, and a narrative
        assert section.get("entry"), section["title"]
        assert section["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
    kinds = {r["resourceType"] for r in by_url.values()}
    assert {"Patient", "Condition", "CareTeam", "Flag", "Observation", "EpisodeOfCare", "Encounter", "Task"} <= kinds
    assert "Consent" in kinds and "AuditEvent" not in kinds
    # Every entry but the Composition and the Device is cited by a section (or is the subject).
    assert set(urls[2:]) <= {*cited, composition["subject"]["reference"]}
    # The narrative escapes what people typed.
    team = next(s for s in composition["section"] if s["title"] == "Care team across agencies")
    assert "&lt;script&gt;" in team["text"]["div"] and "<script>" not in team["text"]["div"]


async def test_one_audit_event_lists_what_the_summary_included(client: httpx.AsyncClient) -> None:
    await load(client)
    app: Any = client._transport.app  # type: ignore[attr-defined]
    await app.state.audit.start()  # the client fixture does not run the app's lifespan
    bundle = (await client.get(SUMMARY)).json()
    await app.state.audit.stop()
    found = (await client.get("/fhir/AuditEvent", params={"patient": f"Patient/{PID}", "_count": "500"})).json()

    def query(event: dict[str, Any]) -> str:
        return next((base64.b64decode(x["query"]).decode() for x in event["entity"] if "query" in x), "")

    events = [e["resource"] for e in found["entry"] if "$summary" in query(e["resource"])]
    assert len(events) == 1
    event = events[0]
    assert event["subtype"][0]["code"] == "operation"
    audited = {x["what"]["reference"] for x in event["entity"] if "what" in x}
    included = {f"{r['resourceType']}/{r['id']}" for r in (e["resource"] for e in bundle["entry"][2:])}
    assert f"Patient/{PID}" in audited and audited <= included


async def test_the_html_page_is_readable_printable_and_escaped(client: httpx.AsyncClient) -> None:
    await load(client)
    for response in (
        await client.get(SUMMARY, headers={"Accept": "text/html"}),
        await client.get(SUMMARY, params={"_format": "html"}),
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        page = response.text
        assert page.startswith("<!DOCTYPE html>") and '<html lang="en-GB">' in page
        assert "@media print" in page and "size: a4" in page
        for title in SECTIONS:
            assert f">{title}</h2>" in page
        assert '<th scope="col">' in page
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; O&#39;Neil &amp; Co" in page
        assert "<script" not in page
        assert "style-src 'unsafe-inline'" in response.headers["content-security-policy"]
        assert "script-src" not in response.headers["content-security-policy"]


async def test_the_pdf_is_one_or_two_a4_pages(client: httpx.AsyncClient) -> None:
    await load(client)
    for response in (
        await client.get(SUMMARY, headers={"Accept": "application/pdf"}),
        await client.get(SUMMARY, params={"_format": "pdf"}),
    ):
        assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
        assert response.content.startswith(b"%PDF")
        reader = pypdf.PdfReader(io.BytesIO(response.content))
        assert 1 <= len(reader.pages) <= 2
        width, height = float(reader.pages[0].mediabox.width), float(reader.pages[0].mediabox.height)
        assert (round(width), round(height)) == (595, 842)  # A4 in points
        text = " ".join(p.extract_text() for p in reader.pages)
        assert "Keyworking cross-agency summary" in text and "Recent contacts" in text


async def test_a_school_gets_no_clinical_detail_an_nhs_provider_does(client: httpx.AsyncClient) -> None:
    await load(client)
    act_as(client, TRUST)
    nhs = (await client.get(SUMMARY)).json()
    act_as(client, SCHOOL)
    school = (await client.get(SUMMARY)).json()
    Bundle.model_validate(school)
    # The NHS provider sees diagnoses, ratings, the young person's views and who attended contacts.
    assert entries_of(nhs, "Condition")
    assert any(o.get("valueString") for o in entries_of(nhs, "Observation"))
    assert any("participant" in e for e in entries_of(nhs, "Encounter"))
    # The school: no Conditions, Observations, Flags, Consents or episodes; Encounters without clinical detail.
    kinds = {r["resourceType"] for r in (e["resource"] for e in school["entry"][2:])}
    assert kinds <= {"Patient", "CareTeam", "Encounter", "Task", "Organization"}  # agencies: directory data
    assert entries_of(school, "Encounter")
    for encounter in entries_of(school, "Encounter"):
        assert set(encounter) <= {"resourceType", "id", "meta", "status", "class", "type", "subject", "period"}
    patient = entries_of(school, "Patient")[0]
    assert set(patient) <= {"resourceType", "id", "meta", "identifier", "name", "birthDate"}
    sections = {s["title"]: s for s in school["entry"][0]["resource"]["section"]}
    withheld = sections["Register rating and history"]
    assert "entry" not in withheld and withheld["emptyReason"]["coding"][0]["code"] == "withheld"
    assert "not shared with this organisation" in sections["The young person"]["text"]["div"]
    page = (await client.get(SUMMARY, params={"_format": "html"})).text
    assert "Diagnoses are not shared with this organisation." in page and "Autism" not in page
    assert f"{SCHOOL.organisation} (school)" in page


async def test_unknown_person_unrelated_organisation_and_unknown_format(client: httpx.AsyncClient) -> None:
    await load(client)
    missing = await client.get("/fhir/Patient/nobody/$summary")
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    refused = await client.get(SUMMARY, headers={"Accept": "image/png"})
    assert refused.status_code == 406
    assert (await client.get(SUMMARY, params={"_format": "docx"})).status_code == 406
    act_as(client, STRANGER)
    forbidden = await client.get(SUMMARY)
    assert forbidden.status_code == 403 and forbidden.json()["issue"][0]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, SummaryFormat.JSON),
        ("*/*", SummaryFormat.JSON),
        ("application/fhir+json", SummaryFormat.JSON),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", SummaryFormat.HTML),
        ("application/pdf", SummaryFormat.PDF),
        ("application/json;q=0.5, application/pdf", SummaryFormat.PDF),
        ("application/pdf;q=0, text/html", SummaryFormat.HTML),
    ],
)
def test_accept_picks_the_best_format(accept: str | None, expected: SummaryFormat) -> None:
    assert choose(None, accept) is expected


def test_format_parameter_wins_over_accept() -> None:
    assert choose("pdf", "text/html") is SummaryFormat.PDF
    assert choose("application/fhir+json", "application/pdf") is SummaryFormat.JSON


@given(st.one_of(st.none(), st.text(max_size=60)), st.one_of(st.none(), st.text(max_size=120)))
def test_negotiation_answers_a_format_or_406_for_any_input(format_param: str | None, accept: str | None) -> None:
    try:
        assert isinstance(choose(format_param, accept), SummaryFormat)
    except NotAcceptable:
        pass


def test_the_cli_writes_each_format_for_an_nhs_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from gateway.app import create_app

    monkeypatch.setenv("KWG_HOME", str(tmp_path))
    settings = Settings(home=tmp_path)  # type: ignore[arg-type]
    upgrade(settings)

    async def seed() -> None:
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            await load(client)
        await app.state.engine.dispose()

    asyncio.run(seed())
    runner = CliRunner()
    nhs_number = PERSON.person.nhs_number
    spaced = f"{nhs_number[:3]} {nhs_number[3:6]} {nhs_number[6:]}"
    for fmt, magic in (("json", b"{"), ("html", b"<!DOCTYPE html>"), ("pdf", b"%PDF")):
        out = tmp_path / f"summary.{fmt}"
        result = runner.invoke(kwg, ["export", "summary", "--nhs-number", spaced, "--format", fmt, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_bytes().startswith(magic)
        assert nhs_number not in result.output
    assert b'"type": "document"' in (tmp_path / "summary.json").read_bytes()
    unknown = runner.invoke(kwg, ["export", "summary", "--nhs-number", "9990000018"])
    assert unknown.exit_code == 1 and "no summary" in unknown.output
    assert runner.invoke(kwg, ["export", "summary", "--nhs-number", "12"]).exit_code == 2


# -- what the fields say ------------------------------------------------------------------------------------------


def rows_of(summary: Summary, key: str, caption: str) -> list[tuple[str, ...]]:
    section = next(s for s in summary.sections if s.key == key)
    return list(next(t for t in section.tables if t.caption == caption).rows)


def day(value: date) -> str:
    return value.strftime("%d %b %Y").lstrip("0")


PHONES = {o["identifier"][0]["value"]: o["telecom"] for o in organisations()}
FHIR = {"Content-Type": "application/fhir+json"}


def review_task(task_id: str, due: str) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": task_id,
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": CS_TASK_TYPE, "code": "keyworking-review", "display": "Keyworking review"}]},
        "for": {"reference": f"Patient/{PID}"},
        "restriction": {"period": {"end": due}},
    }


async def test_the_fields_say_what_the_records_say(client: httpx.AsyncClient, repo: SqlFhirRepository) -> None:
    await load(client)
    summary = await compose(repo, DEVELOPMENT_CALLER, PID, base="http://gateway.test/fhir", at="2026-11-02T09:00:00Z")

    # Recommendations: each with its owner and their agency, its due date and its status (open ones first).
    recommendations = [r for meeting in PERSON.reviews for r in meeting.recommendations]
    shown = rows_of(summary, "cetr", "Recommendations")
    assert len(shown) == min(len(recommendations), 10)
    for text, owner, due, status in shown:
        record = next(r for r in recommendations if r.text == text)
        agency = record.owner_agency
        assert owner == f"{record.owner.name}, {agency.name} ({agency.ods_code})" if agency.name else record.owner.name
        assert due == day(record.due)
        assert status.split(" ")[0] == record.status.value
    open_first = [s.split(" ")[0] in ("requested", "accepted", "in-progress") for *_, s in shown]
    assert open_first == sorted(open_first, reverse=True)

    # The register: the latest rating, its date and next review; the latest five decisions, newest first.
    ratings = PERSON.register_entry.ratings
    latest = ratings[-1]
    register = dict(rows_of(summary, "register", "Register rating"))
    assert register["Current rating"].lower().startswith(latest.rating.value)
    assert register["Rated"] == day(latest.at.date()) and register["Next rating review"] == day(latest.next_review)
    history = rows_of(summary, "register", "Recent rating decisions")
    expected = [(day(r.at.date()), r.rating.value, r.reason, r.author.name) for r in reversed(ratings)][:5]
    assert [(d, rating.lower().split()[0], reason, by) for d, rating, reason, by in history] == expected

    # The next review: the open review Task due soonest (here two made for the test; the person's others are done).
    keyworking = dict(rows_of(summary, "keyworking", "Keyworking"))
    assert "Next review" not in keyworking  # nothing open yet
    for task_id, due in (("review-later", "2026-12-01"), ("review-sooner", "2026-11-20")):
        assert (
            await client.put(f"/fhir/Task/{task_id}", json=review_task(task_id, due), headers=FHIR)
        ).status_code == 201
    summary = await compose(repo, DEVELOPMENT_CALLER, PID, base="http://gateway.test/fhir", at="2026-11-02T09:00:00Z")
    keyworking = dict(rows_of(summary, "keyworking", "Keyworking"))
    assert keyworking["Next review"] == "Keyworking review, due 20 Nov 2026"
    reviews = rows_of(summary, "keyworking", "Reviews and follow-up")
    assert reviews[:2] == [
        ("Keyworking review", "20 Nov 2026", "requested"),
        ("Keyworking review", "1 Dec 2026", "requested"),
    ]

    # Contact routes: through each professional's agency, by its phone and email; a parent has none.
    assert PERSON.care_team is not None
    team = rows_of(summary, "care-team", "Who is involved")
    for member in PERSON.care_team.members:
        role, name, agency, route, _involved = next(row for row in team if row[1] == member.member.name)
        if member.agency is None:
            assert (agency, route) == ("", "")
            continue
        phone, email = (t["value"] for t in PHONES[member.agency.ods_code])
        assert route == f"through their agency, phone: {phone}; email: {email}", (role, name)
    hostile = next(row for row in team if row[1] == HOSTILE)
    assert hostile[3] == ""  # an advocate with no agency and no telecom
    care_team = next(s for s in summary.sections if s.key == "care-team")
    cited = {f"{e['resourceType']}/{e['identifier'][0]['value']}" for e in care_team.entries if "identifier" in e}
    assert {f"Organization/{m.agency.ods_code}" for m in PERSON.care_team.members if m.agency} <= cited

    # The page says the same.
    page = (await client.get(SUMMARY, params={"_format": "html"})).text
    keyworker = next(m for m in PERSON.care_team.members if m.role is CareTeamRole.KEYWORKER)
    assert keyworker.agency is not None
    assert f"through their agency, phone: {PHONES[keyworker.agency.ods_code][0]['value']}" in page


def participant(**parts: Any) -> dict[str, Any]:
    return {"role": [{"text": "Social worker"}], "member": {"display": "Jo Reid"}, **parts}


ODS = "https://fhir.nhs.uk/Id/ods-organization-code"


def test_the_contact_route_falls_back_from_the_member_to_the_agency() -> None:
    council = {
        "resourceType": "Organization",
        "id": "council",
        "identifier": [{"system": ODS, "value": "LA901"}],
        "telecom": [
            {"system": "email", "value": "duty@council.example", "rank": 2},
            {"system": "phone", "value": "01632 960999", "period": {"end": "2020-01-01"}},  # ended
            {"system": "phone", "value": "01632 960111", "rank": 1},
        ],
    }
    silent = {"resourceType": "Organization", "id": "silent", "identifier": [{"system": ODS, "value": "RX4"}]}
    members = [
        participant(
            telecom=[{"system": "phone", "value": "07700 900123"}], onBehalfOf={"reference": "Organization/council"}
        ),
        participant(onBehalfOf={"reference": "Organization/council"}),
        participant(onBehalfOf={"identifier": {"system": ODS, "value": "LA901"}}),
        participant(onBehalfOf={"identifier": {"system": ODS, "value": "RX4"}}),  # its Organization has no telecom
        participant(onBehalfOf={"identifier": {"system": ODS, "value": "X99"}}),  # no Organization held
        participant(),  # a parent: no agency
    ]
    team = {"resourceType": "CareTeam", "id": "t", "participant": members}
    section = care_team([team], [council, silent], withheld=False)
    routes = [row[3] for row in section.tables[0].rows]
    assert routes == [
        "phone: 07700 900123",
        "through their agency, phone: 01632 960111; email: duty@council.example",
        "through their agency, phone: 01632 960111; email: duty@council.example",
        "through their agency",
        "through their agency",
        "",
    ]
    assert [e["id"] for e in section.entries] == ["t", "council"]  # the agency whose details are shown is cited
