"""Shared fixtures for the conformance tests: the committed definitions, validators and an XML converter."""

from __future__ import annotations

import pytest

from gateway.conformance.elements import Navigator
from gateway.conformance.fhirxml import FhirXmlConverter
from gateway.conformance.loader import Definitions, default_definitions
from gateway.conformance.validator import ProfileValidator


@pytest.fixture(scope="session")
def definitions() -> Definitions:
    return default_definitions()


@pytest.fixture(scope="session")
def strict(definitions: Definitions) -> ProfileValidator:
    """Unknown extensions are errors (``$validate``, ``kwg validate``)."""
    return ProfileValidator(definitions, strict_extensions=True)


@pytest.fixture(scope="session")
def lenient(definitions: Definitions) -> ProfileValidator:
    """Unknown extensions are warnings (the write path)."""
    return ProfileValidator(definitions, strict_extensions=False)


@pytest.fixture(scope="session")
def converter(definitions: Definitions) -> FhirXmlConverter:
    return FhirXmlConverter(Navigator(definitions))
