"""A synthetic Integrated Care System: young people with their keyworking records, generated deterministically.

Each young person (index ``i``) is generated from a random stream seeded by ``(seed, i)`` alone, so any one of
them can be regenerated without the others: the loader generates them in chunks, the load driver regenerates a
sample to build its request paths and expected answers, and the ingest test generates fresh ones past the end.

Per young person: a Patient (NHS number with a valid Modulus 11 check digit, name, birthDate 0-25 years before
:data:`AS_OF`), a CareTeam (active; keyworker and social worker), two EpisodeOfCare (one active keyworking case,
one finished DSR entry; ``careManager`` a keyworker from the pool), 8-12 finished Encounters over the two years
before :data:`AS_OF`, a Flag (DSR RAG rating) and two Tasks: 17 resources on average. Shared pools: 40
Organizations, 500 keyworkers and 1,000 social workers (Practitioners).

Ids are UUIDs drawn from the same streams; references are ``Type/id``. :func:`transaction_entries` turns a
young person into transaction Bundle entries with ``urn:uuid`` references between them.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
SDS_SYSTEM = "https://fhir.nhs.uk/Id/sds-user-id"
KWG = "https://keyworking-gateway.org/fhir/CodeSystem/"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"

#: The day the ICS is "as of": birth dates and contact dates count back from it (fixed, so runs are repeatable).
AS_OF = date(2026, 11, 1)
#: ``Encounter?date=ge`` cut-off used by the benchmark: about half of each young person's contacts are after it.
ENCOUNTER_CUTOFF = AS_OF - timedelta(days=365)

ORGANIZATIONS = 40
KEYWORKERS = 500
SOCIAL_WORKERS = 1000

GIVEN = (
    "Alex", "Sam", "Charlie", "Jordan", "Riley", "Ashley", "Jamie", "Morgan", "Taylor", "Casey", "Aisha", "Mohammed",
    "Olivia", "Noah", "Amelia", "Leo", "Isla", "Oscar", "Ava", "Arthur", "Mia", "Muhammad", "Freya", "Harry", "Priya",
    "Kwame", "Zofia", "Ivy", "Theo", "Nia",
)  # fmt: skip
FAMILY = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson", "Wright",
    "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Khan", "Ali", "Hughes",
    "Edwards", "Nowak", "Okafor", "Clarke", "Murphy", "O'Brien", "Ölander",
)  # fmt: skip
CITIES = (("Leeds", "LS"), ("Bradford", "BD"), ("Wakefield", "WF"), ("Huddersfield", "HD"), ("Halifax", "HX"))
CONTACT_TYPES = ("session", "home-visit", "hospital-visit", "school-visit", "monitoring-call", "group-work")
RATINGS = ("red", "amber", "green", "blue")
TASK_STATUSES = ("requested", "in-progress", "completed")


def nhs_check_digit(body: str) -> int | None:
    """The Modulus 11 check digit of a 9-digit NHS number body; None when the body has no valid one."""
    total = sum(int(d) * (10 - i) for i, d in enumerate(body))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def nhs_number(index: int) -> str:
    """A valid, unique test-range (999...) NHS number for young person ``index`` (0 <= index < 500,000).

    Body ``999000000 + 2 * index``, or the next body up when that one has no check digit (two neighbours never
    both lack one: their weighted sums differ by 2 modulo 11).
    """
    if not 0 <= index < 500_000:
        raise ValueError("young person index out of the NHS test range")
    for body in (999_000_000 + 2 * index, 999_000_001 + 2 * index):
        check = nhs_check_digit(str(body))
        if check is not None:
            return f"{body}{check}"
    raise AssertionError("unreachable: one of two neighbouring bodies has a check digit")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _concept(system: str, code: str, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [_coding(system, code)]}
    if text:
        concept["text"] = text
    return concept


def _ref(res_type: str, res_id: str) -> dict[str, str]:
    return {"reference": f"{res_type}/{res_id}"}


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Pools:
    """The shared Organizations and Practitioners every young person's records point at."""

    organizations: list[str]
    keyworkers: list[str]
    social_workers: list[str]
    resources: list[dict[str, Any]]


