"""The AuditEvent hash chain: sealing, and what verification catches (edits, removals, insertions, copies)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.chain import ChainHead, digest, link_of, seal, verify
from gateway.audit.events import AuditEntry, audit_event


def events(n: int, stream: str = "s1") -> list[dict[str, Any]]:
    built = [
        {
            **audit_event(
                AuditEntry(
                    at=f"2026-11-25T10:00:{i:02d}Z",
                    client_id="trust-ehr",
                    organisation="RX4",
                    purpose="DIRECT_CARE",
                    interaction="read",
                    references=(f"Encounter/e{i}",),
                    patients=(f"p{i % 3}",),
                )
            ),
            "id": f"ae-{stream}-{i}",
        }
        for i in range(n)
    ]
    sealed, _head = seal(built, ChainHead(stream))
    return sealed


def test_a_sealed_trail_verifies_and_reports_its_head() -> None:
    trail = events(5)
    report = verify(reversed(trail))  # order of reading does not matter
    assert report.intact and report.checked == 5 and report.unchained == 0
    head = report.heads["s1"]
    assert head.sequence == 5 and head.last_hash == link_of(trail[-1]).hash  # type: ignore[union-attr]


def test_sealing_continues_from_a_head_across_batches() -> None:
    first, head = seal([{"resourceType": "AuditEvent", "id": "a"}], ChainHead("s"))
    second, head = seal([{"resourceType": "AuditEvent", "id": "b"}], head)
    assert head.sequence == 2
    assert verify(first + second).intact
    assert not verify(second).intact  # the first event of the stream is missing


def test_an_edited_event_is_caught() -> None:
    trail = events(4)
    trail[2]["outcome"] = "4"
    report = verify(trail)
    assert not report.intact
    assert any("#3" in p and "edited" in p for p in report.problems)


def test_a_removed_event_is_caught() -> None:
    trail = events(4)
    del trail[1]
    report = verify(trail)
    assert any("missing" in p for p in report.problems)


def test_a_replaced_event_is_caught_even_with_a_fresh_hash() -> None:
    """A forger who rewrites an event and recomputes its hash still breaks the link to the next event."""
    trail = events(4)
    forged = copy.deepcopy(trail[1])
    forged["agent"][0]["who"]["identifier"]["value"] = "someone-else"
    chain = next(e for e in forged["entity"] if e.get("description") == "audit hash chain")
    chain["detail"] = [d for d in chain["detail"] if d["type"] != "hash"]
    chain["detail"].append({"type": "hash", "valueString": digest(forged)})
    trail[1] = forged
    report = verify(trail)
    assert not report.intact
    assert any("#3" in p and "does not follow" in p for p in report.problems)


def test_a_copied_event_is_caught() -> None:
    trail = events(3)
    report = verify([*trail, copy.deepcopy(trail[1])])
    assert any("repeated" in p for p in report.problems)


def test_streams_are_checked_apart_and_unchained_events_counted() -> None:
    report = verify([*events(3, "a"), *events(2, "b"), {"resourceType": "AuditEvent", "id": "old"}])
    assert report.intact and report.unchained == 1 and set(report.heads) == {"a", "b"}


@given(st.integers(min_value=1, max_value=12), st.data())
def test_any_single_change_to_any_event_is_caught(n: int, data: st.DataObject) -> None:
    trail = events(n)
    victim = data.draw(st.integers(min_value=0, max_value=n - 1))
    trail[victim]["recorded"] = data.draw(
        st.text(min_size=1, max_size=20).filter(lambda t: t != trail[victim]["recorded"])
    )
    assert not verify(trail).intact
