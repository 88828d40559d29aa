"""The domain API at ``/api/v1``: keyworking records as plain JSON, for case-management systems that do not speak FHIR.

Every answer is read back from the FHIR store. Errors are OperationOutcomes (the gateway's one error shape) whose
``expression`` names the field: 422 for a bad record, 409 for a move the record's state forbids, 404 for an unknown
id. Writes accept an ``Idempotency-Key`` header.
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.v1 import care_teams, cases, meetings, people, register, tasks
from gateway.api.v1.common import PREFIX

router = APIRouter(prefix=PREFIX)
for module in (people, register, cases, care_teams, meetings, tasks):
    router.include_router(module.router)
