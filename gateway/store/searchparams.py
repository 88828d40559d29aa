"""The search parameters the store indexes, per resource type: the R4 parameters a keyworking client uses, and ours.

Each parameter names its FHIR R4 code (as in the specification's search parameter registry), its type, the
element paths whose values it indexes and, for references, the resource types it may point to. Paths are
dot-separated element names; ``|`` separates alternatives (choice types are written out: ``effectiveDateTime``).
Arrays are walked at every step. An :class:`ExtensionStep` selects the extensions with one URL and goes on from
their ``value[x]``, which is how our own parameters (:data:`KEYWORKING`) reach the keyworking extensions.

The same registry drives write-time extraction (:mod:`gateway.store.indexing`), the SQL compiler
(:mod:`gateway.store.search`), the CapabilityStatement (:mod:`gateway.api.metadata`) and the SearchParameter
resources we publish (``scripts/build-profiles`` renders :data:`KEYWORKING` as ``profiles/keyworking/
SearchParameter-*.json``), so what the server says it supports is what it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from mappings.fhir import SUPPORTED_TYPES
from mappings.keyworking import urls

TOKEN = "token"
STRING = "string"
REFERENCE = "reference"
DATE = "date"
URI = "uri"  # indexed as a token without a system: exact match

#: Parameter types whose values live in each index table.
TABLE_OF_TYPE = {TOKEN: "token", URI: "token", STRING: "string", REFERENCE: "reference", DATE: "date"}


@dataclass(frozen=True, slots=True)
class ExtensionStep:
    """A path step: the extensions (of the element reached so far) with this URL, then their ``value[x]``.

    FHIRPath: ``extension.where(url='<url>').value``.
    """

    url: str


#: One step of a path: an element name, or extensions by URL.
Step = str | ExtensionStep


@dataclass(frozen=True, slots=True)
class SearchParameter:
    """One search parameter of one resource type."""

    name: str
    type: str  # token | string | reference | date | uri
    documentation: str = ""
    paths: tuple[tuple[Step, ...], ...] = ()  # each path a tuple of steps; () for _id/_lastUpdated
    targets: tuple[str, ...] = ()  # reference targets; empty means any type
    #: The canonical URL of a SearchParameter we publish; empty for the specification's own parameters.
    url: str = ""

    @property
    def definition(self) -> str:
        if self.url:
            return self.url
        if self.name.startswith("_"):
            return f"http://hl7.org/fhir/SearchParameter/Resource-{self.name[1:]}"
        return f"http://hl7.org/fhir/SearchParameter/{self.name}"


def fhirpath(res_type: str, param: SearchParameter) -> str:
    """The FHIRPath expression of a parameter's paths, as a SearchParameter resource states it."""

    def step(part: Step) -> str:
        return part if isinstance(part, str) else f"extension.where(url='{part.url}').value"

    return " | ".join(".".join([res_type, *(step(part) for part in path)]) for path in param.paths)


def _p(name: str, type_: str, path: str, doc: str = "", targets: tuple[str, ...] = ()) -> SearchParameter:
    paths = tuple(tuple(part.split(".")) for part in path.split("|"))
    return SearchParameter(name, type_, doc, paths, targets)


#: Parameters every type has. ``_id`` and ``_lastUpdated`` are columns of the resource table, not index rows.
COMMON: tuple[SearchParameter, ...] = (
    SearchParameter("_id", TOKEN, "Logical id of the resource"),
    SearchParameter("_lastUpdated", DATE, "When the resource version last changed"),
    _p("_tag", TOKEN, "meta.tag", "Tags applied to the resource"),
    _p("_profile", URI, "meta.profile", "Profiles the resource claims to conform to"),
    _p("_security", TOKEN, "meta.security", "Security labels applied to the resource"),
)

PATIENT = ("Patient",)
PERSONS = ("Practitioner", "PractitionerRole", "RelatedPerson", "Patient", "Organization", "CareTeam")
PRACTITIONERS = ("Practitioner", "PractitionerRole")