def pools(seed: int) -> Pools:
    rng = random.Random(f"kwg-ics-pools-{seed}")
    resources: list[dict[str, Any]] = []
    organizations: list[str] = []
    for n in range(ORGANIZATIONS):
        res_id = _uuid(rng)
        organizations.append(res_id)
        kind = ("Local Authority", "NHS Trust", "Keyworking Service", "ICB")[n % 4]
        resources.append(
            {
                "resourceType": "Organization",
                "id": res_id,
                "identifier": [{"system": ODS_SYSTEM, "value": f"R{n:03d}"}],
                "active": True,
                "name": f"{CITIES[n % len(CITIES)][0]} {kind} {n}",
            }
        )
    keyworkers = [_uuid(rng) for _ in range(KEYWORKERS)]
    social_workers = [_uuid(rng) for _ in range(SOCIAL_WORKERS)]
    for n, res_id in enumerate(keyworkers + social_workers):
        resources.append(
            {
                "resourceType": "Practitioner",
                "id": res_id,
                "identifier": [{"system": SDS_SYSTEM, "value": f"{500_000_000 + n}"}],
                "active": True,
                "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)], "prefix": ["Ms"]}],
                "telecom": [{"system": "email", "value": f"worker{n}@example.nhs.uk"}],
            }
        )
    return Pools(organizations, keyworkers, social_workers, resources)


@dataclass(slots=True)
class YoungPerson:
    """One young person's resources, and the facts the benchmark checks its answers against."""

    index: int
    nhs: str
    patient_id: str
    care_team_id: str = ""
    active_episode_id: str = ""
    care_manager_id: str = ""
    encounter_starts: dict[str, datetime] = field(default_factory=dict)  # Encounter id -> period.start
    resources: list[dict[str, Any]] = field(default_factory=list)

    def encounters_since(self, cutoff: date) -> list[str]:
        """Ids of the Encounters starting on or after ``cutoff``, latest first (what the date search returns)."""
        since = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)
        found = [(start, res_id) for res_id, start in self.encounter_starts.items() if start >= since]
        return [res_id for _start, res_id in sorted(found, reverse=True)]


