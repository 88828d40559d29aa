"""FHIR R4 rest-hook Subscriptions through the sync engine, with real processes.

``kwg serve`` (with its worker and relay on the embedded broker) on SQLite and on PostgreSQL, and a receiving HTTP
server in the test process. A Subscription is created through ``/fhir/Subscription``; changes to matching resources
arrive as notifications (with the channel headers), others do not; a receiver answering 500 then recovering gets
the notification once and the Subscription goes error → active; a 400 makes a dead letter and status error; ``off``
stops deliveries. Whether a change was notified is read from the delivery log (the relay works in outbox order, so
once a later change has its delivery, an earlier one without a delivery was judged and left out).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.access.policy import AccessPolicy
from gateway.auth import DEVELOPMENT_CALLER, Caller
from gateway.errors import UnprocessableRecord
from gateway.store.repository import SqlFhirRepository
from gateway.sync.subscriptions import SubscriptionTarget, accept, destination_name, match, parse_criteria
from tests.conftest import _POSTGRES, DIALECTS
from tests.processes import RunningGateway, running_gateway, scratch_postgres_database
from tests.sync.conftest import destination
from tests.sync.receiver import Receiver, running_receiver

JSON = {"Content-Type": "application/fhir+json"}
NHS = "https://fhir.nhs.uk/Id/nhs-number"
ENV = {
    "KWG_LOG_LEVEL": "WARNING",
    "KWG_SWEEP_INTERVAL": "1",
    "KWG_SUBSCRIPTION_BACKOFF_BASE_SECONDS": "0.2",
    "KWG_SUBSCRIPTION_ERROR_AFTER_ATTEMPTS": "2",
    "KWG_SUBSCRIPTION_MAX_ATTEMPTS": "6",
}


@pytest.fixture(scope="module", params=DIALECTS)
def gateway(request: pytest.FixtureRequest) -> Iterator[RunningGateway]:
    if request.param == "sqlite":
        with running_gateway(env=ENV) as running:
            yield running
        return
    if _POSTGRES.url is None:
        pytest.skip(f"PostgreSQL tests not run: {_POSTGRES.reason}")
    with scratch_postgres_database(_POSTGRES.url) as db, running_gateway(db, env=ENV) as running:
        yield running


@pytest.fixture(scope="module")
def receiver(gateway: RunningGateway) -> Iterator[Receiver]:
    """One receiver per gateway (per database), so each sees only its own gateway's notifications."""
    with running_receiver() as r:
        yield r


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def admin(gateway: RunningGateway) -> str:
    return gateway.url.removesuffix("/fhir") + "/admin"


def subscription(endpoint: str, criteria: str, **channel: Any) -> dict[str, Any]:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Keyworker follow-up",
        "criteria": criteria,
        "channel": {"type": "rest-hook", "endpoint": endpoint, **channel},
    }