def _identifier(doc: str = "A business identifier") -> SearchParameter:
    return _p("identifier", TOKEN, "identifier", doc)


def _subject_and_patient(path: str, targets: tuple[str, ...] = ()) -> tuple[SearchParameter, SearchParameter]:
    return (
        _p("subject", REFERENCE, path, "Who or what the resource is about", targets),
        _p("patient", REFERENCE, path, "The patient the resource is about", PATIENT),
    )


def _names(prefix: str = "name") -> tuple[SearchParameter, ...]:
    return (
        _p("name", STRING, prefix, "Any part of the name (family, given, prefix, suffix, text)"),
        _p("family", STRING, f"{prefix}.family", "The family name"),
        _p("given", STRING, f"{prefix}.given", "A given name"),
    )


_BY_TYPE: dict[str, tuple[SearchParameter, ...]] = {
    "Patient": (
        _identifier("A patient identifier (NHS number, local child id, UPN)"),
        *_names(),
        _p("birthdate", DATE, "birthDate", "The date of birth"),
        _p("gender", TOKEN, "gender", "Administrative gender"),
        _p("active", TOKEN, "active", "Whether the record is in active use"),
        _p("address-postalcode", STRING, "address.postalCode", "A postcode in an address"),
        _p("address", STRING, "address", "Any part of an address"),
        _p("telecom", TOKEN, "telecom", "A contact value (phone, email)"),
        _p(
            "general-practitioner",
            REFERENCE,
            "generalPractitioner",
            "The registered GP or practice",
            ("Organization", "Practitioner", "PractitionerRole"),
        ),
        _p("organization", REFERENCE, "managingOrganization", "The custodian organisation", ("Organization",)),
        _p("death-date", DATE, "deceasedDateTime", "Date of death"),
    ),
    "RelatedPerson": (
        _identifier(),
        *_names(),
        _p("patient", REFERENCE, "patient", "The person this is related to", PATIENT),
        _p("relationship", TOKEN, "relationship", "The relationship to the patient"),
        _p("active", TOKEN, "active", "Whether the record is in active use"),
        _p("birthdate", DATE, "birthDate", "The date of birth"),
    ),
    "Practitioner": (
        _identifier("A practitioner identifier (e.g. SDS user id, professional registration)"),
        *_names(),
        _p("active", TOKEN, "active", "Whether the record is in active use"),
        _p("telecom", TOKEN, "telecom", "A contact value"),
    ),
    "PractitionerRole": (
        _identifier(),
        _p("practitioner", REFERENCE, "practitioner", "The practitioner in the role", ("Practitioner",)),
        _p("organization", REFERENCE, "organization", "The organisation of the role", ("Organization",)),
        _p("role", TOKEN, "code", "The role (keyworker, social worker, ...)"),
        _p("specialty", TOKEN, "specialty", "The specialty"),
        _p("active", TOKEN, "active", "Whether the role is active"),
        _p("date", DATE, "period", "The period the role is held"),
        _p("location", REFERENCE, "location", "Where the role is carried out", ("Location",)),
        _p("service", REFERENCE, "healthcareService", "The services provided", ("HealthcareService",)),
    ),
    "Organization": (
        _identifier("An organisation identifier (ODS code)"),
        _p("name", STRING, "name|alias", "The name or an alias"),
        _p("type", TOKEN, "type", "The kind of organisation"),
        _p("active", TOKEN, "active", "Whether the record is in active use"),
        _p("partof", REFERENCE, "partOf", "The organisation this is part of", ("Organization",)),
        _p("address-postalcode", STRING, "address.postalCode", "A postcode in an address"),
    ),
    "Location": (
        _identifier(),
        _p("name", STRING, "name|alias", "The name or an alias"),
        _p("type", TOKEN, "type", "The kind of location"),
        _p("status", TOKEN, "status", "active | suspended | inactive"),
        _p("organization", REFERENCE, "managingOrganization", "The managing organisation", ("Organization",)),
        _p("address-postalcode", STRING, "address.postalCode", "The postcode"),
        _p("partof", REFERENCE, "partOf", "The location this is part of", ("Location",)),
    ),
    "HealthcareService": (
        _identifier(),
        _p("name", STRING, "name", "The name of the service"),
        _p("organization", REFERENCE, "providedBy", "The organisation providing the service", ("Organization",)),
        _p("service-type", TOKEN, "type", "The type of service"),
        _p("service-category", TOKEN, "category", "The category of service"),
        _p("specialty", TOKEN, "specialty", "The specialty"),
        _p("active", TOKEN, "active", "Whether the service is active"),
        _p("location", REFERENCE, "location", "Where the service is delivered", ("Location",)),
    ),
    "CareTeam": (
        _identifier(),
        *_subject_and_patient("subject", ("Patient", "Group")),
        _p("status", TOKEN, "status", "proposed | active | suspended | inactive | entered-in-error"),
        _p("category", TOKEN, "category", "The kind of team"),
        _p("date", DATE, "period", "The period the team is in place"),
        _p("participant", REFERENCE, "participant.member", "A member of the team", PERSONS),
        _p("encounter", REFERENCE, "encounter", "The encounter the team was created in", ("Encounter",)),
        _p("name", STRING, "name", "The name of the team"),
    ),
    "EpisodeOfCare": (
        _identifier(),
        _p("patient", REFERENCE, "patient", "The young person the episode is for", PATIENT),
        _p("status", TOKEN, "status", "planned | waitlist | active | onhold | finished | cancelled"),
        _p("type", TOKEN, "type", "The kind of episode (service model)"),
        _p("date", DATE, "period", "The period of the episode"),
        _p("care-manager", REFERENCE, "careManager", "The keyworker managing the episode", PRACTITIONERS),
        _p("organization", REFERENCE, "managingOrganization", "The organisation responsible", ("Organization",)),
        _p("incoming-referral", REFERENCE, "referralRequest", "The referral", ("ServiceRequest",)),
        _p("condition", REFERENCE, "diagnosis.condition", "A condition the episode addresses", ("Condition",)),
        _p("team", REFERENCE, "team", "The care team", ("CareTeam",)),
    ),
    "Encounter": (
        _identifier(),
        *_subject_and_patient("subject", ("Patient", "Group")),
        _p("status", TOKEN, "status", "planned | arrived | triaged | in-progress | onleave | finished | cancelled"),
        _p("class", TOKEN, "class", "inpatient, outpatient, home visit, ..."),
        _p("type", TOKEN, "type", "The kind of contact"),
        _p("date", DATE, "period", "When the contact took place"),
        _p(
            "participant",
            REFERENCE,
            "participant.individual",
            "Who took part",
            ("Practitioner", "PractitionerRole", "RelatedPerson"),
        ),
        _p("practitioner", REFERENCE, "participant.individual", "A practitioner who took part", ("Practitioner",)),
        _p("episode-of-care", REFERENCE, "episodeOfCare", "The episode the contact belongs to", ("EpisodeOfCare",)),
        _p("service-provider", REFERENCE, "serviceProvider", "The organisation responsible", ("Organization",)),
        _p("location", REFERENCE, "location.location", "Where the contact took place", ("Location",)),
        _p("reason-code", TOKEN, "reasonCode", "Why the contact took place"),
        _p("part-of", REFERENCE, "partOf", "The encounter this is part of", ("Encounter",)),
        _p("based-on", REFERENCE, "basedOn", "The request this fulfils", ("ServiceRequest",)),
    ),
    "Flag": (
        _identifier(),
        *_subject_and_patient("subject", ("Patient", "Location", "Group", "Organization", "Practitioner")),
        _p("status", TOKEN, "status", "active | inactive | entered-in-error"),
        _p("category", TOKEN, "category", "The kind of flag"),
        _p("code", TOKEN, "code", "What the flag says (e.g. register RAG rating)"),
        _p("date", DATE, "period", "When the flag applies"),
        _p("author", REFERENCE, "author", "Who raised the flag", ("Practitioner", "PractitionerRole", "Organization")),
        _p("encounter", REFERENCE, "encounter", "The encounter the flag was raised in", ("Encounter",)),
    ),
    "Observation": (
        _identifier(),
        *_subject_and_patient("subject", ("Patient", "Group", "Location")),
        _p("status", TOKEN, "status", "registered | preliminary | final | amended | ..."),
        _p("category", TOKEN, "category", "The kind of observation"),
        _p("code", TOKEN, "code", "What was observed"),
        _p("date", DATE, "effectiveDateTime|effectivePeriod|effectiveInstant", "When it was observed"),
        _p("encounter", REFERENCE, "encounter", "The encounter it was made in", ("Encounter",)),
        _p("performer", REFERENCE, "performer", "Who made the observation", PERSONS),
        _p("value-concept", TOKEN, "valueCodeableConcept", "The coded value"),
        _p("value-string", STRING, "valueString", "The text value"),
    ),
    "Condition": (
        _identifier(),
        *_subject_and_patient("subject", ("Patient", "Group")),
        _p("clinical-status", TOKEN, "clinicalStatus", "active | recurrence | relapse | inactive | ..."),
        _p("verification-status", TOKEN, "verificationStatus", "unconfirmed | provisional | confirmed | ..."),
        _p("category", TOKEN, "category", "The kind of condition"),
        _p("code", TOKEN, "code", "The condition (e.g. autism, learning disability)"),
        _p("onset-date", DATE, "onsetDateTime|onsetPeriod", "When the condition started"),
        _p("recorded-date", DATE, "recordedDate", "When it was recorded"),
        _p("encounter", REFERENCE, "encounter", "The encounter it was recorded in", ("Encounter",)),
        _p("asserter", REFERENCE, "asserter", "Who asserted it", ("Practitioner", "PractitionerRole", "Patient")),
    ),
    "Task": (
        _identifier(),
        _p("subject", REFERENCE, "for", "Who or what the task is for"),
        _p("patient", REFERENCE, "for", "The patient the task is for", PATIENT),
        _p("status", TOKEN, "status", "draft | requested | received | accepted | ... | completed"),
        _p("business-status", TOKEN, "businessStatus", "The business status"),
        _p("intent", TOKEN, "intent", "The intent of the task"),
        _p("priority", TOKEN, "priority", "routine | urgent | asap | stat"),
        _p("code", TOKEN, "code", "The kind of task (e.g. a C(E)TR recommendation)"),
        _p("owner", REFERENCE, "owner", "Who is responsible", PERSONS),
        _p("requester", REFERENCE, "requester", "Who asked for the task", PERSONS),
        _p("authored-on", DATE, "authoredOn", "When the task was created"),
        _p("modified", DATE, "lastModified", "When the task last changed"),
        _p("period", DATE, "executionPeriod", "When the task is to be done (due date)"),
        _p("focus", REFERENCE, "focus", "What the task is about"),
        _p("part-of", REFERENCE, "partOf", "The task this is part of", ("Task",)),
        _p("based-on", REFERENCE, "basedOn", "The request or plan this task fulfils"),
        _p("encounter", REFERENCE, "encounter", "The encounter the task was raised in", ("Encounter",)),
    ),
    "Consent": (
        _identifier(),
        _p("patient", REFERENCE, "patient", "Who the consent applies to", PATIENT),
        _p("status", TOKEN, "status", "draft | proposed | active | rejected | inactive | entered-in-error"),
        _p("scope", TOKEN, "scope", "Which of the four areas the consent covers"),
        _p("category", TOKEN, "category", "The kind of consent"),
        _p("date", DATE, "dateTime", "When the consent was given"),
        _p("period", DATE, "provision.period", "The period the consent applies"),
        _p("actor", REFERENCE, "provision.actor.reference", "Who the consent is about sharing with", PERSONS),
        _p("action", TOKEN, "provision.action", "The actions controlled"),
        _p("organization", REFERENCE, "organization", "The custodian of the consent", ("Organization",)),
        _p("consentor", REFERENCE, "performer", "Who gave the consent", PERSONS),
        _p("purpose", TOKEN, "provision.purpose", "The purposes of use"),
    ),
    "ServiceRequest": (
        _identifier(),
        *_subject_and_patient("subject", ("Patient", "Group", "Location")),
        _p("status", TOKEN, "status", "draft | active | on-hold | revoked | completed | ..."),
        _p("intent", TOKEN, "intent", "proposal | plan | order | ..."),
        _p("category", TOKEN, "category", "The kind of request"),
        _p("code", TOKEN, "code", "What is requested"),
        _p("authored", DATE, "authoredOn", "When the request was made"),
        _p("occurrence", DATE, "occurrenceDateTime|occurrencePeriod", "When the service is to happen"),
        _p("requester", REFERENCE, "requester", "Who made the request", PERSONS),
        _p("performer", REFERENCE, "performer", "Who is asked to perform it", PERSONS),
        _p("encounter", REFERENCE, "encounter", "The encounter it was made in", ("Encounter",)),
        _p("based-on", REFERENCE, "basedOn", "What the request fulfils"),
    ),
    "CarePlan": (
        _identifier(),
        *_subject_and_patient("subject", ("Patient", "Group")),
        _p("status", TOKEN, "status", "draft | active | on-hold | revoked | completed | ..."),
        _p("intent", TOKEN, "intent", "proposal | plan | order | option"),
        _p("category", TOKEN, "category", "The kind of plan"),
        _p("date", DATE, "period", "The period the plan covers"),
        _p("care-team", REFERENCE, "careTeam", "The care team", ("CareTeam",)),
        _p("encounter", REFERENCE, "encounter", "The encounter it was made in", ("Encounter",)),
        _p("based-on", REFERENCE, "basedOn", "The plan this fulfils", ("CarePlan",)),
        _p("author", REFERENCE, "author", "Who wrote the plan", PERSONS),
    ),
    "Composition": (
        _identifier(),
        *_subject_and_patient("subject"),
        _p("status", TOKEN, "status", "preliminary | final | amended | entered-in-error"),
        _p("type", TOKEN, "type", "The kind of document"),
        _p("category", TOKEN, "category", "The category of document"),
        _p("date", DATE, "date", "When the composition was edited"),
        _p("author", REFERENCE, "author", "Who wrote it", PERSONS + ("Device",)),
        _p("encounter", REFERENCE, "encounter", "The encounter it belongs to", ("Encounter",)),
        _p("title", STRING, "title", "The title"),
    ),
    "DocumentReference": (
        _identifier(),
        *_subject_and_patient("subject"),
        _p("status", TOKEN, "status", "current | superseded | entered-in-error"),
        _p("type", TOKEN, "type", "The kind of document"),
        _p("category", TOKEN, "category", "The category of document"),
        _p("date", DATE, "date", "When the reference was created"),
        _p("author", REFERENCE, "author", "Who wrote the document", PERSONS),
        _p("custodian", REFERENCE, "custodian", "The organisation keeping the document", ("Organization",)),
        _p("encounter", REFERENCE, "context.encounter", "The context of the document", ("Encounter", "EpisodeOfCare")),
        _p("period", DATE, "context.period", "The period the document covers"),
        _p("contenttype", TOKEN, "content.attachment.contentType", "The MIME type of the content"),
    ),
    "Provenance": (
        _p("target", REFERENCE, "target", "The resources the provenance is about"),
        _p("patient", REFERENCE, "target", "The patient the provenance is about", PATIENT),
        _p("agent", REFERENCE, "agent.who", "Who took part", PERSONS + ("Device",)),
        _p("recorded", DATE, "recorded", "When the activity was recorded"),
        _p("entity", REFERENCE, "entity.what", "What was used"),
        _p("location", REFERENCE, "location", "Where the activity took place", ("Location",)),
        _p("activity", TOKEN, "activity", "The activity"),
    ),
    "AuditEvent": (
        _p("type", TOKEN, "type", "The type of event"),
        _p("subtype", TOKEN, "subtype", "The subtype of event"),
        _p("action", TOKEN, "action", "C | R | U | D | E"),
        _p("outcome", TOKEN, "outcome", "0 | 4 | 8 | 12"),
        _p("date", DATE, "recorded", "When the event was recorded"),
        _p("agent", REFERENCE, "agent.who", "Who did it", PERSONS + ("Device",)),
        _p("entity", REFERENCE, "entity.what", "What was accessed"),
        _p("patient", REFERENCE, "entity.what", "The patient whose data was accessed", PATIENT),
        _p("source", REFERENCE, "source.observer", "Who reported the event"),
        _p("site", TOKEN, "source.site", "The site of the source"),
        _p("purpose", TOKEN, "purposeOfEvent|agent.purposeOfUse", "The purpose of use"),
    ),
    "Subscription": (
        _p("status", TOKEN, "status", "requested | active | error | off"),
        _p("criteria", STRING, "criteria", "The search the subscription watches"),
        _p("type", TOKEN, "channel.type", "rest-hook | websocket | email | sms | message"),
        _p("url", URI, "channel.endpoint", "The endpoint notified"),
    ),
    "Group": (
        _identifier(),
        _p("type", TOKEN, "type", "person | animal | practitioner | ..."),
        _p("code", TOKEN, "code", "The kind of group"),
        _p("actual", TOKEN, "actual", "Whether the group is a real list of members"),
        _p("member", REFERENCE, "member.entity", "A member", ("Patient", "Practitioner", "PractitionerRole", "Group")),
        _p("name", STRING, "name", "The name of the group"),
    ),
}


