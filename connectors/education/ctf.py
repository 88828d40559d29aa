"""Common Transfer File (CTF) import: the source school and, per pupil, identity and SEN. Pure.

Element names (docs/connectors/education.md says where each was checked)::

    CTfile
      Header
        DocumentName, CTFversion, DateTime
        SourceSchool: LEA, Estab, URN, SchoolName, AcademicYear
        DestSchool:   LEA, Estab
      CTFpupilData
        Pupil
          UPN, Surname, Forename, DOB, Gender (older files) or Sex (newer files)
          SENhistory / SEN: StartDate, SENprovision

DOB and SEN StartDate are ``yyyy-mm-dd``. Gender/Sex is ``M`` or ``F``. SENprovision codes are carried as given
(``E`` EHC plan, ``K`` SEN support, ``N`` no special educational need are the codes in current use; earlier years
had others). Every problem is reported with the pupil's position (1-based) and the element; a pupil with a
problem yields no record, the others still do; a UPN seen earlier in the file is a problem of the later pupil.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from xml.etree.ElementTree import Element

from connectors.education.safe_xml import parse

_UPN = re.compile(r"^[A-HJ-NPR-Z][0-9]{11}[0-9A-HJ-NPR-Z]$")
_URN = re.compile(r"^[0-9]{6}$")
_LEA = re.compile(r"^[0-9]{3}$")
_ESTAB = re.compile(r"^[0-9]{4}$")
_PROVISION = re.compile(r"^[A-Z]$")
SEX_CODES = {"M": "male", "F": "female"}


@dataclass(frozen=True, slots=True)
class CtfError:
    """One problem: which pupil (0 for the header), which element, what."""

    pupil: int
    element: str
    message: str

    def __str__(self) -> str:
        where = "Header" if self.pupil == 0 else f"Pupil {self.pupil}"
        return f"{where}, {self.element}: {self.message}"


@dataclass(frozen=True, slots=True)
class School:
    """The school that sent the file: DfE number (LEA + Estab), URN when the file carries it, name."""

    lea: str
    estab: str
    urn: str | None
    name: str | None

    @property
    def dfe_number(self) -> str:
        return f"{self.lea}{self.estab}"


@dataclass(frozen=True, slots=True)
class SenProvision:
    """One SEN entry: the provision code and when it started."""

    provision: str
    start: date | None


@dataclass(frozen=True, slots=True)
class Pupil:
    upn: str
    surname: str
    forename: str
    birth_date: date
    sex: str
    sen: tuple[SenProvision, ...] = ()

    @property
    def current_sen(self) -> SenProvision | None:
        """The SEN entry with the latest start date (an undated one only when none is dated)."""
        if not self.sen:
            return None
        return max(self.sen, key=lambda s: (s.start is not None, s.start or date.min))


@dataclass
class CtfImport:
    school: School | None = None
    version: str | None = None
    pupils: list[Pupil] = field(default_factory=list)
    errors: list[CtfError] = field(default_factory=list)


def _text(parent: Element | None, name: str) -> str | None:
    child = parent.find(name) if parent is not None else None
    if child is None or child.text is None:
        return None
    value = child.text.strip()
    return value or None


def _date(text: str | None) -> date | None:
    if text is None:
        return None
    return date.fromisoformat(text[:10])


def _school(header: Element | None, out: CtfImport) -> School | None:
    source = header.find("SourceSchool") if header is not None else None
    if source is None:
        out.errors.append(CtfError(0, "Header/SourceSchool", "is missing"))
        return None
    lea, estab, urn = _text(source, "LEA"), _text(source, "Estab"), _text(source, "URN")
    problems = []
    if lea is None or not _LEA.match(lea):
        problems.append(CtfError(0, "SourceSchool/LEA", "is not a three-digit LA number"))
    if estab is None or not _ESTAB.match(estab):
        problems.append(CtfError(0, "SourceSchool/Estab", "is not a four-digit establishment number"))
    if urn is not None and not _URN.match(urn):
        problems.append(CtfError(0, "SourceSchool/URN", "is not a six-digit URN"))
    out.errors += problems
    if problems or lea is None or estab is None:
        return None
    return School(lea, estab, urn, _text(source, "SchoolName"))


def _pupil(element: Element, n: int) -> Pupil | list[CtfError]:
    errors: list[CtfError] = []

    def need(name: str) -> str | None:
        value = _text(element, name)
        if value is None:
            errors.append(CtfError(n, name, "is required"))
        return value

    upn, surname, forename, dob = need("UPN"), need("Surname"), need("Forename"), need("DOB")
    if upn is not None and not _UPN.match(upn.upper()):
        errors.append(CtfError(n, "UPN", "is not a unique pupil number"))
    born: date | None = None
    try:
        born = _date(dob)
    except ValueError:
        errors.append(CtfError(n, "DOB", f"{dob!r} is not a date (yyyy-mm-dd)"))
    sex = _text(element, "Sex") or _text(element, "Gender")
    if sex is None or sex.upper() not in SEX_CODES:
        errors.append(CtfError(n, "Gender", f"{sex!r} is not M or F"))
    sen: list[SenProvision] = []
    history = element.find("SENhistory")
    for k, entry in enumerate(history.findall("SEN") if history is not None else (), start=1):
        provision = _text(entry, "SENprovision")
        if provision is None or not _PROVISION.match(provision.upper()):
            errors.append(CtfError(n, f"SENhistory/SEN[{k}]/SENprovision", f"{provision!r} is not a provision code"))
            continue
        try:
            sen.append(SenProvision(provision.upper(), _date(_text(entry, "StartDate"))))
        except ValueError:
            errors.append(CtfError(n, f"SENhistory/SEN[{k}]/StartDate", "is not a date (yyyy-mm-dd)"))
    if errors or upn is None or surname is None or forename is None or born is None or sex is None:
        return errors
    return Pupil(upn.upper(), surname, forename, born, SEX_CODES[sex.upper()], tuple(sen))


def parse_ctf(data: bytes) -> CtfImport:
    """The school and pupils in a CTF document. Unsafe or malformed XML raises (``safe_xml``): nothing is read."""
    root = parse(data)
    out = CtfImport()
    if root.tag != "CTfile":
        out.errors.append(CtfError(0, root.tag, "the root element is not CTfile"))
        return out
    header = root.find("Header")
    out.version = _text(header, "CTFversion")
    out.school = _school(header, out)
    data_element = root.find("CTFpupilData")
    seen: set[str] = set()
    for n, element in enumerate(data_element.findall("Pupil") if data_element is not None else (), start=1):
        result = _pupil(element, n)
        if isinstance(result, Pupil) and result.upn in seen:
            out.errors.append(CtfError(n, "UPN", "appears for an earlier pupil in this file"))
        elif isinstance(result, Pupil):
            seen.add(result.upn)
            out.pupils.append(result)
        else:
            out.errors += result
    return out