def create(client: httpx.Client, gateway: RunningGateway, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(f"{gateway.url}/Subscription", json=body, headers=JSON)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def person(client: httpx.Client, gateway: RunningGateway, pid: str, nhs: str) -> None:
    body = {"resourceType": "Patient", "id": pid, "identifier": [{"system": NHS, "value": nhs}]}
    assert client.put(f"{gateway.url}/Patient/{pid}", json=body, headers=JSON).status_code in (200, 201)


def flag(client: httpx.Client, gateway: RunningGateway, fid: str, pid: str, text: str = "Keyworker allocated") -> None:
    body = {
        "resourceType": "Flag",
        "id": fid,
        "status": "active",
        "code": {"text": text},
        "subject": {"reference": f"Patient/{pid}"},
    }
    assert client.put(f"{gateway.url}/Flag/{fid}", json=body, headers=JSON).status_code in (200, 201), fid


def deliveries(client: httpx.Client, gateway: RunningGateway, sub_id: str, **params: str) -> list[dict[str, Any]]:
    got = client.get(f"{admin(gateway)}/deliveries", params={"destination": destination_name(sub_id), **params})
    items: list[dict[str, Any]] = got.json()["items"]
    return items


def status(client: httpx.Client, gateway: RunningGateway, sub_id: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"{gateway.url}/Subscription/{sub_id}").json()
    return found


def test_exactly_the_matching_change_arrives_with_the_channel_headers(
    gateway: RunningGateway, receiver: Receiver, client: httpx.Client
) -> None:
    person(client, gateway, "sub-amira", "9000000009")
    person(client, gateway, "sub-other", "9000000017")
    sub = create(
        client,
        gateway,
        subscription(
            f"{receiver.url}/match",
            f"Flag?patient.identifier={NHS}|9000000009",
            payload="application/fhir+json",
            header=["Authorization: Bearer hook-secret", "X-Team: north"],
        ),
    )
    assert sub["status"] == "active"
    flag(client, gateway, "f-other", "sub-other")  # first: the relay judges it before the matching one
    flag(client, gateway, "f-amira", "sub-amira")
    [arrived] = wait_for(lambda: receiver.at("/match/"), "the matching Flag at the receiver")
    assert (arrived.method, arrived.path) == ("PUT", "/match/Flag/f-amira")
    assert arrived.headers["authorization"] == "Bearer hook-secret"
    assert arrived.headers["x-team"] == "north"
    assert arrived.headers["x-subscription"] == f"Subscription/{sub['id']}"
    assert arrived.headers["content-type"] == "application/fhir+json"
    assert orjson.loads(arrived.body)["subject"] == {"reference": "Patient/sub-amira"}
    wait_for(lambda: deliveries(client, gateway, sub["id"], status="delivered"), "the delivery to be recorded")
    assert [d["resource"] for d in deliveries(client, gateway, sub["id"])] == ["Flag/f-amira"]
    assert [r.path for r in receiver.at("/match/")] == ["/match/Flag/f-amira"]


def test_a_ping_carries_no_resource(gateway: RunningGateway, receiver: Receiver, client: httpx.Client) -> None:
    person(client, gateway, "sub-ping", "9000000025")
    sub = create(client, gateway, subscription(f"{receiver.url}/ping", "Flag?patient=Patient/sub-ping"))
    flag(client, gateway, "f-ping", "sub-ping")
    [ping] = wait_for(lambda: receiver.at("/ping"), "the ping")
    assert (ping.method, ping.path, ping.body) == ("POST", "/ping", b"")
    assert ping.headers["x-subscription"] == f"Subscription/{sub['id']}"


def test_a_failing_receiver_gets_it_once_after_recovering_and_the_status_follows(
    gateway: RunningGateway, receiver: Receiver, client: httpx.Client
) -> None:
    person(client, gateway, "sub-flaky", "9000000033")
    receiver.answer_first("/flaky", [500, 500, 500])
    sub = create(
        client,
        gateway,
        subscription(f"{receiver.url}/flaky", "Flag?patient=Patient/sub-flaky", payload="application/fhir+json"),
    )
    flag(client, gateway, "f-flaky", "sub-flaky")
    wait_for(lambda: any(r.answered == 200 for r in receiver.at("/flaky")), "the notification to get through")
    wait_for(lambda: status(client, gateway, sub["id"])["status"] == "active", "the status back to active")
    assert [r.answered for r in receiver.at("/flaky")] == [500, 500, 500, 200]  # delivered once
    history = client.get(f"{gateway.url}/Subscription/{sub['id']}/_history").json()
    seen = [e["resource"]["status"] for e in reversed(history["entry"])]
    assert seen[0] == "active" and "error" in seen and seen[-1] == "active", seen
    errors = [e["resource"].get("error", "") for e in history["entry"] if e["resource"]["status"] == "error"]
    assert any("500" in e for e in errors), errors
    assert "error" not in status(client, gateway, sub["id"])


def test_a_refusal_is_a_dead_letter_and_the_subscription_shows_error(
    gateway: RunningGateway, receiver: Receiver, client: httpx.Client
) -> None:
    person(client, gateway, "sub-refuse", "9000000041")
    receiver.answer_first("/refuse", [400])
    sub = create(client, gateway, subscription(f"{receiver.url}/refuse", "Flag?patient=Patient/sub-refuse"))
    flag(client, gateway, "f-refuse", "sub-refuse")
    [dead] = wait_for(lambda: deliveries(client, gateway, sub["id"], status="dead"), "the dead letter")
    assert dead["resource"] == "Flag/f-refuse"
    errored = wait_for(
        lambda: (s := status(client, gateway, sub["id"]))["status"] == "error" and s, "the status to be error"
    )
    assert "400" in errored["error"] or "refused" in errored["error"]
    assert len(receiver.at("/refuse")) == 1  # not retried


def test_off_stops_deliveries(gateway: RunningGateway, receiver: Receiver, client: httpx.Client) -> None:
    person(client, gateway, "sub-off", "9000000068")
    off = create(client, gateway, subscription(f"{receiver.url}/off", "Flag?patient=Patient/sub-off"))
    body = {**status(client, gateway, off["id"]), "status": "off"}
    answer = client.put(f"{gateway.url}/Subscription/{off['id']}", json=body, headers=JSON)
    assert answer.status_code == 200 and answer.json()["status"] == "off"
    sentinel = create(client, gateway, subscription(f"{receiver.url}/sentinel", "Flag?patient=Patient/sub-off"))
    flag(client, gateway, "f-off", "sub-off")
    wait_for(lambda: receiver.at("/sentinel"), "the sentinel subscription's notification")
    assert deliveries(client, gateway, sentinel["id"])  # the change was relayed ...
    assert deliveries(client, gateway, off["id"]) == []  # ... and not to the subscription that is off
    assert receiver.at("/off") == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"criteria": "Spaceship?name=x"}, "Subscription.criteria"),
        ({"criteria": "Flag?colour=red"}, "Subscription.criteria"),
        ({"criteria": ""}, "Subscription.criteria"),
        ({"criteria": "Flag?_count=5"}, "Subscription.criteria"),
        ({"channel": {"type": "websocket", "endpoint": "http://127.0.0.1:9/x"}}, "Subscription.channel.type"),
        ({"channel": {"type": "rest-hook", "endpoint": "ftp://example.org"}}, "Subscription.channel.endpoint"),
        (
            {"channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/x", "payload": "text/csv"}},
            "Subscription.channel.payload",
        ),
        (
            {"channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/x", "header": ["no colon"]}},
            "Subscription.channel.header",
        ),
    ],
)
def test_a_bad_subscription_is_refused_naming_the_element(
    gateway: RunningGateway, client: httpx.Client, change: dict[str, Any], field: str
) -> None:
    body = {**subscription("http://127.0.0.1:9/x", "Flag?status=active"), **change}
    answer = client.post(f"{gateway.url}/Subscription", json=body, headers=JSON)
    assert answer.status_code == 422, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert field in outcome["issue"][0]["expression"]


