"""Unit properties of the validator's building blocks: pattern matching and terminology expansion."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.conformance.keyworking import cs_url, vs_url
from gateway.conformance.loader import Definitions
from gateway.conformance.terminology import Terminology
from gateway.conformance.validator import pattern_matches

scalars = st.one_of(st.text(max_size=5), st.integers(), st.booleans())
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)
    ),
    max_leaves=10,
)


def _extend(value: Any, extra: Any) -> Any:
    """A value that contains ``value``: more keys in objects, more items in arrays."""
    if isinstance(value, dict):
        out = {k: _extend(v, extra) for k, v in value.items()}
        out.setdefault("zz", extra)
        return out
    if isinstance(value, list):
        return [_extend(v, extra) for v in value] + [extra]
    return value


@given(json_values, scalars)
def test_a_value_matches_itself_and_anything_containing_it(pattern: Any, extra: Any) -> None:
    assert pattern_matches(pattern, pattern)
    assert pattern_matches(pattern, _extend(pattern, extra))


@given(st.dictionaries(st.sampled_from(["system", "code"]), st.text(min_size=1, max_size=4), min_size=1))
def test_a_missing_or_changed_property_does_not_match(pattern: dict[str, str]) -> None:
    key = next(iter(pattern))
    assert not pattern_matches(pattern, {k: v for k, v in pattern.items() if k != key})
    assert not pattern_matches(pattern, {**pattern, key: pattern[key] + "x"})


def test_value_set_expansion_from_a_local_code_system(definitions: Definitions) -> None:
    codes = Terminology(definitions).expand(vs_url("dsr-rating"))
    assert codes == {(cs_url("dsr-rating"), c) for c in ("blue", "red", "amber", "green")}


def test_value_set_with_snomed_concepts_lists_them(definitions: Definitions) -> None:
    codes = Terminology(definitions).expand(vs_url("contact-type"))
    assert codes is not None
    assert ("http://snomed.info/sct", "439708006") in codes


def test_value_set_including_all_of_snomed_cannot_be_expanded() -> None:
    definitions = Definitions()
    definitions.add(
        {
            "resourceType": "ValueSet",
            "url": "https://example.org/vs",
            "compose": {"include": [{"system": "http://snomed.info/sct"}]},
        }
    )
    assert Terminology(definitions).expand("https://example.org/vs") is None
