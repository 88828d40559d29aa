"""The console's parts without a browser: operator accounts, the session cookie, the signing secret, the chart,
the pure shaping of the pages' data, the CLI; and the pages over ASGI on SQLite and PostgreSQL (sign-in required,
refusals audited, CSRF enforced, the data-quality and timeline pages built from the repository)."""

from __future__ import annotations

import re
import stat
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.responses import Response
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.cli import app as kwg
from gateway.console import views
from gateway.console.chart import LEVELS, RatingPoint, description, rating_chart
from gateway.console.devoperator import OPERATOR as DEV_OPERATOR
from gateway.console.devoperator import ensure_development_operator
from gateway.console.operators import NAME, add_operator, authenticate, load, operators_path
from gateway.console.secret import console_secret, secret_path, weak_secret_problem
from gateway.console.session import Session, SessionCookies, csrf_ok, fresh
from gateway.errors import InvalidRequest
from gateway.settings import Settings
from gateway.store.repository import SqlFhirRepository
from mappings.keyworking import urls
from tests.api.test_domain_api import API, record

PASSWORD = "correct horse battery staple"
STRONG = "Zq8-w1Lr_5xVb0pT7nK3mYc9dF2gH6jS4aE"


# -- operators --------------------------------------------------------------------------------------------------


def test_an_operator_signs_in_with_their_password_only(tmp_path: Path) -> None:
    path = tmp_path / "ops.json"
    add_operator(path, "jo.bloggs", "qx9", "icb", PASSWORD)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PASSWORD not in path.read_text() and "$argon2id$" in path.read_text()
    found = authenticate(path, "jo.bloggs", PASSWORD)
    assert found is not None and (found.organisation, found.organisation_type) == ("QX9", "icb")
    assert authenticate(path, "jo.bloggs", PASSWORD + "!") is None
    assert authenticate(path, "nobody", PASSWORD) is None
    add_operator(path, "jo.bloggs", "RX9", "nhs-provider", "a new password here")  # a new password replaces the old
    assert authenticate(path, "jo.bloggs", PASSWORD) is None
    assert list(load(path)) == ["jo.bloggs"]


@pytest.mark.parametrize(
    ("name", "organisation", "org_type", "password", "says"),
    [
        ("Jo Bloggs", "QX9", "icb", PASSWORD, "operator name"),
        ("jo", "Q", "icb", PASSWORD, "ODS code"),
        ("jo", "QX9", "hospital", PASSWORD, "organisation type"),
        ("jo", "QX9", "icb", "short", "at least 12"),
    ],
)
def test_bad_operator_details_are_refused(
    tmp_path: Path, name: str, organisation: str, org_type: str, password: str, says: str
) -> None:
    with pytest.raises(InvalidRequest, match=says):
        add_operator(tmp_path / "ops.json", name, organisation, org_type, password)
    assert not (tmp_path / "ops.json").exists()


@hypothesis_settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_any_name_is_taken_or_refused_by_the_name_rule(name: str) -> None:
    from gateway.console.operators import check_new

    if NAME.match(name):
        check_new(name, "QX9", "icb", PASSWORD)
    else:
        with pytest.raises(InvalidRequest):
            check_new(name, "QX9", "icb", PASSWORD)