# -- in process: the owner's access rules, and criteria parsing ----------------------------------------------------

LA = Caller(client_id="la-app", organisation="LA901", purpose="DIRECT_CARE", organisation_type="local-authority")
SCHOOL = Caller(client_id="school-app", organisation="100001", purpose="DIRECT_CARE", organisation_type="school")


async def test_a_subscription_is_notified_only_of_what_its_owner_may_see(store: SqlFhirRepository) -> None:
    for pid in ("la-known", "la-unknown"):
        await store.update("Patient", pid, {"resourceType": "Patient", "id": pid})
    team = {
        "resourceType": "CareTeam",
        "id": "team-1",
        "status": "active",
        "subject": {"reference": "Patient/la-known"},
        "participant": [{"onBehalfOf": {"identifier": {"value": "LA901"}}}],
    }
    await store.update("CareTeam", "team-1", team)
    body = subscription("http://127.0.0.1:9/hook", "Flag?status=active", payload="application/fhir+json")
    accepted = await accept(store, LA, body)
    assert accepted["status"] == "active"
    target = SubscriptionTarget("s1", parse_criteria(accepted["criteria"]), LA, destination("subscription-s1"))
    events = []
    for n, pid in enumerate(("la-known", "la-unknown"), start=1):
        content = {"resourceType": "Flag", "id": f"flag-{pid}", "status": "active", "code": {"text": "x"}}
        await store.update("Flag", f"flag-{pid}", {**content, "subject": {"reference": f"Patient/{pid}"}})
        events.append(SimpleNamespace(id=n, res_type="Flag", res_id=f"flag-{pid}", method="update"))
    events.append(SimpleNamespace(id=3, res_type="Flag", res_id="flag-la-known", method="delete"))
    matched = await match(store, AccessPolicy(), [target], events)
    assert matched == {"subscription-s1": {1}}  # not the person LA901 has no relationship with; no deletions
    # A development owner sees both; a school may not subscribe to Flags at all.
    dev = SubscriptionTarget("s2", target.criteria, DEVELOPMENT_CALLER, destination("subscription-s2"))
    assert (await match(store, AccessPolicy(), [dev], events))["subscription-s2"] == {1, 2}
    with pytest.raises(UnprocessableRecord) as refused:
        await accept(store, SCHOOL, body)
    assert refused.value.issues[0].expression == ("Subscription.criteria",)


@given(
    st.sampled_from(["Flag", "EpisodeOfCare", "Patient", "Nope", "Subscription", ""]),
    st.lists(st.tuples(st.text(max_size=10), st.text(max_size=10)), max_size=4),
    st.sampled_from(["?", "", "??"]),
)
def test_criteria_parse_or_are_refused_naming_the_element(res_type: str, params: list[Any], sep: str) -> None:
    text = res_type + sep + urlencode(params)
    try:
        criteria = parse_criteria(text)
    except UnprocessableRecord as exc:
        assert exc.issues[0].expression == ("Subscription.criteria",)
    else:
        assert criteria.res_type == res_type and criteria.res_type not in ("Subscription", "Nope")


def test_destination_names_fit_the_delivery_log() -> None:
    assert destination_name("abc-123") == "subscription-abc-123"
    odd = destination_name("Mixed.Case.Id")
    assert odd.startswith("subscription-h") and len(odd) <= 64 and odd != destination_name("mixed.case.id")
