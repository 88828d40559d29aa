"""The console's routes: sign-in and sign-out, and four pages (destinations, the message log, register data
quality, a person's timeline). Every page needs a signed-in operator; every page view, sign-in and refused sign-in
is audited; every POST carries the session's CSRF token. The operator reads as a caller of their organisation, so
the access rules (legitimate relationship, sharing profile) apply as they do to API clients."""

from __future__ import annotations

import logging
import pathlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Path, Query, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from gateway.api.access import check_person
from gateway.api.deps import MAX_ROW_ID, RowId, repository
from gateway.audit.events import AuditEntry
from gateway.auth import Caller
from gateway.console import views
from gateway.console.chart import description, rating_chart
from gateway.console.operators import Operator, authenticate, load, operators_path
from gateway.console.secret import console_secret
from gateway.console.session import COOKIE, Session, SessionCookies, csrf_ok, fresh
from gateway.errors import Forbidden, InvalidRequest, NotFound
from gateway.settings import Environment, Settings
from gateway.store.timeutil import now_us, to_instant
from gateway.sync import deliveries
from gateway.sync.destinations import Destination
from gateway.sync.directory import Directory

log = logging.getLogger(__name__)
HERE = pathlib.Path(__file__).parent
router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")
#: Pages may load their own stylesheet and nothing else; forms post only back to the console.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PERSON_ID = r"^[A-Za-z0-9\-.]{1,64}$"


@dataclass(frozen=True, slots=True)
class Console:
    cookies: SessionCookies
    operators_file: pathlib.Path


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the console when it has a session secret (always in development; in production when configured)."""
    secret = console_secret(settings)
    if secret is None:
        log.info("the operations console is off: set KWG_CONSOLE_SECRET to serve it")
        return
    cookies = SessionCookies(
        secret, settings.console_session_minutes * 60, secure=settings.env is Environment.PRODUCTION
    )
    app.state.console = Console(cookies, operators_path(settings))
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")


def _console(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


def caller_for(operator: Operator) -> Caller:
    return Caller(
        client_id=f"console:{operator.name}",
        organisation=operator.organisation,
        purpose="ADMINISTRATION",
        organisation_type=operator.organisation_type,
    )


def _session(request: Request) -> Session | None:
    return _console(request).cookies.read(request.cookies.get(COOKIE))


def _signed_in(request: Request) -> tuple[Session, Operator] | None:
    session = _session(request)
    if session is None or session.operator is None:
        return None
    operator = load(_console(request).operators_file).get(session.operator)
    return None if operator is None else (session, operator)


def _render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers["content-security-policy"] = CSP
    return response


def _to_signin(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(
        f"/console/signin?next={target}" if target.startswith("/console/") else "/console/signin", status_code=303
    )


def _audit_view(
    request: Request, caller: Caller, page: str, *, patients: tuple[str, ...] = (), query: str = ""
) -> None:
    request.app.state.audit.interaction(
        caller,
        "search-type" if query else "read",
        patients=patients,
        query=query or None,
        description=f"console: {page}",
    )


def _base(session: Session, operator: Operator, page: str) -> dict[str, Any]:
    return {"csrf": session.csrf, "operator": operator, "page": page}


# -- sign-in ------------------------------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console/") and "//" not in target and "\\" not in target:
        return target
    return "/console/destinations"


@router.get("")
async def home() -> Response:
    return RedirectResponse("/console/destinations", status_code=303)


@router.get("/signin")
async def signin_form(request: Request, next_page: Annotated[str | None, Query(alias="next")] = None) -> Response:
    session = _session(request) or fresh()
    response = _render(request, "signin.html", {"csrf": session.csrf, "next": _safe_next(next_page), "error": None})
    _console(request).cookies.write(response, session)
    return response


@router.post("/signin")
async def signin(
    request: Request,
    name: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    next_page: Annotated[str, Form(alias="next", max_length=500)] = "",
) -> Response:
    console = _console(request)
    session = _session(request)
    if not csrf_ok(session, csrf):
        raise Forbidden("the sign-in form is stale or forged: reload the page and sign in again")
    operator = authenticate(console.operators_file, name.strip(), password)
    if operator is None:
        request.app.state.audit.record(
            AuditEntry(
                at=to_instant(now_us()),
                client_id="console:unknown",
                organisation="UNKNOWN",
                purpose="AUDIT",
                interaction="operation",
                outcome="4",
                description="console sign-in refused: unknown name or wrong password",
            )
        )
        log.warning("console sign-in refused")
        assert session is not None
        context = {"csrf": session.csrf, "next": _safe_next(next_page), "error": "The name or password is wrong."}
        return _render(request, "signin.html", context, status=401)
    request.app.state.audit.interaction(caller_for(operator), "operation", description="console: signed in")
    response = RedirectResponse(_safe_next(next_page), status_code=303)
    console.cookies.write(response, fresh(operator.name))  # a new CSRF token with every sign-in
    return response


@router.post("/signout")
async def signout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    if not csrf_ok(_session(request), csrf):
        raise Forbidden("the form is stale or forged: reload the page and try again")
    response = RedirectResponse("/console/signin", status_code=303)
    _console(request).cookies.clear(response)
    return response


# -- pages ----------------------------------------------------------------------------------------------------------


@router.get("/destinations")
async def destinations_page(request: Request) -> Response:
    signed_in = _signed_in(request)
    if signed_in is None:
        return _to_signin(request)
    session, operator = signed_in
    rows = await views.destination_rows(request.app.state.engine, await _destinations(request))
    _audit_view(request, caller_for(operator), "destinations")
    return _render(request, "destinations.html", {**_base(session, operator, "destinations"), "rows": rows})


async def _destinations(request: Request) -> list[tuple[str, Destination]]:
    """Every destination now (the file's, the API's and the Subscriptions'), as the sync engine sees them."""
    directory = getattr(request.app.state, "console_directory", None)
    if directory is None:
        file_destinations = tuple(request.app.state.destinations)
        directory = Directory(request.app.state.engine, request.app.state.settings, file_destinations)
        request.app.state.console_directory = directory
    return views.listed(await directory.current(), directory.file_names)


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"the date {text!r} is not YYYY-MM-DD") from None


