"""The two ways a keyworking operation can fail without being a bad request body (those are pydantic errors).

- :class:`ImpossibleTransition`: the request is well formed but the record's state does not allow it (step-down
  before allocation, closing a closed case, a third keyworker). The API answers 409 and names ``state`` and
  ``field``.
- :class:`NotOurShape`: a FHIR resource handed to a ``from_fhir`` function does not carry what our profiles
  promise (a missing phase extension, a code from another system). ``path`` is the FHIRPath of the element.

Both are plain exceptions so that ``mappings`` stays free of ``gateway`` imports; the API turns them into
OperationOutcomes in one place.
"""

from __future__ import annotations


class KeyworkingError(Exception):
    """Base of the errors raised by the keyworking mappings and lifecycle."""


class ImpossibleTransition(KeyworkingError):
    """A transition the current state does not allow.

    ``state`` is the state the record is in (e.g. ``"referred"``), ``field`` the record field the request tried to
    change (e.g. ``"phase"`` or ``"keyworkers"``) and ``requested`` what was asked for (e.g. ``"step-down"``).
    """

    def __init__(self, message: str, *, state: str, field: str, requested: str) -> None:
        super().__init__(message)
        self.message = message
        self.state = state
        self.field = field
        self.requested = requested


class NotOurShape(KeyworkingError):
    """A FHIR resource that our ``from_fhir`` functions cannot read back into a record."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