def _ours(
    res_type: str, code: str, type_: str, path: tuple[Step, ...], doc: str, targets: tuple[str, ...] = ()
) -> tuple[str, SearchParameter]:
    url = f"{urls.BASE}/SearchParameter/{res_type.lower()}-{code}"
    return res_type, SearchParameter(code, type_, doc, (path,), targets, url)


#: Our own parameters, as (base resource type, parameter): published under ``profiles/keyworking/`` and served.
KEYWORKING: tuple[tuple[str, SearchParameter], ...] = (
    _ours("Flag", "rating", TOKEN, ("code",), "The register rating a Flag carries (blue, red, amber, green)"),
    _ours(
        "EpisodeOfCare",
        "keyworking-phase",
        TOKEN,
        (ExtensionStep(urls.EXT_KEYWORKING_PHASE),),
        "The current phase of a keyworking case (referred, allocated, intensive, ...)",
    ),
    _ours(
        "Task",
        "owner-agency",
        REFERENCE,
        (ExtensionStep(urls.EXT_OWNER_AGENCY),),
        "The agency responsible for a recommendation (by ODS code: owner-agency:identifier=<system>|<code>)",
        ("Organization",),
    ),
)


@dataclass(frozen=True, slots=True)
class TypeRegistry:
    """The parameters of one resource type, by name."""

    res_type: str
    by_name: dict[str, SearchParameter] = field(default_factory=dict)

    @property
    def indexed(self) -> tuple[SearchParameter, ...]:
        """The parameters extracted into index rows at write time (all but ``_id`` and ``_lastUpdated``)."""
        return tuple(p for p in self.by_name.values() if p.paths)


@cache
def registry(res_type: str) -> TypeRegistry:
    if res_type not in SUPPORTED_TYPES:
        return TypeRegistry(res_type, {})
    params = COMMON + _BY_TYPE.get(res_type, ()) + tuple(p for base, p in KEYWORKING if base == res_type)
    by_name: dict[str, SearchParameter] = {}
    for param in params:
        if param.name in by_name:
            raise ValueError(f"{res_type}: search parameter {param.name!r} is declared twice")
        by_name[param.name] = param
    return TypeRegistry(res_type, by_name)


def parameters_for(res_type: str) -> tuple[SearchParameter, ...]:
    """Every search parameter of a type, as the CapabilityStatement lists them."""
    return tuple(registry(res_type).by_name.values())


def parameter(res_type: str, name: str) -> SearchParameter | None:
    return registry(res_type).by_name.get(name)


def reference_parameters(res_type: str) -> tuple[SearchParameter, ...]:
    return tuple(p for p in registry(res_type).by_name.values() if p.type == REFERENCE)