def test_the_development_operator_is_made_once_with_a_private_password(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    name, password_file = ensure_development_operator(settings)
    assert name == DEV_OPERATOR and stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text().strip()
    assert authenticate(operators_path(settings), name, password) is not None
    assert ensure_development_operator(settings) == (name, password_file)
    assert password_file.read_text().strip() == password  # not changed by a second start
    production = Settings(home=tmp_path, env="production", auth="on", console_secret=STRONG)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        ensure_development_operator(production)


def test_kwg_console_add_operator_reads_the_password_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KWG_HOME", str(tmp_path))
    runner = CliRunner()
    added = runner.invoke(
        kwg, ["console", "add-operator", "sam", "--organisation", "rx9", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert added.exit_code == 0, added.output
    assert authenticate(tmp_path / "console-operators.json", "sam", PASSWORD) is not None
    refused = runner.invoke(kwg, ["console", "add-operator", "sam", "--password-stdin"], input="short\n")
    assert refused.exit_code == 2 and "at least 12" in refused.output
    listed = runner.invoke(kwg, ["console", "list-operators"])
    assert listed.output.strip() == "sam\tRX9\ticb" and "argon2" not in listed.output


# -- the session and its secret -----------------------------------------------------------------------------------


def _cookie(response: Response) -> str:
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=lax" in header and "Path=/console" in header
    found = re.match(r"kwg_console=([^;]+)", header)
    assert found is not None
    return found.group(1)


def test_the_session_cookie_is_signed_and_expires() -> None:
    cookies = SessionCookies("s" * 20 + "another-part-0123", 3600, secure=True)
    response = Response()
    session = fresh("jo")
    cookies.write(response, session)
    assert "Secure" in response.headers["set-cookie"]
    value = _cookie(response)
    assert cookies.read(value) == session
    assert cookies.read(value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]) is None  # tampered
    assert SessionCookies("a different secret entirely!!", 3600, secure=True).read(value) is None
    assert SessionCookies("s" * 20 + "another-part-0123", -1, secure=True).read(value) is None  # expired
    assert csrf_ok(session, session.csrf) and not csrf_ok(session, "guess") and not csrf_ok(None, session.csrf)
    assert fresh("jo").csrf != session.csrf


@hypothesis_settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_any_cookie_value_reads_as_no_session_rather_than_failing(value: str) -> None:
    assert SessionCookies("x" * 40, 3600, secure=False).read(value) in (None, Session(csrf=value))


def test_production_refuses_a_weak_console_secret(tmp_path: Path) -> None:
    for weak in ("change-me", "short", "a" * 40):
        assert weak_secret_problem(weak) is not None
        with pytest.raises(ValidationError, match="KWG_CONSOLE_SECRET"):
            Settings(home=tmp_path, env="production", auth="on", console_secret=weak)  # type: ignore[arg-type]
    strong = STRONG
    production = Settings(home=tmp_path, env="production", auth="on", console_secret=strong)  # type: ignore[arg-type]
    assert console_secret(production) == strong
    assert console_secret(Settings(home=tmp_path, env="production", auth="on")) is None  # type: ignore[arg-type]  # console off


def test_development_makes_one_private_secret_under_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    first = console_secret(settings)
    assert first is not None and weak_secret_problem(first) is None
    assert console_secret(settings) == first
    assert stat.S_IMODE(secret_path(settings).stat().st_mode) == 0o600


# -- the chart ------------------------------------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 1, 1)), st.sampled_from(LEVELS)),
        max_size=12,
    )
)
def test_the_chart_is_valid_svg_with_a_point_per_rating_and_a_text_alternative(points: list[Any]) -> None:
    ratings = [RatingPoint(on, rating) for on, rating in points]
    markup = rating_chart(ratings, date(2026, 11, 25))
    if not ratings:
        assert markup == ""
        return
    svg = ET.fromstring(str(markup))
    assert svg.get("role") == "img"
    assert len(svg.findall(f"{SVG}circle")) == len(ratings)
    text = svg.findtext(f"{SVG}desc") or ""
    assert text == description(sorted(ratings, key=lambda p: p.on))
    for point in ratings:
        assert f"{point.rating} from {point.on.isoformat()}" in text
    for circle in svg.findall(f"{SVG}circle"):
        assert 0 <= float(circle.get("cx", "-1")) <= 720 and 0 <= float(circle.get("cy", "-1")) <= 220


# -- shaping the pages' data --------------------------------------------------------------------------------------


def flag(person: str, rating: str) -> dict[str, Any]:
    return {
        "resourceType": "Flag",
        "code": {"coding": [{"system": urls.CS_DSR_RATING, "code": rating}]},
        "subject": {"reference": f"Patient/{person}"},
        "period": {"start": "2026-10-01T10:00:00+00:00"},
    }


def patient(person: str, la: str | None) -> dict[str, Any]:
    identifiers = [{"system": urls.la_child_id_system(la), "value": "C1"}] if la else []
    return {"resourceType": "Patient", "id": person, "identifier": identifiers}


def test_red_and_blue_people_without_a_keyworker_and_the_counts() -> None:
    flags = [flag("a", "red"), flag("b", "blue"), flag("c", "amber"), flag("d", "red")]
    patients = {"a": patient("a", "383"), "b": patient("b", None), "d": patient("d", "383")}
    cases = [{"resourceType": "EpisodeOfCare", "patient": {"reference": "Patient/d"}, "careManager": {"display": "K"}}]
    found = views.unallocated(flags, patients, views.allocated_people(cases))
    assert [(u.person_id, u.rating, u.place) for u in found] == [("b", "blue", "not recorded"), ("a", "red", "LA 383")]
    by_rating, by_place = views.counts(flags, patients)
    assert by_rating == {"blue": 1, "red": 2, "amber": 1, "green": 0}
    assert by_place["LA 383"] == {"blue": 0, "red": 2, "amber": 0, "green": 0}


def test_due_tasks_are_overdue_only_when_open_and_past_due() -> None:
    today = date(2026, 11, 25)

    def task(status: str, due: date) -> dict[str, Any]:
        return {
            "resourceType": "Task",
            "status": status,
            "for": {"reference": "Patient/p"},
            "description": "do it",
            "restriction": {"period": {"end": due.isoformat()}},
        }

    tasks = [
        task("requested", today - timedelta(days=1)),
        task("requested", today),
        task("completed", date(2020, 1, 1)),
    ]
    overdue = views.due_tasks(tasks, today, overdue_only=True)
    assert [(t.due, t.overdue) for t in overdue] == [("2026-11-24", True)]
    assert len(views.due_tasks(tasks, today, overdue_only=False)) == 3


