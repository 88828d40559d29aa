"""Original-mode HL7 v2 acknowledgements (ITK does not use MSH-15/16), built from the inbound MSH.

Sender and receiver are swapped, MSH-12 is copied, MSA-2 echoes MSH-10. AE and AR carry an ERR segment with an
HL7 table 0357 error code, severity E, and a human message (ERR-8).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from mappings.hl7v2.tokenizer import DEFAULT_DELIMITERS, Delimiters, Envelope, escape

_counter = itertools.count(1)


class AckCode(StrEnum):
    ACCEPT = "AA"
    ERROR = "AE"  # the sender may correct and resend
    REJECT = "AR"  # the message will not be accepted as sent


class ErrorCode(StrEnum):
    """HL7 table 0357 message error condition codes."""

    SEGMENT_SEQUENCE = "100"
    REQUIRED_FIELD_MISSING = "101"
    DATA_TYPE = "102"
    TABLE_VALUE_NOT_FOUND = "103"
    UNSUPPORTED_MESSAGE_TYPE = "200"
    UNSUPPORTED_EVENT = "201"
    UNSUPPORTED_PROCESSING_ID = "202"
    UNSUPPORTED_VERSION = "203"
    APPLICATION_INTERNAL_ERROR = "207"


@dataclass(frozen=True, slots=True)
class AckError:
    code: ErrorCode
    message: str
    segment: str = ""  # where: segment name (ERR-2.1) ...
    field: int = 0  # ... and field number (ERR-2.3)


@dataclass(frozen=True, slots=True)
class AckIdentity:
    """Who we are when we answer: MSH-3/4 of our ACKs when the inbound message named no receiver."""

    application: str = "KWG"
    facility: str = "KWG"


def _ts(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")


def build_ack(
    envelope: Envelope | None,
    code: AckCode,
    *,
    error: AckError | None = None,
    delimiters: Delimiters = DEFAULT_DELIMITERS,
    identity: AckIdentity = AckIdentity(),
    now: datetime | None = None,
) -> str:
    """The ACK text (segments joined by CR, no MLLP framing). ``envelope`` is None when MSH was unreadable."""
    d = delimiters

    def e(value: str) -> str:
        return escape(value, d)

    if envelope is not None:
        header = [
            e(envelope.receiving_application or identity.application),
            e(envelope.receiving_facility or identity.facility),
            e(envelope.sending_application),
            e(envelope.sending_facility),
        ]
        event, control, processing, version = (
            e(envelope.trigger_event),
            e(envelope.control_id),
            e(envelope.processing_id or "P"),
            e(envelope.version or "2.4"),
        )
    else:
        header = [e(identity.application), e(identity.facility), "", ""]
        event, control, processing, version = "", "", "P", "2.4"
    ack_id = f"ACK{_ts(now)}{next(_counter):06d}"
    msh = d.field.join(
        [
            "MSH",
            d.encoding_characters,
            *header,
            _ts(now),
            "",
            f"ACK{d.component}{event}{d.component}ACK" if event else "ACK",
            ack_id,
            processing,
            version,
        ]
    )
    msa_fields = ["MSA", code.value, control]
    if error is not None:
        msa_fields.append(e(error.message[:80]))
    segments = [msh, d.field.join(msa_fields)]
    if error is not None:
        location = d.component.join([error.segment, "1", str(error.field)]) if error.segment else ""
        segments.append(
            d.field.join(
                [
                    "ERR",
                    "",
                    location,
                    f"{error.code.value}{d.component}{e(error.message[:200])}{d.component}HL70357",
                    "E",
                    "",
                    "",
                    "",
                    e(error.message),
                ]
            )
        )
    return "\r".join(segments)
