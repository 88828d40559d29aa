"""The PDS client: verify an NHS number, trace a person by demographics, with application-restricted access.

Every call carries a fresh ``X-Request-ID`` (a UUID PDS requires, and the one to quote to the service desk) and a
bearer token from ``TokenSource``; calls pass through a ``RateLimiter`` so the application stays within PDS's
5 per second. A token refused before its expiry (401) is renewed once. Failures follow the connector hierarchy:
429 and 5xx are ``TransientError`` (with ``retry_after``), other refusals ``PermanentError``; a 404 on retrieval
is an answer (``NotFound``), not an error.

Nothing personal is logged: this module's log lines carry the operation, status, result kind and request id, and
the request lines httpx logs for PDS calls have the path after ``/Patient`` and the query masked.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import ClassVar, TypeVar

import httpx

from connectors.base import ConfigurationError, ConnectorError, PermanentError, TransientError, classify
from connectors.pds.auth import TokenSource, load_private_key
from connectors.pds.config import PdsConfig
from connectors.pds.rate import RateLimiter
from connectors.pds.results import (
    NotFound,
    TraceResult,
    UnexpectedAnswer,
    VerifyResult,
    read_patient,
    read_search,
)
from mappings.identifiers import is_nhs_number, normalise_nhs_number

log = logging.getLogger(__name__)
T = TypeVar("T")

FHIR_JSON = "application/fhir+json"
GENDERS = frozenset({"male", "female", "other", "unknown"})


class PdsClient:
    """A client of the PDS FHIR API for one registered application.

    ``transport`` is for tests (an ASGI transport over the fake PDS); ``now`` is the wall clock the token's expiry
    and the assertion's ``exp`` are read on; ``clock`` and ``sleep`` drive the rate limiter.
    """

    kind: ClassVar[str] = "pds"

    def __init__(
        self,
        config: PdsConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        now: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.endpoint = str(config.endpoint).rstrip("/")
        key = load_private_key(config.private_key())  # fail at start-up, not at the first trace
        self.client = httpx.AsyncClient(timeout=config.timeout_seconds, transport=transport)
        self.tokens = TokenSource(
            self.client,
            token_url=str(config.token_url),
            api_key=config.api_key,
            kid=config.kid,
            private_key=key,
            margin_seconds=config.token_refresh_margin_seconds,
            now=now,
        )
        self.limiter = RateLimiter(config.rate_per_second, clock=clock, sleep=sleep)
        _redact_requests_to(self.endpoint)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def check(self) -> None:
        """Raise ConfigurationError or TransientError when no access token can be had (start-up check)."""
        self.tokens.invalidate()
        await self.tokens.token()

    async def verify(self, nhs_number: str) -> VerifyResult:
        """What PDS holds for this NHS number: verified, superseded (merged), restricted or not found.

        Raises ValueError for a number that fails the Modulus 11 check (PDS would refuse it; the message does not
        repeat the number).
        """
        number = normalise_nhs_number(nhs_number)
        if not is_nhs_number(number):
            raise ValueError("not a valid NHS number (ten digits with a Modulus 11 check digit)")
        response = await self._get(f"{self.endpoint}/Patient/{number}", None, "retrieve")
        if response.status_code == 404:
            log.info("PDS retrieve: not found (request %s)", response.request.headers["X-Request-ID"])
            return NotFound(number)
        result: VerifyResult = self._answer(response, lambda body: read_patient(body, number))
        return result

    async def search(
        self,
        family: str,
        birth_date: date,
        gender: str,
        *,
        given: str | None = None,
        postcode: str | None = None,
    ) -> TraceResult:
        """Trace a person by family name, date of birth and gender (given name and postcode narrow it further)."""
        if gender not in GENDERS:
            raise ValueError(f"gender must be one of {sorted(GENDERS)}")
        params = {"family": family, "birthdate": f"eq{birth_date.isoformat()}", "gender": gender}
        if given:
            params["given"] = given
        if postcode:
            params["address-postalcode"] = postcode
        response = await self._get(f"{self.endpoint}/Patient", params, "search")
        result: TraceResult = self._answer(response, read_search)
        return result

    async def _get(self, url: str, params: dict[str, str] | None, operation: str) -> httpx.Response:
        """One PDS call within the rate limit; a token refused before its time is renewed once."""
        for attempt in (1, 2):
            token = await self.tokens.token()
            await self.limiter.acquire()
            request_id = str(uuid.uuid4())
            request = self.client.build_request(
                "GET",
                url,
                params=params,
                headers={"Accept": FHIR_JSON, "Authorization": f"Bearer {token}", "X-Request-ID": request_id},
            )
            response = await self._send(request, operation)
            log.debug("PDS %s: %s (request %s)", operation, response.status_code, request_id)
            if response.status_code != 401:
                return response
            self.tokens.invalidate()
            if attempt == 2:
                raise ConfigurationError(f"PDS refused a fresh access token for {operation} (request {request_id})")
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, request: httpx.Request, operation: str) -> httpx.Response:
        """Send, with transport failures as TransientError whose message names the operation, not the URL."""
        try:
            return await self.client.send(request)
        except httpx.TransportError as exc:
            reason = "timed out" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
            raise TransientError(f"PDS {operation}: {reason}") from None

    def _answer(self, response: httpx.Response, read: Callable[[object], T]) -> T:
        error = _failure(response)
        if error is not None:
            raise error
        try:
            result = read(response.json())
        except (ValueError, UnexpectedAnswer) as exc:
            raise TransientError(f"PDS answered 2xx with an unexpected body ({type(exc).__name__})") from None
        log.info("PDS answered %s (request %s)", result, response.request.headers["X-Request-ID"])
        return result


def _failure(response: httpx.Response) -> ConnectorError | None:
    """``classify``'s verdict, re-worded: its messages quote the URL path, which holds an NHS number here.

    The detail kept for a dead letter is PDS's own error code (e.g. INVALID_SEARCH_DATA), not the response body.
    """
    error = classify(response)
    if error is None:
        return None
    operation = "search" if response.request.url.path.endswith("/Patient") else "retrieve"
    message = f"PDS {operation}: {response.status_code} (request {response.request.headers.get('X-Request-ID')})"
    if isinstance(error, TransientError):
        return TransientError(message, retry_after=error.retry_after, status=error.status)
    return PermanentError(message, status=response.status_code, detail=_spine_code(response))


def _spine_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
        return str(body["issue"][0]["details"]["coding"][0]["code"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


class _RedactPdsRequests(logging.Filter):
    """Masks the part of a logged PDS request URL that names a person (the NHS number, the trace's query)."""

    def __init__(self) -> None:
        super().__init__()
        self.bases: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(self._is_pds(arg) for arg in record.args):
            record.args = tuple(self._mask(arg) if self._is_pds(arg) else arg for arg in record.args)
        return True

    def _is_pds(self, arg: object) -> bool:
        return isinstance(arg, httpx.URL | str) and any(str(arg).startswith(base) for base in self.bases)

    def _mask(self, arg: object) -> str:
        url = str(arg)
        base = max((b for b in self.bases if url.startswith(b)), key=len)
        rest = url[len(base) :].split("?", 1)[0].strip("/")
        resource = rest.split("/", 1)[0]
        return f"{base}/{resource}/[redacted]" if resource else base


_REDACTOR = _RedactPdsRequests()


def _redact_requests_to(base: str) -> None:
    """Have httpx's request log mask URLs under ``base`` (installed once on the ``httpx`` logger)."""
    _REDACTOR.bases.add(base)
    httpx_log = logging.getLogger("httpx")
    if _REDACTOR not in httpx_log.filters:
        httpx_log.addFilter(_REDACTOR)
