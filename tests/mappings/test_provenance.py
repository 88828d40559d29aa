"""The Provenance builder: whatever a client id, an organisation code from a token or a file name holds, the
Provenance is valid R4 (the store does not validate it again on each write), and it says who, what and which."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.validation import validate_resource
from mappings.provenance import Activity, Author, Origin, Source, fhir_text, provenance, versioned

texts = st.one_of(st.none(), st.text(max_size=40), st.sampled_from(["", " ", "\x0b", "\x00a", "trust-ehr", "RX4"]))


def build(origin: Origin, targets: list[str] | None = None) -> dict[str, Any]:
    return provenance(
        provenance_id="p-1",
        targets=targets or [versioned("Patient", "yp-1", 2)],
        recorded="2026-11-25T10:00:00.123456+00:00",
        activity=Activity.UPDATE,
        origin=origin,
    )


@settings(max_examples=150, deadline=None)
@given(
    value=st.text(max_size=40),
    display=texts,
    organisation=texts,
    purpose=st.none() | st.just(("TREAT", "treatment")),
    sources=st.lists(st.tuples(st.text(max_size=30), texts), max_size=3),
)
def test_any_author_and_sources_make_a_valid_provenance(
    value: str,
    display: str | None,
    organisation: str | None,
    purpose: tuple[str, str] | None,
    sources: list[tuple[str, str | None]],
) -> None:
    client = "https://keyworking-gateway.org/fhir/Id/api-client"
    author = Author(client, value, display, organisation=organisation, purpose=purpose)
    origin = Origin(author, tuple(Source(d, "urn:ietf:rfc:3986", v) for d, v in sources))
    resource = build(origin)
    assert [i for i in validate_resource(resource) if i.severity in ("error", "fatal")] == []
    assert resource["target"] == [{"reference": "Patient/yp-1/_history/2"}]


def test_the_provenance_names_the_author_its_organisation_the_purpose_and_the_file() -> None:
    author = Author(
        "urn:client", "trust-ehr", "API client trust-ehr", organisation="RX4", purpose=("TREAT", "treatment")
    )
    resource = build(Origin(author, (Source("register file r.csv", "urn:sha256", "ab12"),)))
    [agent] = resource["agent"]
    assert agent["who"] == {
        "type": "Device",
        "identifier": {"system": "urn:client", "value": "trust-ehr"},
        "display": "API client trust-ehr",
    }
    assert agent["onBehalfOf"]["identifier"]["value"] == "RX4"
    assert resource["reason"] == [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                    "code": "TREAT",
                    "display": "treatment",
                }
            ]
        }
    ]
    assert resource["entity"] == [
        {
            "role": "source",
            "what": {"display": "register file r.csv", "identifier": {"system": "urn:sha256", "value": "ab12"}},
        }
    ]
    assert resource["activity"]["coding"][0]["code"] == "UPDATE"


def test_text_that_fhir_would_refuse_is_tidied_or_left_out() -> None:
    assert fhir_text("  trust\x0b ehr\n") == "trust ehr"
    assert fhir_text("\x00\x1f ") is None
    assert fhir_text("x" * 5000) == "x" * 1024
    blank = build(Origin(Author("urn:client", "   ", organisation="")))
    [agent] = blank["agent"]
    assert agent["who"] == {"type": "Device", "display": "unidentified client"} and "onBehalfOf" not in agent
