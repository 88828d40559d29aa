"""The Encounter status an ADT event leads to, given the status the gateway holds for that visit. Pure.

The table is data (:data:`TRANSITIONS`) so the docs and the tests read the same thing. Outcomes are a FHIR R4
``Encounter.status``, :data:`NO_CHANGE` (the event changes nothing: a repeat, or a cancel of something the gateway
never saw), :data:`AS_SENT` (an update for a visit the gateway does not hold: ``finished`` if PV1-45 is valued,
else ``in-progress``) or :data:`REFUSED` (the events arrived in an order that cannot be right; the message fails
with an :class:`~mappings.hl7v2.errors.AdtError` for a person to look at, rather than guessing).

Choices, and why:

* **Unknown visit** (no current Encounter): the gateway only hears about people once they are in its cohort, so
  the admission often predates what it has seen. A02/A03/A08 therefore create the Encounter in the state the event
  leaves it (A03: ``finished`` with both ends of the period), never an error. Cancels of an unknown visit (A11,
  A12, A13) change nothing: there is nothing recorded to undo, and the next A08/A02 will bring the visit in.
* **A11 cancel admit → ``cancelled``**, not ``entered-in-error``. FHIR's ``cancelled`` is "ended before it has
  begun", which is what a withdrawn admission is; ``entered-in-error`` makes most clients hide the record, yet the
  register's blue rating was raised (and undone) because of it, so the visit must stay visible. HL7's cancel of a
  pre-admission is A38, not A11; an A11 on a ``planned`` visit is read the same way (``cancelled``).
* **A05 never moves a visit backwards**: a late pre-admit for an admitted or finished visit changes nothing.
* **A12 cancel transfer** puts the patient back where they were (PV1-3 holds that location in an A12).
* **A13 cancel discharge** reopens a finished visit (``in-progress``, ``period.end`` removed).
* Statuses other than the five below (arrived, triaged, onleave, unknown) behave like ``in-progress``;
  ``entered-in-error`` behaves like ``cancelled``.
"""

from __future__ import annotations

from typing import Final

NO_CHANGE: Final = "no change"
AS_SENT: Final = "as sent"
REFUSED: Final = "refused"
IN_PROGRESS: Final = "in-progress"

#: The rows: the status the gateway holds for the visit (``none``: no Encounter yet).
STATES: Final = ("none", "planned", "in-progress", "finished", "cancelled")
#: The columns: visit events, in the order the docs list them.
EVENTS: Final = ("A05", "A01", "A04", "A02", "A03", "A08", "A11", "A12", "A13")

#: Row by row: for each current state, the outcome of each event (the docs print it as a grid).
_ROWS: Final[dict[str, dict[str, str]]] = {
    "none": {
        "A05": "planned", "A01": IN_PROGRESS, "A04": IN_PROGRESS, "A02": IN_PROGRESS, "A03": "finished",
        "A08": AS_SENT, "A11": NO_CHANGE, "A12": NO_CHANGE, "A13": NO_CHANGE,
    },
    "planned": {
        "A05": "planned", "A01": IN_PROGRESS, "A04": IN_PROGRESS, "A02": IN_PROGRESS, "A03": "finished",
        "A08": "planned", "A11": "cancelled", "A12": REFUSED, "A13": REFUSED,
    },
    "in-progress": {
        "A05": NO_CHANGE, "A01": IN_PROGRESS, "A04": IN_PROGRESS, "A02": IN_PROGRESS, "A03": "finished",
        "A08": IN_PROGRESS, "A11": "cancelled", "A12": IN_PROGRESS, "A13": NO_CHANGE,
    },
    "finished": {
        "A05": NO_CHANGE, "A01": REFUSED, "A04": REFUSED, "A02": REFUSED, "A03": NO_CHANGE,
        "A08": "finished", "A11": REFUSED, "A12": REFUSED, "A13": IN_PROGRESS,
    },
    "cancelled": {
        "A05": "planned", "A01": IN_PROGRESS, "A04": IN_PROGRESS, "A02": REFUSED, "A03": REFUSED,
        "A08": NO_CHANGE, "A11": NO_CHANGE, "A12": REFUSED, "A13": REFUSED,
    },
}  # fmt: skip

TRANSITIONS: Final[dict[tuple[str, str], str]] = {
    (state, event): row[event] for state, row in _ROWS.items() for event in EVENTS
}


def state_of(status: str | None) -> str:
    """The table row for an Encounter's current status (None: the gateway holds no Encounter for the visit)."""
    if status is None:
        return "none"
    if status in ("planned", "finished", "cancelled"):
        return status
    if status == "entered-in-error":
        return "cancelled"
    return "in-progress"


def outcome(event: str, status: str | None) -> str:
    """The outcome of a visit event on a visit in ``status`` (see the module docstring for the markers)."""
    return TRANSITIONS[(state_of(status), event)]
