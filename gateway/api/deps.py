"""What routes get from the app: the caller (the one dependency every route takes) and the repository.

The FHIR routes, the hot path, read the repository with :func:`repository` in their body rather than through a
second dependency (each FastAPI dependency costs measurable time per request); other routes may use
:data:`RepositoryDep`. Both read the same ``app.state.repository``, which tests swap for a rolled-back one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from gateway.auth import Caller, current_caller
from gateway.store.repository import FhirRepository


def repository(request: Request) -> FhirRepository:
    """The repository the app was built with."""
    repo: FhirRepository = request.app.state.repository
    return repo


async def _repository_dependency(request: Request) -> FhirRepository:
    return repository(request)


#: Row ids (deliveries, HL7 messages) are 64-bit integers: anything larger is a 422, not a database error.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]

RepositoryDep = Annotated[FhirRepository, Depends(_repository_dependency)]
CallerDep = Annotated[Caller, Depends(current_caller)]