def young_person(seed: int, index: int, pool: Pools) -> YoungPerson:
    rng = random.Random(seed * 1_000_003 + index)
    nhs = nhs_number(index)
    person = YoungPerson(index=index, nhs=nhs, patient_id=_uuid(rng))
    patient = _ref("Patient", person.patient_id)
    org = rng.choice(pool.organizations)
    keyworker = rng.choice(pool.keyworkers)
    social_worker = rng.choice(pool.social_workers)
    city, area = rng.choice(CITIES)
    born = AS_OF - timedelta(days=rng.randrange(0, 25 * 365))
    out = person.resources
    out.append(
        {
            "resourceType": "Patient",
            "id": person.patient_id,
            "identifier": [{"system": NHS_SYSTEM, "value": nhs}],
            "active": True,
            "name": [{"use": "official", "family": rng.choice(FAMILY), "given": rng.sample(GIVEN, rng.randint(1, 2))}],
            "gender": rng.choice(("female", "male", "other", "unknown")),
            "birthDate": born.isoformat(),
            "address": [
                {
                    "line": [f"{rng.randint(1, 200)} {rng.choice(('High', 'Church', 'Mill', 'Station'))} Street"],
                    "city": city,
                    "postalCode": f"{area}{rng.randint(1, 20)} {rng.randint(1, 9)}{rng.choice('ABDEFGHJ')}X",
                }
            ],
        }
    )
    started = AS_OF - timedelta(days=rng.randrange(30, 700))
    person.care_team_id = _uuid(rng)
    out.append(
        {
            "resourceType": "CareTeam",
            "id": person.care_team_id,
            "status": "active",
            "name": "Keyworking team",
            "subject": patient,
            "period": {"start": started.isoformat()},
            "participant": [
                {"role": [_concept(KWG + "care-team-role", "keyworker")], "member": _ref("Practitioner", keyworker)},
                {
                    "role": [_concept(KWG + "care-team-role", "social-worker")],
                    "member": _ref("Practitioner", social_worker),
                },
            ],
            "managingOrganization": [_ref("Organization", org)],
        }
    )
    person.active_episode_id = _uuid(rng)
    person.care_manager_id = keyworker
    out.append(
        {
            "resourceType": "EpisodeOfCare",
            "id": person.active_episode_id,
            "status": "active",
            "type": [_concept(KWG + "episode-type", "keyworking", "Keyworking")],
            "patient": patient,
            "managingOrganization": _ref("Organization", org),
            "period": {"start": started.isoformat()},
            "careManager": _ref("Practitioner", keyworker),
            "team": [_ref("CareTeam", person.care_team_id)],
        }
    )
    dsr_start = started - timedelta(days=rng.randrange(30, 365))
    out.append(
        {
            "resourceType": "EpisodeOfCare",
            "id": _uuid(rng),
            "status": "finished",
            "type": [_concept(KWG + "episode-type", "dsr", "Dynamic Support Register")],
            "patient": patient,
            "managingOrganization": _ref("Organization", org),
            "period": {"start": dsr_start.isoformat(), "end": started.isoformat()},
            "careManager": _ref("Practitioner", rng.choice(pool.keyworkers)),
        }
    )
    episode = _ref("EpisodeOfCare", person.active_episode_id)
    for _ in range(rng.randint(8, 12)):
        res_id = _uuid(rng)
        day = AS_OF - timedelta(days=rng.randrange(1, 730))
        start = datetime(day.year, day.month, day.day, rng.randint(9, 16), rng.randrange(0, 60, 5), tzinfo=UTC)
        person.encounter_starts[res_id] = start
        contact = rng.choice(CONTACT_TYPES)
        out.append(
            {
                "resourceType": "Encounter",
                "id": res_id,
                "status": "finished",
                "class": _coding(ACT_CODE, "HH" if contact == "home-visit" else "AMB"),
                "type": [_concept(KWG + "contact-type", contact)],
                "subject": patient,
                "episodeOfCare": [episode],
                "participant": [{"individual": _ref("Practitioner", keyworker)}],
                "period": {"start": _instant(start), "end": _instant(start + timedelta(minutes=60))},
                "serviceProvider": _ref("Organization", org),
            }
        )
    out.append(
        {
            "resourceType": "Flag",
            "id": _uuid(rng),
            "status": "active",
            "category": [_concept(FLAG_CATEGORY, "clinical")],
            "code": _concept(KWG + "dsr-rating", rng.choice(RATINGS), "DSR RAG rating"),
            "subject": patient,
            "period": {"start": dsr_start.isoformat()},
            "author": _ref("Practitioner", keyworker),
        }
    )
    for n in range(2):
        authored = AS_OF - timedelta(days=rng.randrange(1, 365))
        out.append(
            {
                "resourceType": "Task",
                "id": _uuid(rng),
                "status": rng.choice(TASK_STATUSES),
                "intent": "order",
                "priority": "routine",
                "description": ("Arrange a community C(E)TR", "Review the support plan with the family")[n],
                "for": patient,
                "owner": _ref("Practitioner", keyworker),
                "authoredOn": authored.isoformat() + "T10:00:00Z",
                "executionPeriod": {"end": (authored + timedelta(days=28)).isoformat()},
            }
        )
    return person


def _rewrite(value: Any, urls: dict[str, str]) -> Any:
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and ref in urls and len(value) == 1:
            return {"reference": urls[ref]}
        return {k: _rewrite(v, urls) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, urls) for v in value]
    return value


def transaction_entries(person: YoungPerson) -> list[dict[str, Any]]:
    """The young person's resources as transaction entries (POST), referring to each other by ``urn:uuid``.

    References to the shared pools stay ``Type/id`` (those resources are already stored).
    """
    urls = {f"{r['resourceType']}/{r['id']}": f"urn:uuid:{r['id']}" for r in person.resources}
    entries = []
    for res in person.resources:
        body = _rewrite({k: v for k, v in res.items() if k != "id"}, urls)
        entries.append(
            {
                "fullUrl": f"urn:uuid:{res['id']}",
                "resource": body,
                "request": {"method": "POST", "url": body["resourceType"]},
            }
        )
    return entries
