"""Whom the gateway's writes are attributed to: an API client, an import run, a connector (each an
:class:`~mappings.provenance.Origin`, which the writers turn into a Provenance per write), and
:func:`attribute`, the Provenance of versions written one by one in a transaction (imports, pulls).

- A client of the API: the client (``who``, by its client id) for its organisation, with its purpose of use. The
  development caller (``KWG_AUTH=off``) gets no Origin, as its FHIR writes carry no Provenance.
- ``kwg import ...``: the import command (a Device) for the organisation given, from the file (name and SHA-256).
- A connector that pulls: the connector's device (the destination's name), for the destination's organisation
  when its options name one (``ods_code``), from the source system (its base URL).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

from gateway.audit.events import CLIENT_SYSTEM, PURPOSES
from gateway.auth import Caller
from gateway.store.records import StoredResource
from gateway.store.repository import FhirRepository
from gateway.store.timeutil import to_instant
from mappings.identifiers import ODS_ORGANISATION_SYSTEM
from mappings.keyworking import urls
from mappings.provenance import Activity, Author, Origin, Source, provenance, versioned

#: Identifier systems for what is not an API client: the gateway's own tools, connectors, files by digest.
TOOL_SYSTEM = urls.naming_system("gateway-tool")
CONNECTOR_SYSTEM = urls.naming_system("connector")
FILE_DIGEST_SYSTEM = urls.naming_system("file-sha256")
#: A local authority by its three-digit DfE number (as SSDA903 returns name it).
LA_NUMBER_SYSTEM = urls.naming_system("la-number")
#: FHIR's system for an identifier that is itself a URI (a server's base URL).
URI_SYSTEM = "urn:ietf:rfc:3986"


def client_origin(caller: Caller) -> Origin | None:
    """The Origin of a client's writes; None for the development caller (nothing to attribute)."""
    if caller.development:
        return None
    purpose = PURPOSES.get(caller.purpose.upper(), ("TREAT", "treatment"))
    author = Author(
        system=CLIENT_SYSTEM,
        value=caller.client_id,
        display=f"API client {caller.client_id}",
        organisation=caller.organisation,
        purpose=purpose,
    )
    return Origin(author)


def file_source(name: str, data: bytes, *, what: str) -> Source:
    """A file as a source: ``what`` it is and its name, identified by the SHA-256 of its bytes."""
    return Source(f"{what} {name}", FILE_DIGEST_SYSTEM, hashlib.sha256(data).hexdigest())


def import_origin(
    command: str,
    sources: tuple[Source, ...],
    *,
    organisation: str | None = None,
    organisation_system: str = ODS_ORGANISATION_SYSTEM,
) -> Origin:
    """The Origin of an import run: the command (``kwg import register``) for ``organisation`` (an ODS code, or
    in ``organisation_system``), from ``sources``."""
    author = Author(
        TOOL_SYSTEM, command, display=command, organisation=organisation, organisation_system=organisation_system
    )
    return Origin(author, sources)


def connector_origin(name: str, connector: str, endpoint: str, *, organisation: str | None = None) -> Origin:
    """The Origin of what a connector brings in: its device (the destination ``name``) and the source system."""
    author = Author(CONNECTOR_SYSTEM, name, display=f"{connector} connector {name}", organisation=organisation)
    return Origin(author, (Source(f"{connector} system {name}", URI_SYSTEM, endpoint),))


def provenance_of(provenance_id: str, written: Sequence[StoredResource], origin: Origin) -> dict[str, Any]:
    """The Provenance of versions already written (CREATE when all are new), recorded when the last was."""
    return provenance(
        provenance_id=provenance_id,
        targets=[versioned(s.res_type, s.res_id, s.version_id) for s in written],
        recorded=to_instant(max(s.last_updated for s in written)),
        activity=Activity.CREATE if all(s.version_id == 1 for s in written) else Activity.UPDATE,
        origin=origin,
    )


async def attribute(tx: FhirRepository, written: Sequence[StoredResource], origin: Origin) -> None:
    """Write the Provenance of ``written`` in ``tx`` (the writes' own transaction); nothing when nothing was."""
    if written:
        provenance_id = str(uuid.uuid4())
        await tx.create(provenance_of(provenance_id, written, origin), assigned_id=provenance_id)
