"""ConsentDecision ⇄ Consent (our RegisterConsent profile), for register inclusion and for sharing with a C(E)TR.

Who consented (or made the best-interests decision) is ``performer``, when is ``dateTime``; the basis is the
``best-interests-decision`` extension and the policy the decision was made under (Mental Capacity Act 2005 s4 for
best interests, NHS England's DSR and C(E)TR code of practice for consent). ``category`` says what it covers.
"""

from __future__ import annotations

from typing import Any

from mappings.keyworking import urls
from mappings.keyworking.elements import (
    Resource,
    codeable,
    ext,
    ext_value,
    fhir_datetime,
    meta,
    person_ref,
    read_code,
    read_datetime,
    read_person,
    ref,
)
from mappings.keyworking.errors import NotOurShape
from mappings.keyworking.records import ConsentBasis, ConsentDecision, ConsentStatus, SharingProvision
from mappings.keyworking.terminology import ConsentCategory

FHIR_STATUS: dict[ConsentStatus, str] = {
    ConsentStatus.PROPOSED: "proposed",
    ConsentStatus.GIVEN: "active",
    ConsentStatus.REFUSED: "rejected",
    ConsentStatus.WITHDRAWN: "inactive",
}
_FROM_FHIR_STATUS = {v: k for k, v in FHIR_STATUS.items()}


def to_fhir(consent: ConsentDecision, *, consent_id: str, person_id: str, category: ConsentCategory) -> Resource:
    best_interests = consent.basis is ConsentBasis.BEST_INTERESTS
    return {
        "resourceType": "Consent",
        "id": consent_id,
        "meta": meta(urls.REGISTER_CONSENT),
        "extension": [ext(urls.EXT_BEST_INTERESTS_DECISION, "valueBoolean", best_interests)],
        "status": FHIR_STATUS[consent.status],
        "scope": {"coding": [{"system": urls.CONSENT_SCOPE, "code": "patient-privacy", "display": "Privacy Consent"}]},
        "category": [codeable(category)],
        "patient": ref("Patient", person_id),
        "dateTime": fhir_datetime(consent.decided_at),
        "performer": [person_ref(consent.decided_by)],
        "policy": [{"uri": urls.MCA_BEST_INTERESTS_POLICY if best_interests else urls.DSR_CODE_OF_PRACTICE_POLICY}],
        **({"provision": {"provision": [_provision(p) for p in consent.provisions]}} if consent.provisions else {}),
    }


_RECIPIENT_ROLE = {"coding": [{"system": urls.PARTICIPATION_TYPE, "code": "IRCP", "display": "information recipient"}]}


def _provision(provision: SharingProvision) -> Resource:
    """A nested rule: permit or deny, its actors the kinds of recipient (as information recipients)."""
    return {
        "type": provision.choice.value,
        "actor": [
            {"role": _RECIPIENT_ROLE, "reference": {"identifier": {"system": urls.RECIPIENT_TYPE, "value": r.value}}}
            for r in provision.recipients
        ],
    }


def _provisions_from_fhir(consent: Resource) -> list[dict[str, Any]]:
    root = consent.get("provision")
    if root is None:
        return []
    if not isinstance(root, dict) or set(root) - {"provision"}:
        raise NotOurShape("Consent.provision", "expected only nested provisions naming kinds of recipient")
    out = []
    for i, rule in enumerate(root.get("provision", ())):
        path = f"Consent.provision.provision[{i}]"
        if not isinstance(rule, dict) or rule.get("type") not in ("permit", "deny") or set(rule) - {"type", "actor"}:
            raise NotOurShape(path, "expected a permit or deny rule with actors only")
        recipients = []
        for j, actor in enumerate(rule.get("actor", ())):
            identifier = actor.get("reference", {}).get("identifier", {}) if isinstance(actor, dict) else {}
            if identifier.get("system") != urls.RECIPIENT_TYPE:
                raise NotOurShape(f"{path}.actor[{j}]", "expected a kind of recipient")
            recipients.append(identifier.get("value"))
        out.append({"choice": rule["type"], "recipients": recipients})
    return out


def category_of(consent: Resource) -> ConsentCategory | None:
    categories = consent.get("category", ())
    for c in categories:
        try:
            return read_code(c, ConsentCategory, "Consent.category")
        except NotOurShape:
            continue
    return None


def from_fhir(consent: Resource) -> dict[str, Any]:
    """The ConsentDecision (as a dict for the enclosing record's validation) a Consent records."""
    status = _FROM_FHIR_STATUS.get(consent.get("status", ""))
    if status is None:
        raise NotOurShape("Consent.status", f"{consent.get('status')!r} is not a status a consent decision has")
    best_interests = ext_value(consent, urls.EXT_BEST_INTERESTS_DECISION, "valueBoolean")
    performers = consent.get("performer", ())
    if len(performers) != 1:
        raise NotOurShape("Consent.performer", "expected exactly one performer")
    return {
        "basis": ConsentBasis.BEST_INTERESTS if best_interests else ConsentBasis.CONSENT,
        "status": status,
        "decided_by": read_person(performers[0], "Consent.performer[0]"),
        "decided_at": read_datetime(consent.get("dateTime"), "Consent.dateTime"),
        "provisions": _provisions_from_fhir(consent),
    }
