"""``GET /fhir/metadata``: a CapabilityStatement generated from what the gateway implements."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway import __version__
from gateway.api.outcomes import FHIR_JSON
from gateway.store.searchparams import parameters_for, reference_parameters
from mappings.fhir import FHIR_VERSION, SUPPORTED_TYPES

router = APIRouter(prefix="/fhir", tags=["FHIR R4"])

TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)


#: FHIR Bulk Data Access (the $export operations, docs/bulk-export.md).
BULK_DATA = "http://hl7.org/fhir/uv/bulkdata"


def rev_includes(res_type: str) -> list[str]:
    """``Source:param`` for every reference parameter of any served type that can point to ``res_type``."""
    return [
        f"{source}:{p.name}"
        for source in SUPPORTED_TYPES
        for p in reference_parameters(source)
        if not p.targets or res_type in p.targets
    ]


def capability_statement(base: str, date: str) -> dict[str, object]:
    resources = []
    for res_type in SUPPORTED_TYPES:
        resources.append(
            {
                "type": res_type,
                "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalRead": "not-supported",
                "conditionalUpdate": True,
                "conditionalDelete": "multiple",
                "operation": [
                    {"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"},
                    *(
                        [
                            {
                                "name": "everything",
                                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                            }
                        ]
                        if res_type == "Patient"
                        else []
                    ),
                    *(
                        [{"name": "export", "definition": f"{BULK_DATA}/OperationDefinition/{res_type.lower()}-export"}]
                        if res_type in ("Patient", "Group")
                        else []
                    ),
                ],
                "searchInclude": [f"{res_type}:{p.name}" for p in reference_parameters(res_type)],
                "searchRevInclude": rev_includes(res_type),
                "searchParam": [
                    {"name": p.name, "definition": p.definition, "type": p.type, "documentation": p.documentation}
                    for p in parameters_for(res_type)
                ],
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Keyworking Gateway",
        "kind": "instance",
        "software": {"name": "Keyworking Gateway", "version": __version__},
        "implementation": {"description": "Keyworking Gateway FHIR R4 endpoint", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
                "operation": [{"name": "export", "definition": f"{BULK_DATA}/OperationDefinition/export"}],
            }
        ],
    }


@router.get("/metadata", summary="CapabilityStatement")
async def metadata(request: Request) -> Response:
    from gateway.api.fhir import base_url

    started = request.app.state.started_at
    return Response(orjson.dumps(capability_statement(base_url(request), started)), media_type=FHIR_JSON)
