"""SSDA903 and CTF files become context on the young people the gateway knows (on both databases); unknown
people are counted and not kept; importing again changes nothing."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from gateway.imports.context import import_ctf, import_ssda903
from gateway.origins import LA_NUMBER_SYSTEM, file_source, import_origin
from gateway.store.repository import SqlFhirRepository
from mappings.keyworking import urls

FIXTURES = Path(__file__).parent.parent / "fixtures"
HEADER = FIXTURES / "local_authority" / "ssda903-header.csv"
EPISODES = FIXTURES / "local_authority" / "ssda903-episodes.csv"
CTF = FIXTURES / "education" / "ctf-synthetic.xml"
SSDA903_ORIGIN = import_origin(
    "kwg import ssda903",
    (
        file_source(HEADER.name, HEADER.read_bytes(), what="SSDA903 Header file"),
        file_source(EPISODES.name, EPISODES.read_bytes(), what="SSDA903 Episodes file"),
    ),
    organisation="383",
    organisation_system=LA_NUMBER_SYSTEM,
)
CTF_ORIGIN = import_origin("kwg import ctf", (file_source(CTF.name, CTF.read_bytes(), what="Common Transfer File"),))


async def known_child(repo: SqlFhirRepository, pid: str, identifier: dict[str, str]) -> None:
    await repo.update("Patient", pid, {"resourceType": "Patient", "id": pid, "identifier": [identifier]})


async def observations(repo: SqlFhirRepository, pid: str) -> list[str]:
    result = await repo.search("Observation", [("subject", f"Patient/{pid}")])
    return sorted(r.res_id for r in result.matches)


async def test_ssda903_episodes_land_on_the_known_child(repo: SqlFhirRepository) -> None:
    await known_child(repo, "lac-1", {"system": urls.la_child_id_system("383"), "value": "LAC0001"})
    header = HEADER.read_text(encoding="utf-8-sig")
    episodes = EPISODES.read_text(encoding="utf-8-sig")
    report = await import_ssda903(repo, header, episodes, "383", origin=SSDA903_ORIGIN)
    assert report.people_matched == 1 and report.written >= 1
    assert any("DOB" in e for e in report.errors) and not any("31/02/2011" in e for e in report.errors)
    written = await observations(repo, "lac-1")
    assert written and all(o.startswith("la383-LAC0001-") for o in written)
    again = await import_ssda903(repo, header, episodes, "383", origin=SSDA903_ORIGIN)
    assert again.written == report.written
    assert await observations(repo, "lac-1") == written
    versions = [(await repo.read("Observation", o)).version_id for o in written]
    assert versions == [1] * len(written)  # the same content again is no new version


async def test_ctf_pupils_get_their_school_by_upn(repo: SqlFhirRepository) -> None:
    await known_child(repo, "pupil-1", {"system": urls.UPN, "value": "A82020011234X"})
    data = CTF.read_bytes()
    report = await import_ctf(repo, data, as_of=date(2026, 11, 25), origin=CTF_ORIGIN)
    assert report.people_matched == 1 and report.written == 1
    assert report.errors  # the fixture's bad UPN is reported (by pupil number, not by name)
    [observation_id] = await observations(repo, "pupil-1")
    stored = await repo.read("Observation", observation_id)
    assert b"education-context" in (stored.content or b"")


async def provenances(repo: SqlFhirRepository, target: str) -> list[dict[str, Any]]:
    return [orjson.loads(r.content or b"{}") for r in (await repo.search("Provenance", [("target", target)])).matches]


async def test_an_ssda903_import_names_the_client_and_both_files_and_a_repeat_adds_none(
    repo: SqlFhirRepository,
) -> None:
    await known_child(repo, "lac-1", {"system": urls.la_child_id_system("383"), "value": "LAC0001"})
    texts = (HEADER.read_text(encoding="utf-8-sig"), EPISODES.read_text(encoding="utf-8-sig"))
    await import_ssda903(repo, *texts, "383", origin=SSDA903_ORIGIN)
    written = await observations(repo, "lac-1")
    [provenance] = await provenances(repo, f"Observation/{written[0]}")
    assert {t["reference"] for t in provenance["target"]} == {f"Observation/{o}/_history/1" for o in written}
    [agent] = provenance["agent"]
    assert agent["who"]["identifier"]["value"] == "kwg import ssda903"
    assert agent["onBehalfOf"]["identifier"] == {"system": LA_NUMBER_SYSTEM, "value": "383"}
    digests = {e["what"]["identifier"]["value"] for e in provenance["entity"]}
    assert digests == {hashlib.sha256(p.read_bytes()).hexdigest() for p in (HEADER, EPISODES)}
    assert provenance["activity"]["coding"][0]["code"] == "CREATE"
    await import_ssda903(repo, *texts, "383", origin=SSDA903_ORIGIN)  # nothing changes: no second Provenance
    assert len(await provenances(repo, f"Observation/{written[0]}")) == 1


async def test_a_ctf_import_names_the_file(repo: SqlFhirRepository) -> None:
    await known_child(repo, "pupil-1", {"system": urls.UPN, "value": "A82020011234X"})
    await import_ctf(repo, CTF.read_bytes(), as_of=date(2026, 11, 25), origin=CTF_ORIGIN)
    [observation_id] = await observations(repo, "pupil-1")
    [provenance] = await provenances(repo, f"Observation/{observation_id}")
    assert provenance["target"] == [{"reference": f"Observation/{observation_id}/_history/1"}]
    assert provenance["agent"][0]["who"]["identifier"]["value"] == "kwg import ctf"
    assert provenance["entity"][0]["what"]["identifier"]["value"] == hashlib.sha256(CTF.read_bytes()).hexdigest()
    assert "onBehalfOf" not in provenance["agent"][0]
    # A later file (another date: the context's effective date moves): a second Provenance, naming version 2.
    await import_ctf(repo, CTF.read_bytes(), as_of=date(2027, 11, 25), origin=CTF_ORIGIN)
    first, second = sorted(await provenances(repo, f"Observation/{observation_id}"), key=lambda p: p["recorded"])
    assert second["target"] == [{"reference": f"Observation/{observation_id}/_history/2"}]
    assert second["activity"]["coding"][0]["code"] == "UPDATE"
