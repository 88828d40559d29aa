"""Is this ADT event an admission to a mental-health inpatient setting? (The register's blue rating.) Pure.

One trust's feed carries every ward, so which settings count is configuration: wards/points of care (PV1-3.1, or
the PV1-3.4 facility), hospital services (PV1-10), or whole sending organisations (MSH-4 ODS code, a mental-health
trust's feed). Whatever matches, the patient class must be inpatient (PV1-2 ``I``): an outpatient clinic on a
mental-health site is not an admission.
"""

from __future__ import annotations

from dataclasses import dataclass

from mappings.hl7v2.event import AdtEvent

#: Events that put someone into a setting: an admission, or a transfer into a (mental-health) ward.
ADMITTING_EVENTS = frozenset({"A01", "A02"})


def _codes(values: frozenset[str]) -> frozenset[str]:
    return frozenset(v.strip().upper() for v in values if v.strip())


@dataclass(frozen=True, slots=True)
class AdmissionAlertRules:
    """What counts as a mental-health inpatient setting. Codes are compared trimmed and upper-cased."""

    wards: frozenset[str] = frozenset()  # PV1-3.1 point-of-care codes (or PV1-3.4 facility codes)
    services: frozenset[str] = frozenset()  # PV1-10 hospital service codes
    senders: frozenset[str] = frozenset()  # MSH-4 sending facility ODS codes

    def __post_init__(self) -> None:
        object.__setattr__(self, "wards", _codes(self.wards))
        object.__setattr__(self, "services", _codes(self.services))
        object.__setattr__(self, "senders", _codes(self.senders))


def is_mental_health_admission(event: AdtEvent, rules: AdmissionAlertRules) -> bool:
    """True when an admission (A01) or transfer (A02) puts an inpatient into a configured mental-health setting."""
    visit = event.visit
    if event.trigger not in ADMITTING_EVENTS or visit is None or visit.patient_class != "I":
        return False
    if event.sending_facility in rules.senders or visit.hospital_service in rules.services:
        return True
    location = visit.location
    if location is None:
        return False
    return location.point_of_care.upper() in rules.wards or (
        bool(location.facility) and location.facility.upper() in rules.wards
    )
