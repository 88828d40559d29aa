"""SSDA903 and CTF files become context on the young people the gateway knows (on both databases); unknown
people are counted and not kept; importing again changes nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from gateway.imports.context import import_ctf, import_ssda903
from gateway.store.repository import SqlFhirRepository
from mappings.keyworking import urls

FIXTURES = Path(__file__).parent.parent / "fixtures"


async def known_child(repo: SqlFhirRepository, pid: str, identifier: dict[str, str]) -> None:
    await repo.update("Patient", pid, {"resourceType": "Patient", "id": pid, "identifier": [identifier]})


async def observations(repo: SqlFhirRepository, pid: str) -> list[str]:
    result = await repo.search("Observation", [("subject", f"Patient/{pid}")])
    return sorted(r.res_id for r in result.matches)


async def test_ssda903_episodes_land_on_the_known_child(repo: SqlFhirRepository) -> None:
    await known_child(repo, "lac-1", {"system": urls.la_child_id_system("383"), "value": "LAC0001"})
    header = (FIXTURES / "local_authority" / "ssda903-header.csv").read_text(encoding="utf-8-sig")
    episodes = (FIXTURES / "local_authority" / "ssda903-episodes.csv").read_text(encoding="utf-8-sig")
    report = await import_ssda903(repo, header, episodes, "383")
    assert report.people_matched == 1 and report.written >= 1
    assert any("DOB" in e for e in report.errors) and not any("31/02/2011" in e for e in report.errors)
    written = await observations(repo, "lac-1")
    assert written and all(o.startswith("la383-LAC0001-") for o in written)
    again = await import_ssda903(repo, header, episodes, "383")
    assert again.written == report.written
    assert await observations(repo, "lac-1") == written
    versions = [(await repo.read("Observation", o)).version_id for o in written]
    assert versions == [1] * len(written)  # the same content again is no new version


async def test_ctf_pupils_get_their_school_by_upn(repo: SqlFhirRepository) -> None:
    await known_child(repo, "pupil-1", {"system": urls.UPN, "value": "A82020011234X"})
    data = (FIXTURES / "education" / "ctf-synthetic.xml").read_bytes()
    report = await import_ctf(repo, data, as_of=date(2026, 11, 25))
    assert report.people_matched == 1 and report.written == 1
    assert report.errors  # the fixture's bad UPN is reported (by pupil number, not by name)
    [observation_id] = await observations(repo, "pupil-1")
    stored = await repo.read("Observation", observation_id)
    assert b"education-context" in (stored.content or b"")
