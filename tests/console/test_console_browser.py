"""The operations console in headless Chromium against a real gateway: sign-in (a wrong password refused and
audited), each page showing the scenario's data, keyboard navigation to the main controls, replay of a dead
letter, DOM-level accessibility checks and screenshots that are real pictures."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console import scenario
from tests.console.browser_checks import accessibility_problems, checked_screenshot, focused, rgb_pixels, tab_to
from tests.console.conftest import OPERATOR, PASSWORD, SUBSCRIPTION, ConsoleGateway, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def sign_in(page: Any, gateway: ConsoleGateway, target: str = "/console/destinations") -> None:
    page.goto(f"{gateway.base}{target}")
    assert "/console/signin" in page.url
    page.fill("#name", OPERATOR)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{target}")
    page.wait_for_load_state()


def audit_events(gateway: ConsoleGateway, **params: str) -> list[dict[str, Any]]:
    bundle = httpx.get(f"{gateway.base}/fhir/AuditEvent", params={**params, "_count": "500"}, timeout=30).json()
    return [e["resource"] for e in bundle.get("entry", [])]


def rows(page: Any, table: str) -> list[list[str]]:
    found: list[list[str]] = page.eval_on_selector_all(
        f"#{table} tbody tr", "trs => trs.map(tr => [...tr.children].map(c => c.textContent.trim()))"
    )
    return found


def test_a_wrong_password_is_refused_and_audited_and_the_keyboard_signs_in(
    page: Any, console_gateway: ConsoleGateway, tmp_path: Path
) -> None:
    page.goto(f"{console_gateway.base}/console/quality")
    assert "/console/signin?next=/console/quality" in page.url  # every page needs sign-in
    checked_screenshot(page, tmp_path / "signin.png")
    assert accessibility_problems(page) == []
    page.fill("#name", OPERATOR)
    page.fill("#password", "not-the-password")
    with page.expect_response(lambda r: r.url.endswith("/console/signin") and r.request.method == "POST") as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 401
    assert "The name or password is wrong." in page.inner_text("[role=alert]")
    assert "/console/signin" in page.url

    def refused_is_audited() -> bool:
        return any(
            "console sign-in refused" in e.get("outcomeDesc", "") for e in audit_events(console_gateway, outcome="4")
        )

    wait_for(refused_is_audited, 15, "the refused sign-in's AuditEvent")

    # By keyboard alone: the skip link comes first, then the form; Enter signs in and goes where we were going.
    page.keyboard.press("Tab")
    assert "skip-link" in focused(page)["cls"]
    tab_to(page, "#name")
    page.keyboard.type(OPERATOR)
    page.keyboard.press("Tab")
    assert focused(page)["id"] == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/quality")
    assert page.locator("h1").inner_text() == "Register data quality"


def test_the_destinations_page_shows_health_queue_and_dead_letters(
    page: Any, console_gateway: ConsoleGateway, tmp_path: Path
) -> None:
    sign_in(page, console_gateway)
    table = page.locator("table")
    headers = table.locator("thead th").all_inner_texts()
    assert headers[:5] == ["Destination", "Source", "Connector", "Recipient profile", "Health"]
    file_row, api_row, subscription_row = rows(page, "destinations")
    name, source, connector, recipient, health, queue, delivered, dead, last_success, error_rate = file_row
    assert (name, source, connector, recipient) == ("trust-record", "destinations file", "fhir", "nhs-provider")
    assert health in ("dead letters", "healthy", "failing")
    assert int(dead) >= 1 and int(delivered) >= 1 and queue.isdigit()
    assert last_success != "never" and error_rate.endswith("%")
    assert api_row == ["council-record", "API", "fhir", "local-authority", "disabled", "0", "0", "0", "never", "0.0%"]
    sub = SUBSCRIPTION["id"]
    assert subscription_row[:5] == [f"subscription-{sub}", f"Subscription/{sub}", "rest-hook", "nhs-provider", "idle"]
    assert accessibility_problems(page) == []
    checked_screenshot(page, tmp_path / "destinations.png")


def test_the_message_log_searches_and_a_dead_letter_is_replayed_by_keyboard(
    page: Any, console_gateway: ConsoleGateway, tmp_path: Path
) -> None:
    sign_in(page, console_gateway, "/console/messages")
    hl7 = rows(page, "hl7-messages")
    assert [(r[2], r[3], r[4]) for r in hl7] == [("ADT^A01", "RX4", "processed")]
    # Search with the form: dead letters only.
    page.select_option("#kind", "deliveries")
    page.select_option("#status", "dead")
    page.click("form.filters button[type=submit]")
    dead = rows(page, "deliveries")
    assert len(dead) == 1 and dead[0][2] == "Patient" and dead[0][4] == "dead letter", dead
    assert f"Patient/{scenario.POISON}" in dead[0][5]
    assert page.locator("#hl7-messages").count() == 0  # only the deliveries were asked for
    # By message type and date.
    today = datetime.now(UTC).date().isoformat()
    page.goto(f"{console_gateway.base}/console/messages?message_type=ADT%5EA01&on={today}")
    assert len(rows(page, "hl7-messages")) == 1 and page.locator("#deliveries").count() == 0
    page.goto(f"{console_gateway.base}/console/messages?on=2001-01-01")
    assert "No HL7 v2 messages match." in page.inner_text("main")
    assert "No deliveries match." in page.inner_text("main")

    # The destination is fixed; the operator replays the dead letter with the keyboard.
    httpx.post(f"{console_gateway.destination}/_faults", json={"reject_ids": []})
    page.goto(f"{console_gateway.base}/console/messages?kind=deliveries&status=dead")
    assert accessibility_problems(page) == []
    checked_screenshot(page, tmp_path / "dead-letters.png")
    delivery_id = dead[0][0]
    tab_to(page, f"button[aria-label='Replay delivery {delivery_id}']")
    state = focused(page)
    assert state["outline"] != "none" and state["outlineWidth"] != "0px", state  # focus is visible
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/messages?kind=deliveries&replayed=*")
    assert f"Delivery {delivery_id} is back in its lane" in page.inner_text("[role=status]")

    def delivered() -> bool:
        found = httpx.get(f"{console_gateway.base}/admin/deliveries/{delivery_id}", timeout=10).json()
        return bool(found["status"] == "delivered")

    wait_for(delivered, 60, "the replayed delivery to arrive")
    log = httpx.get(f"{console_gateway.destination}/_log").json()["changes"]
    assert any(c.get("url") == f"Patient/{scenario.POISON}" for c in log)
    page.goto(f"{console_gateway.base}/console/messages?kind=deliveries&status=dead")
    assert "No deliveries match." in page.inner_text("main")


def test_a_replay_without_the_csrf_token_is_refused(page: Any, console_gateway: ConsoleGateway) -> None:
    sign_in(page, console_gateway)
    answer = page.request.post(f"{console_gateway.base}/console/deliveries/1/replay", form={"csrf": "forged"})
    assert answer.status == 403


def test_the_data_quality_page_lists_what_needs_doing(
    page: Any, console_gateway: ConsoleGateway, tmp_path: Path
) -> None:
    sign_in(page, console_gateway, "/console/quality")
    unallocated = rows(page, "unallocated")
    assert [(r[0], r[1], r[3]) for r in unallocated] == [(scenario.AMIRA, "blue", "LA 383")]  # Bo has a keyworker
    overdue = rows(page, "overdue-recommendations")
    expected = httpx.get(
        f"{console_gateway.base}/api/v1/recommendations",
        params={"person_id": scenario.AMIRA, "overdue": "true"},
        timeout=10,
    ).json()["items"]
    assert sorted(r[1] for r in overdue) == sorted(r["due"] for r in expected) == ["2025-02-21", "2025-03-31"]
    assert {r[0] for r in overdue} == {scenario.AMIRA}
    reviews = rows(page, "overdue-reviews")
    assert [(r[0], r[1], r[3]) for r in reviews] == [(scenario.BO, "2026-03-30", "yes")]
    post_admission = rows(page, "post-admission")
    assert [r[0] for r in post_admission] == [scenario.AMIRA]
    assert rows(page, "by-rating") == [["1", "1", "0", "0"]]  # blue, red, amber, green
    assert page.locator("#by-rating thead th").all_inner_texts() == ["blue", "red", "amber", "green"]
    assert rows(page, "by-place") == [["LA 383", "1", "0", "0", "0"], ["LA 901", "0", "1", "0", "0"]]
    assert accessibility_problems(page) == []
    checked_screenshot(page, tmp_path / "quality.png")
    # The view is audited with the people it showed.
    wait_for(
        lambda: any(
            e.get("outcomeDesc") == "console: register data quality"
            for e in audit_events(console_gateway, patient=f"Patient/{scenario.BO}")
        ),
        15,
        "the data-quality page view's AuditEvent",
    )


def test_a_persons_timeline_is_in_date_order_with_a_chart(
    page: Any, console_gateway: ConsoleGateway, tmp_path: Path
) -> None:
    sign_in(page, console_gateway, "/console/people")
    tab_to(page, "#person_id")
    page.keyboard.type(scenario.AMIRA)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/console/people/{scenario.AMIRA}")
    events = rows(page, "timeline")
    kinds = [e[1] for e in events]
    assert kinds == ["rating", "rating", "review", "admission", "rating"], events
    assert [e[2] for e in events if e[1] == "rating"] == ["Rated amber", "Rated red", "Rated blue"]
    assert [e[0] for e in events] == sorted(e[0] for e in events)
    svg = page.locator("svg.rating-chart")
    assert svg.get_attribute("role") == "img"
    text = page.inner_text("#chart-text")
    assert text.startswith("Register rating over time: amber from 2025-01-14; red from 2025-02-03; blue from 2026-07-")
    assert page.locator("svg.rating-chart circle").count() == 3
    assert accessibility_problems(page) == []
    image = checked_screenshot(page, tmp_path / "timeline.png")
    reds = sum(1 for r, g, b in rgb_pixels(image) if r > 150 and g < 60 and b < 60)
    assert reds > 20, "the chart's red point is not drawn"

    page.goto(f"{console_gateway.base}/console/people/{scenario.BO}")
    assert [e[1] for e in rows(page, "timeline")] == ["rating", "contact"]

    def viewed() -> bool:
        return any(
            e.get("outcomeDesc") == "console: timeline"
            and e["agent"][0]["who"]["identifier"]["value"] == f"console:{OPERATOR}"
            for e in audit_events(console_gateway, patient=f"Patient/{scenario.AMIRA}")
        )

    wait_for(viewed, 15, "the timeline view's AuditEvent")


def test_the_skip_link_moves_focus_to_the_main_content(page: Any, console_gateway: ConsoleGateway) -> None:
    sign_in(page, console_gateway)
    page.keyboard.press("Tab")
    assert "skip-link" in focused(page)["cls"], focused(page)
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"
    for target in ("Message log", "Register data quality", "Person timeline", "Destinations"):
        link = page.get_by_role("link", name=target, exact=True)
        link.focus()
        page.keyboard.press("Enter")
        page.wait_for_load_state()
        assert page.locator("a[aria-current=page]").inner_text() == target
