"""Identifiers of people and organisations in England: systems and checks. Pure; used by mappings and the gateway.

NHS number: ten digits, the tenth a Modulus 11 check digit over the first nine weighted 10 down to 2 (a
remainder giving 10 means the number is invalid). Written with or without spaces (``943 476 5919``).
"""

from __future__ import annotations

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_ORGANISATION_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"


def nhs_number_check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None when no tenth digit can make a valid number."""
    if len(first_nine) != 9 or not first_nine.isdigit():
        raise ValueError(f"{first_nine!r} is not nine digits")
    total = sum(int(d) * (10 - i) for i, d in enumerate(first_nine))
    check = (11 - total % 11) % 11
    return None if check == 10 else check


def normalise_nhs_number(text: str) -> str:
    """The ten digits of an NHS number written with spaces or hyphens (``943 476 5919`` → ``9434765919``)."""
    return "".join(c for c in text if c not in " -")


def is_nhs_number(text: str) -> bool:
    """True for ten digits whose last is the Modulus 11 check digit of the first nine."""
    digits = normalise_nhs_number(text)
    if len(digits) != 10 or not digits.isdigit() or not digits.isascii():
        return False
    return nhs_number_check_digit(digits[:9]) == int(digits[9])
