"""Reading back, from a local authority, the status of the C(E)TR recommendations it owns.

The recommendations reach the LA as deliveries (their Tasks); on the destination's pull schedule the worker asks
the LA for each open one's status and records an owner's update through the same lifecycle rule as the domain API
(forward only; a finished recommendation stays finished). An answer the lifecycle refuses is logged and skipped.
Each update is written with a Provenance naming the local authority's connector (``origin``) in one transaction.
"""

from __future__ import annotations

import logging

from connectors.base import ConnectorError
from connectors.local_authority.connector import LocalAuthorityConnector
from connectors.local_authority.recommendations import owned_by
from gateway.domain.gather import search
from gateway.errors import PreconditionFailed
from gateway.origins import attribute
from gateway.store.repository import FhirRepository
from mappings.keyworking import lifecycle, urls
from mappings.keyworking.errors import ImpossibleTransition, NotOurShape
from mappings.keyworking.records import RecommendationStatus
from mappings.keyworking.review import recommendation_from_fhir
from mappings.keyworking.terminology import TaskType
from mappings.provenance import Origin

log = logging.getLogger(__name__)
OPEN = "requested,accepted,in-progress"


async def read_back_recommendations(repo: FhirRepository, connector: LocalAuthorityConnector, *, origin: Origin) -> int:
    """Ask the LA about each open recommendation it owns; returns how many statuses changed."""
    ods = connector.config.ods_code
    if ods is None:
        return 0
    code = f"{urls.CS_TASK_TYPE}|{TaskType.CETR_RECOMMENDATION.value}"
    tasks = owned_by(await search(repo, "Task", [("code", code), ("status", OPEN)]), ods)
    changed = 0
    for task in tasks:
        task_id = str(task["id"])
        try:
            reported = RecommendationStatus(await connector.recommendation_status(task_id))
            current = recommendation_from_fhir(task)
            updated = lifecycle.update_recommendation(current, reported)
        except (ConnectorError, ImpossibleTransition, NotOurShape, ValueError) as exc:
            log.warning("recommendation status from the local authority not applied (%s)", type(exc).__name__)
            continue
        if updated.status is current.status:
            continue
        meta = {k: v for k, v in task.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
        version = int(task.get("meta", {}).get("versionId", 0)) or None
        try:
            async with repo.transaction() as tx:
                body = {**task, "meta": meta, "status": updated.status.value}
                written = await tx.update("Task", task_id, body, if_match=version)
                await attribute(tx, [written.resource] if written.resource is not None else [], origin)
        except PreconditionFailed:
            continue  # changed meanwhile; the next pull looks again
        changed += 1
    return changed
