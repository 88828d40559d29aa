"""Placeholder references (urn:uuid) in arbitrary JSON are all found and rewritten in one pass."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.bundles.references import dangling_references, rewrite_criteria, rewrite_references

KNOWN = [f"urn:uuid:00000000-0000-0000-0000-00000000000{i}" for i in range(4)]
UNKNOWN = "urn:uuid:ffffffff-0000-0000-0000-000000000000"
TARGETS = {urn: f"Patient/p{i}" for i, urn in enumerate(KNOWN)}

_refs = st.sampled_from([*KNOWN, UNKNOWN, "Patient/kept", "#contained", "https://elsewhere.example/Patient/9"])
_keys = st.sampled_from(["extension", "contained", "subject", "valueReference", "item", "name", "code"])
_json: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.text(max_size=5), st.integers(), st.booleans(), st.builds(lambda r: {"reference": r}, _refs)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(_keys, children, max_size=4)),
    max_leaves=30,
)


def _all_references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return own + [r for k, v in node.items() if k != "reference" for r in _all_references(v)]
    if isinstance(node, list):
        return [r for item in node for r in _all_references(item)]
    return []


@given(_json)
def test_every_known_placeholder_is_rewritten_and_the_unknown_reported(doc: Any) -> None:
    before = _all_references(doc)
    original = copy.deepcopy(doc)
    dangling = rewrite_references(doc, TARGETS)
    after = _all_references(doc)
    assert after == [TARGETS.get(r, r) for r in before]
    assert not any(r in TARGETS for r in after)
    assert dangling == (UNKNOWN in before)
    assert [ref for _path, ref in dangling_references(doc)] == [r for r in after if r == UNKNOWN]
    assert rewrite_references(original, {}) == any(r.startswith("urn:") for r in before)


def test_dangling_references_name_their_element_paths() -> None:
    doc = {"extension": [{"valueReference": {"reference": UNKNOWN}}], "subject": {"reference": "Patient/1"}}
    assert dangling_references(doc) == [(".extension[0].valueReference.reference", UNKNOWN)]


def test_criteria_values_and_or_lists_are_rewritten() -> None:
    params = [("subject", KNOWN[0]), ("patient", f"{KNOWN[1]},{UNKNOWN}"), ("status", "active")]
    assert rewrite_criteria(params, TARGETS) == [UNKNOWN]
    assert params == [("subject", "Patient/p0"), ("patient", f"Patient/p1,{UNKNOWN}"), ("status", "active")]
