"""Schemathesis against the OpenAPI of the whole gateway (domain API, FHIR routes, operations API): generated
requests, valid and invalid, never meet a server error (the suite runs a short pass; the CLI runs longer ones)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from gateway.app import create_app
from gateway.settings import Settings
from gateway.store.migrate import upgrade

_HOME = Path(tempfile.mkdtemp(prefix="kwg-fuzz-"))
_URL = f"sqlite+aiosqlite:///{_HOME}/fuzz.db"
upgrade(Settings(home=_HOME, database_url=_URL), url=_URL)  # type: ignore[arg-type]
APP = create_app(Settings(home=_HOME, database_url=_URL, log_level="WARNING", auth="off"))  # type: ignore[arg-type]
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_meets_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])
