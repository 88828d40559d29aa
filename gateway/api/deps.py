"""Dependencies shared by the routes, as ``Annotated`` aliases that tests can override."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.auth import Caller, current_caller
from gateway.settings import Settings
from gateway.store.repository import FhirRepository


async def get_repository(request: Request) -> FhirRepository:
    repo: FhirRepository = request.app.state.repository
    return repo


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


RepositoryDep = Annotated[FhirRepository, Depends(get_repository)]
CallerDep = Annotated[Caller, Depends(current_caller)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
