"""SMART scopes: v1 and v2 forms mean the same thing, parsing is exact, and granting never widens access."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.security.scopes import INTERACTIONS, Scope, allows, grant, parse_scope, parse_scopes

RESOURCE_TYPES = ["Patient", "CareTeam", "Encounter", "EpisodeOfCare", "Flag", "Task"]
V1_TO_V2 = {"read": "rs", "write": "cud", "*": "cruds"}

resource_types = st.sampled_from([*RESOURCE_TYPES, "*"])
v2_rights = st.sets(st.sampled_from("cruds"), min_size=1).map(lambda s: "".join(c for c in "cruds" if c in s))
v2_scopes = st.builds(lambda t, r: f"system/{t}.{r}", resource_types, v2_rights)
v1_scopes = st.builds(lambda t, r: f"system/{t}.{r}", resource_types, st.sampled_from(sorted(V1_TO_V2)))
any_scopes = st.lists(st.one_of(v1_scopes, v2_scopes), max_size=5).map(" ".join)


@given(resource_types, st.sampled_from(sorted(V1_TO_V2)))
def test_a_v1_scope_means_its_v2_twin(res_type: str, v1: str) -> None:
    old, new = f"system/{res_type}.{v1}", f"system/{res_type}.{V1_TO_V2[v1]}"
    assert parse_scope(old) == parse_scope(new)
    for target in RESOURCE_TYPES:
        for interaction in INTERACTIONS:
            assert allows(old, target, interaction) == allows(new, target, interaction)


@given(resource_types, v2_rights)
def test_v2_rights_parse_to_exactly_their_letters(res_type: str, rights: str) -> None:
    assert parse_scope(f"system/{res_type}.{rights}") == Scope(res_type, frozenset(rights))
    if len(rights) > 1:  # SMART v2 fixes the order c, r, u, d, s: anything else is not a scope
        assert parse_scope(f"system/{res_type}.{rights[::-1]}") is None


@given(resource_types, v2_rights, st.sampled_from(RESOURCE_TYPES), st.sampled_from(sorted(INTERACTIONS)))
def test_a_scope_allows_exactly_its_type_and_letters(res_type: str, rights: str, target: str, interaction: str) -> None:
    expected = res_type in ("*", target) and INTERACTIONS[interaction] in rights
    assert allows(f"system/{res_type}.{rights}", target, interaction) == expected


@given(any_scopes, st.sampled_from(RESOURCE_TYPES), st.sampled_from(sorted(INTERACTIONS)))
def test_a_scope_list_allows_what_any_of_its_scopes_allows(scopes: str, target: str, interaction: str) -> None:
    assert allows(scopes, target, interaction) == any(allows(s, target, interaction) for s in scopes.split())


@given(any_scopes, any_scopes, st.sampled_from(RESOURCE_TYPES), st.sampled_from(sorted(INTERACTIONS)))
def test_granting_never_widens_and_keeps_only_what_was_asked(
    requested: str, allowed: str, target: str, interaction: str
) -> None:
    granted = grant(requested, allowed)
    assert set(granted.split()) <= set(requested.split())
    if allows(granted, target, interaction):
        assert allows(allowed, target, interaction) and allows(requested, target, interaction)


@given(any_scopes)
def test_a_client_asking_for_what_it_has_gets_it(scopes: str) -> None:
    assert grant(scopes, scopes) == scopes


def test_scopes_that_are_not_system_scopes_allow_nothing() -> None:
    for text in ("patient/Patient.read", "user/*.cruds", "openid", "launch", "system/patient.read", "system/*.x", ""):
        assert parse_scopes(text) == []
        assert not allows(text, "Patient", "read")
    assert parse_scope("system/Patient.*") == Scope("Patient", frozenset("cruds"))
    assert allows("system/*.write", "Flag", "delete") and not allows("system/*.write", "Flag", "search")
    assert not allows("system/CareTeam.rs", "Patient", "read")