def test_the_timeline_puts_everything_in_date_order() -> None:
    observation = {
        "resourceType": "Observation",
        "valueCodeableConcept": {"coding": [{"system": urls.CS_DSR_RATING, "code": "red"}]},
        "effectiveDateTime": "2026-02-01T09:00:00+00:00",
        "note": [{"text": "crisis"}],
    }
    contact = {
        "resourceType": "Encounter",
        "status": "finished",
        "type": [{"coding": [{"system": urls.CS_CONTACT_TYPE, "code": "home-visit", "display": "Home visit"}]}],
        "period": {"start": "2026-01-10T10:00:00+00:00"},
    }
    stay = {
        "resourceType": "Encounter",
        "status": "in-progress",
        "class": {"code": "IMP", "display": "inpatient encounter"},
        "period": {"start": "2026-03-01T10:00:00+00:00"},
    }
    events, points = views.timeline_events([observation], [stay, contact])
    assert [(e.kind, e.title) for e in events] == [
        ("contact", "Contact: Home visit"),
        ("rating", "Rated red"),
        ("admission", "Hospital stay (inpatient encounter)"),
    ]
    assert points == [RatingPoint(date(2026, 2, 1), "red")]


# -- the pages over ASGI, on both databases ----------------------------------------------------------------------


@pytest.fixture
async def console(settings: Settings, repo: SqlFhirRepository, tmp_path: Path) -> AsyncIterator[tuple[Any, Any]]:
    local = settings.model_copy(update={"home": tmp_path})
    add_operator(operators_path(local), "jo", "QX9", "icb", PASSWORD)
    app = create_app(local)
    app.state.repository = repo
    await app.state.audit.start()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
        yield app, c
    await app.state.audit.stop()
    await app.state.engine.dispose()


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def audit_descriptions(app: Any, repo: SqlFhirRepository, *params: tuple[str, str]) -> list[str]:
    await app.state.audit.flush()
    result = await repo.search("AuditEvent", [*params, ("_count", "500")])
    import orjson

    return [str(orjson.loads(m.content).get("outcomeDesc")) for m in result.matches if m.content]


async def test_the_pages_need_sign_in_and_refusals_are_audited(
    console: tuple[Any, httpx.AsyncClient], repo: SqlFhirRepository
) -> None:
    app, client = console
    for path in ("/console/destinations", "/console/messages", "/console/quality", "/console/people/x"):
        answer = await client.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/signin"), path
    form = await client.get("/console/signin")
    assert form.headers["content-security-policy"].startswith("default-src 'none'")
    csrf = csrf_of(form)
    wrong = await client.post("/console/signin", data={"name": "jo", "password": "nope", "csrf": csrf})
    assert wrong.status_code == 401 and "The name or password is wrong." in wrong.text
    assert "console sign-in refused: unknown name or wrong password" in await audit_descriptions(
        app, repo, ("outcome", "4")
    )
    forged = await client.post("/console/signin", data={"name": "jo", "password": PASSWORD, "csrf": "forged"})
    assert forged.status_code == 403
    signed_in = await client.post(
        "/console/signin", data={"name": "jo", "password": PASSWORD, "csrf": csrf, "next": "//evil.example/x"}
    )
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/console/destinations"
    page = await client.get("/console/destinations")
    assert page.status_code == 200 and '<html lang="en-GB">' in page.text
    assert csrf_of(page) != csrf  # a sign-in gets a new CSRF token
    assert (await client.post("/console/deliveries/1/replay", data={"csrf": csrf})).status_code == 403
    assert (await client.post("/console/signout", data={"csrf": csrf_of(page)})).status_code == 303


async def test_the_quality_and_timeline_pages_show_the_register(
    console: tuple[Any, httpx.AsyncClient], repo: SqlFhirRepository
) -> None:
    app, client = console
    assert (await client.put(f"{API}/people/yp-amira-khan", json=record("person"))).status_code == 201
    assert (
        await client.put(f"{API}/register-entries/dsr-amira-2025", json=record("register-entry"))
    ).status_code == 201
    meeting = {k: v for k, v in record("review-meeting", case_id=None).items() if v is not None}
    assert (await client.put(f"{API}/reviews/{meeting['id']}", json=meeting)).status_code == 201
    csrf = csrf_of(await client.get("/console/signin"))
    await client.post("/console/signin", data={"name": "jo", "password": PASSWORD, "csrf": csrf})

    quality = await client.get("/console/quality")
    assert quality.status_code == 200
    unallocated = quality.text.split('id="unallocated"')[1].split("</table>")[0]
    assert "yp-amira-khan" in unallocated and "<td>red</td>" in unallocated and "LA 383" in unallocated
    overdue = quality.text.split('id="overdue-recommendations"')[1].split("</table>")[0]
    assert overdue.count("<tr>") == 3  # the header and the two open recommendations
    timeline = await client.get("/console/people/yp-amira-khan")
    assert timeline.status_code == 200
    assert timeline.text.index("Rated amber") < timeline.text.index("Rated red") < timeline.text.index("Review:")
    assert "amber from 2025-01-14; red from 2025-02-03" in timeline.text
    assert (await client.get("/console/people/nobody-here")).status_code == 404
    seen = await audit_descriptions(app, repo, ("patient", "Patient/yp-amira-khan"))
    assert "console: timeline" in seen and "console: register data quality" in seen