@router.get("/messages")
async def messages_page(
    request: Request,
    kind: Annotated[str, Query(pattern="^(all|hl7|deliveries)$")] = "all",
    status: Annotated[str, Query(pattern="^(|received|processed|failed|pending|delivered|dead|withheld)$")] = "",
    destination: Annotated[str, Query(max_length=100)] = "",
    message_type: Annotated[str, Query(max_length=40)] = "",
    on: Annotated[str, Query(max_length=10)] = "",
    replayed: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> Response:
    signed_in = _signed_in(request)
    if signed_in is None:
        return _to_signin(request)
    session, operator = signed_in
    wanted = views.LogFilter(kind, status or None, destination or None, message_type.strip() or None, _day(on))
    hl7, sent = await views.message_log(request.app.state.engine, wanted)
    _audit_view(request, caller_for(operator), "message log", query=str(request.url.query) or "all")
    context = {
        **_base(session, operator, "messages"),
        "filter": wanted,
        "on": on,
        "hl7": hl7,
        "sent": sent,
        "replayed": replayed,
        "destinations": [d.name for _, d in await _destinations(request)],
    }
    return _render(request, "messages.html", context)


def _nudge(request: Request, lanes: list[tuple[str, int]]) -> int:
    from gateway.sync.worker import create_celery, nudge

    if getattr(request.app.state, "celery", None) is None:
        request.app.state.celery = create_celery(request.app.state.settings)
    return nudge(request.app.state.celery, lanes)


@router.post("/deliveries/{delivery_id}/replay")
async def replay(request: Request, delivery_id: RowId, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    signed_in = _signed_in(request)
    if signed_in is None:
        return _to_signin(request)
    session, operator = signed_in
    if not csrf_ok(session, csrf):
        raise Forbidden("the form is stale or forged: reload the page and try again")
    engine = request.app.state.engine
    if await deliveries.get_delivery(engine, delivery_id) is None:
        raise NotFound(f"there is no delivery {delivery_id}")
    lanes = await deliveries.replay(engine, [delivery_id])
    _nudge(request, lanes)
    request.app.state.audit.interaction(
        caller_for(operator), "operation", description=f"console: replayed delivery {delivery_id}"
    )
    return RedirectResponse(f"/console/messages?kind=deliveries&replayed={delivery_id}", status_code=303)


@router.get("/quality")
async def quality_page(request: Request) -> Response:
    signed_in = _signed_in(request)
    if signed_in is None:
        return _to_signin(request)
    session, operator = signed_in
    caller = caller_for(operator)
    report = await views.quality(request, caller, repository(request), datetime.now(UTC).date())
    people = {u.person_id for u in report.unallocated}
    for tasks in (report.overdue_recommendations, report.overdue_reviews, report.post_admission):
        people |= {t.person_id for t in tasks}
    _audit_view(request, caller, "register data quality", patients=tuple(sorted(people)), query="data-quality")
    return _render(request, "quality.html", {**_base(session, operator, "quality"), "report": report})


@router.get("/people")
async def find_person(request: Request, person_id: Annotated[str, Query(pattern=PERSON_ID)] = "") -> Response:
    signed_in = _signed_in(request)
    if signed_in is None:
        return _to_signin(request)
    session, operator = signed_in
    if person_id:
        return RedirectResponse(f"/console/people/{person_id}", status_code=303)
    _audit_view(request, caller_for(operator), "find a person")
    return _render(request, "person.html", {**_base(session, operator, "people"), "person_id": None})


@router.get("/people/{person_id}")
async def person_page(request: Request, person_id: Annotated[str, Path(pattern=PERSON_ID)]) -> Response:
    signed_in = _signed_in(request)
    if signed_in is None:
        return _to_signin(request)
    session, operator = signed_in
    caller = caller_for(operator)
    repo = repository(request)
    await repo.read("Patient", person_id)  # 404 / 410 for an unknown or deleted person
    await check_person(request, caller, repo, person_id)  # 403, audited, without a legitimate relationship
    events, points = await views.timeline(request, caller, repo, person_id)
    _audit_view(request, caller, "timeline", patients=(person_id,))
    context = {
        **_base(session, operator, "people"),
        "person_id": person_id,
        "events": events,
        "chart": rating_chart(points, datetime.now(UTC).date()),
        "chart_text": description(points),
    }
    return _render(request, "person.html", context)
