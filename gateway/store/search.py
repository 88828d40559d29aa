"""FHIR search compiled to indexed SQL over the ``sp_*`` tables.

A search is parsed against the parameter registry (:mod:`gateway.store.searchparams`) into SQL conditions on the
``resource`` table: each parameter becomes ``pk IN (SELECT res_pk FROM sp_<type> WHERE ...)`` (an indexed lookup,
never a scan of JSON); comma-separated values are ORed inside it, repeated parameters are ANDed. Chains
(``patient.identifier=``) join ``sp_reference`` to the target resources and apply the chained parameter to them.

Supported: token ``[system]|[code]`` and ``:not``; string by prefix (default), ``:exact``, ``:contains``;
reference ``Type/id``, ``id``, absolute URL, type modifier (``subject:Patient``), ``:identifier`` and chains;
date with the prefixes eq, ne, lt, gt, le, ge, sa, eb, ap and precision; uri exact; ``:missing`` on every
parameter. Controls: ``_count``, ``_offset``, ``_sort`` (several keys, ``-`` for descending), ``_total``,
``_summary``, ``_elements``, ``_include``/``_revinclude`` (with ``:iterate``). An unknown parameter or modifier
is an :class:`~gateway.errors.InvalidSearch` unless the search is lenient, when it is ignored (and left out of
the parameters the result reports as understood).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import InvalidSearch
from gateway.store.dates import date_range
from gateway.store.indexing import MAX_NORM, MAX_TOKEN, normalise, parse_reference
from gateway.store.models import resource, sp_date, sp_reference, sp_string, sp_token
from gateway.store.records import StoredResource
from gateway.store.searchparams import (
    DATE,
    REFERENCE,
    STRING,
    TOKEN,
    URI,
    SearchParameter,
    parameter,
    reference_parameters,
)
from mappings.fhir import SUPPORTED_TYPES

PAGING_PARAMS = frozenset({"_count", "_offset", "_sort", "_total", "_summary", "_elements"})
INCLUDE_PARAMS = frozenset(
    {"_include", "_revinclude", "_include:iterate", "_revinclude:iterate", "_include:recurse", "_revinclude:recurse"}
)
DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap")
SUMMARY_MODES = ("true", "false", "text", "data", "count")
MAX_INCLUDES = 1000
MAX_ITERATIONS = 3
MAX_CHAIN_DEPTH = 3

_TABLES: dict[str, Table] = {TOKEN: sp_token, URI: sp_token, STRING: sp_string, REFERENCE: sp_reference, DATE: sp_date}


@dataclass(slots=True)
class SearchResult:
    """One page of matches, the resources pulled in by _include/_revinclude, and paging facts."""

    matches: list[StoredResource]
    includes: list[StoredResource] = field(default_factory=list)
    total: int | None = None
    offset: int = 0
    count: int = 20
    has_next: bool = False
    params: list[tuple[str, str]] = field(default_factory=list)  # the parameters as understood, for links
    summary: str | None = None  # _summary mode, when given
    elements: tuple[str, ...] | None = None  # _elements, when given

    @property
    def summary_count(self) -> bool:
        return self.summary == "count"


@dataclass(frozen=True, slots=True)
class Include:
    """One ``_include`` or ``_revinclude`` directive: ``source:param[:target]``."""

    source: str
    param: str  # a reference parameter of ``source``, or ``*``
    target: str | None
    reverse: bool
    iterate: bool


@dataclass(slots=True)
class ParsedSearch:
    conditions: list[ColumnElement[bool]]
    understood: list[tuple[str, str]]
    count: int
    offset: int
    sort: list[Any]
    includes: list[Include]
    summary: str | None
    elements: tuple[str, ...] | None
    total_mode: str


# -- small parsers ---------------------------------------------------------------------------------------------


def split_escaped(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split on ``sep`` not preceded by a backslash; unescape ``\\,``, ``\\|``, ``\\$`` and ``\\\\``."""
    parts: list[str] = []
    buf: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            buf.append(text[i + 1])
            i += 2
            continue
        if c == sep and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    parts.append("".join(buf))
    return parts


def _whole_number(name: str, value: str, *, minimum: int = 0) -> int:
    if not value.isdigit() or int(value) < minimum:
        raise InvalidSearch(f"{name} must be a whole number of at least {minimum}, not {value!r}")
    return int(value)


def _date_value(name: str, value: str) -> tuple[str, int, int]:
    prefix = "eq"
    if len(value) > 2 and value[:2] in DATE_PREFIXES:
        prefix, value = value[:2], value[2:]
    try:
        low, high = date_range(value)
    except ValueError as exc:
        raise InvalidSearch(f"{name}: {value!r} is not a FHIR date, dateTime or instant") from exc
    return prefix, low, high


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _pk_in(alias: Any, *, rows: Select[Any], negate: bool = False) -> ColumnElement[bool]:
    """``alias.pk [NOT] IN (rows)``: the shape every indexed condition takes."""
    pk: ColumnElement[Any] = alias.c.pk
    return pk.not_in(rows) if negate else pk.in_(rows)


# -- the compiler ----------------------------------------------------------------------------------------------


class SearchCompiler:
    """Turns search parameters into SQL conditions on a ``resource`` table alias, for one SQL dialect."""

    def __init__(self, dialect: str, *, strict: bool) -> None:
        self.dialect = dialect
        self.strict = strict

    def parse(
        self, res_type: str, params: Sequence[tuple[str, str]], *, default_count: int, max_count: int
    ) -> ParsedSearch:
        parsed = ParsedSearch([], [], default_count, 0, [], [], None, None, "accurate")
        for raw_name, value in params:
            if raw_name in PAGING_PARAMS:
                self._control(parsed, res_type, raw_name, value, max_count)
                parsed.understood.append((raw_name, value))
                continue
            if raw_name in INCLUDE_PARAMS:
                include = self._include(res_type, raw_name, value)
                if include is not None:
                    parsed.includes.append(include)
                    parsed.understood.append((raw_name, value))
                continue
            if value == "":
                continue  # an empty value is ignored (FHIR search, 3.1.1.5)
            condition = self.condition(resource, res_type, raw_name, value)
            if condition is not None:
                parsed.conditions.append(condition)
                parsed.understood.append((raw_name, value))
        return parsed

    def _reject(self, message: str) -> None:
        if self.strict:
            raise InvalidSearch(message)

    # -- controls ---------------------------------------------------------------------------------------------

    def _control(self, parsed: ParsedSearch, res_type: str, name: str, value: str, max_count: int) -> None:
        if name == "_count":
            parsed.count = min(_whole_number(name, value), max_count)
        elif name == "_offset":
            parsed.offset = _whole_number(name, value)
        elif name == "_total":
            if value not in ("none", "estimate", "accurate"):
                raise InvalidSearch(f"_total must be none, estimate or accurate, not {value!r}")
            parsed.total_mode = value
        elif name == "_summary":
            if value not in SUMMARY_MODES:
                raise InvalidSearch(f"_summary must be one of {', '.join(SUMMARY_MODES)}, not {value!r}")
            parsed.summary = value
        elif name == "_elements":
            parsed.elements = tuple(e.strip() for e in value.split(",") if e.strip())
        elif name == "_sort":
            for key in value.split(","):
                parsed.sort.append(self._sort_key(res_type, key.strip()))

    def _sort_key(self, res_type: str, key: str) -> Any:
        descending = key.startswith("-")
        name = key[1:] if descending else key
        if name == "_id":
            column: Any = resource.c.res_id
        elif name == "_lastUpdated":
            column = resource.c.last_updated
        else:
            param = parameter(res_type, name)
            if param is None or param.type == REFERENCE:
                raise InvalidSearch(f"_sort: {name!r} is not a sortable search parameter of {res_type}")
            table = _TABLES[param.type]
            if param.type == DATE:
                value = table.c.low  # by when it starts, either way (an open end must not sort first)
            elif param.type == STRING:
                value = table.c.norm
            else:
                value = table.c.code
            aggregate = func.max(value) if descending else func.min(value)
            column = (
                select(aggregate).where(table.c.res_pk == resource.c.pk, table.c.param == param.name).scalar_subquery()
            )
        return column.desc().nulls_last() if descending else column.asc().nulls_last()

    def _include(self, res_type: str, name: str, value: str) -> Include | None:
        reverse = name.startswith("_revinclude")
        iterate = ":" in name
        parts = value.split(":")
        if len(parts) not in (2, 3) and value != "*":
            raise InvalidSearch(f"{name}={value!r}: expected SourceType:parameter[:TargetType]")
        if value == "*":
            return Include("*", "*", None, reverse, iterate)
        source, param_name = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        if source not in SUPPORTED_TYPES:
            raise InvalidSearch(f"{name}: {source!r} is not a resource type served here")
        if not reverse and not iterate and source != res_type:
            raise InvalidSearch(f"{name}: the source type {source!r} must be the searched type {res_type!r}")
        if param_name != "*":
            param = parameter(source, param_name)
            if param is None or param.type != REFERENCE:
                raise InvalidSearch(f"{name}: {param_name!r} is not a reference parameter of {source}")
            if target is not None and param.targets and target not in param.targets:
                raise InvalidSearch(f"{name}: {source}.{param_name} cannot point to {target}")
        if reverse and not iterate and target is not None and target != res_type:
            raise InvalidSearch(f"{name}: the target type {target!r} must be the searched type {res_type!r}")
        return Include(source, param_name, target, reverse, iterate)

    # -- conditions -------------------------------------------------------------------------------------------

    def condition(
        self, alias: Any, res_type: str, raw_name: str, value: str, depth: int = 0
    ) -> ColumnElement[bool] | None:
        """The SQL condition for one ``name[:modifier][.chain]=value`` on ``alias`` (a resource table)."""
        head, dot, rest = raw_name.partition(".")
        name, _, modifier = head.partition(":")
        param = parameter(res_type, name)
        if param is None:
            self._reject(f"unknown search parameter {name!r} for {res_type}")
            return None
        if dot:
            return self._chain(alias, res_type, param, modifier, rest, value, depth)
        if modifier == "missing":
            if value not in ("true", "false"):
                raise InvalidSearch(f"{name}:missing must be true or false, not {value!r}")
            return self._missing(alias, res_type, param, value == "true")
        values = [v for v in split_escaped(value, ",") if v != ""]
        if not values:
            return None
        if param.name == "_id":
            return self._ids(alias, modifier, values)
        if param.name == "_lastUpdated":
            if modifier:
                raise InvalidSearch(f"_lastUpdated does not take the modifier {modifier!r}")
            return or_(*(self._date_match(name, v, alias.c.last_updated, alias.c.last_updated) for v in values))
        if param.type == TOKEN or param.type == URI:
            return self._token(alias, res_type, param, modifier, values)
        if param.type == STRING:
            return self._string(alias, res_type, param, modifier, values)
        if param.type == DATE:
            if modifier:
                raise InvalidSearch(f"{name}: date parameters take no modifier ({modifier!r} given)")
            rows = sp_date
            matches = or_(*(self._date_match(name, v, rows.c.low, rows.c.high) for v in values))
            return _pk_in(alias, rows=self._rows(rows, res_type, param.name).where(matches))
        return self._reference(alias, res_type, param, modifier, values)

    @staticmethod
    def _rows(table: Table, res_type: str, param_name: str) -> Select[Any]:
        return select(table.c.res_pk).where(table.c.res_type == res_type, table.c.param == param_name)

    def _missing(self, alias: Any, res_type: str, param: SearchParameter, missing: bool) -> ColumnElement[bool]:
        if not param.paths:
            return false() if missing else true()
        rows = self._rows(_TABLES[param.type], res_type, param.name)
        return _pk_in(alias, negate=True, rows=rows) if missing else _pk_in(alias, rows=rows)

    @staticmethod
    def _ids(alias: Any, modifier: str, values: list[str]) -> ColumnElement[bool]:
        res_id: ColumnElement[str] = alias.c.res_id
        if modifier == "not":
            return res_id.not_in(values)
        if modifier:
            raise InvalidSearch(f"_id does not take the modifier {modifier!r}")
        return res_id.in_(values)

    @staticmethod
    def _token_match(value: str) -> ColumnElement[bool]:
        if "|" not in value.replace("\\|", ""):
            return sp_token.c.code == split_escaped(value, "|")[0][:MAX_TOKEN]
        system, code = split_escaped(value, "|", 1)
        if system == "":
            return and_(sp_token.c.system.is_(None), sp_token.c.code == code[:MAX_TOKEN])
        if code == "":
            return sp_token.c.system == system[:MAX_TOKEN]
        return and_(sp_token.c.code == code[:MAX_TOKEN], sp_token.c.system == system[:MAX_TOKEN])

    def _token(
        self, alias: Any, res_type: str, param: SearchParameter, modifier: str, values: list[str]
    ) -> ColumnElement[bool]:
        if modifier not in ("", "not"):
            raise InvalidSearch(f"{param.name}: the token modifier {modifier!r} is not supported")
        if param.type == URI:
            matches: ColumnElement[bool] = sp_token.c.code.in_([v[:MAX_TOKEN] for v in values])
        else:
            matches = or_(*(self._token_match(v) for v in values))
        rows = self._rows(sp_token, res_type, param.name).where(matches)
        return _pk_in(alias, negate=True, rows=rows) if modifier == "not" else _pk_in(alias, rows=rows)

    def _string_match(self, modifier: str, value: str) -> ColumnElement[bool]:
        if modifier == "exact":
            return sp_string.c.exact == value
        norm = normalise(value)
        if modifier == "contains":
            return sp_string.c.norm.like(f"%{_like_escape(norm)}%", escape="\\")
        if len(norm) >= MAX_NORM:
            return sp_string.c.norm == norm
        if self.dialect == "postgresql":  # LIKE 'x%' uses the text_pattern_ops index
            return sp_string.c.norm.like(f"{_like_escape(norm)}%", escape="\\")
        # SQLite: a range on the binary-ordered index; U+10FFFF sorts after every other character.
        return and_(sp_string.c.norm >= norm, sp_string.c.norm < norm + "\U0010ffff")

    def _string(
        self, alias: Any, res_type: str, param: SearchParameter, modifier: str, values: list[str]
    ) -> ColumnElement[bool]:
        if modifier not in ("", "exact", "contains"):
            raise InvalidSearch(f"{param.name}: the string modifier {modifier!r} is not supported")
        matches = or_(*(self._string_match(modifier, v) for v in values))
        return _pk_in(alias, rows=self._rows(sp_string, res_type, param.name).where(matches))

    @staticmethod
    def _date_match(name: str, value: str, low: ColumnElement[int], high: ColumnElement[int]) -> ColumnElement[bool]:
        """The stored range [low, high] against the searched range, per the prefix (FHIR search 3.1.1.4.3)."""
        prefix, s_low, s_high = _date_value(name, value)
        if prefix == "eq":
            return and_(low >= s_low, high <= s_high)
        if prefix == "ne":
            return or_(low < s_low, high > s_high)
        if prefix == "gt":
            return high > s_high
        if prefix == "lt":
            return low < s_low
        if prefix == "ge":
            return high >= s_low
        if prefix == "le":
            return low <= s_high
        if prefix == "sa":
            return low > s_high
        if prefix == "eb":
            return high < s_low
        # ap: overlaps the searched range widened by a tenth of its width, at least a day either side
        margin = max((s_high - s_low) // 10, 86_400_000_000)
        return and_(low <= s_high + margin, high >= s_low - margin)

    def _reference_match(self, param: SearchParameter, type_modifier: str | None, value: str) -> ColumnElement[bool]:
        rows = sp_reference
        conds: list[ColumnElement[bool]] = []
        if "://" in value or value.startswith("urn:"):
            return rows.c.target_url == value
        if "/" in value:
            target_type, target_id, _url = parse_reference(value)
            if target_type is None or target_id is None:
                raise InvalidSearch(f"{param.name}: {value!r} is not a reference like Type/id")
            if type_modifier is not None and target_type != type_modifier:
                raise InvalidSearch(f"{param.name}:{type_modifier}: {value!r} names another type")
            conds += [rows.c.target_id == target_id, rows.c.target_type == target_type]
        else:
            conds.append(rows.c.target_id == value)
            if type_modifier is not None:
                conds.append(rows.c.target_type == type_modifier)
            elif len(param.targets) == 1:
                conds.append(rows.c.target_type == param.targets[0])
        return and_(*conds)

    def _type_modifier(self, param: SearchParameter, modifier: str) -> str | None:
        if modifier and modifier[0].isupper():
            if modifier not in SUPPORTED_TYPES or (param.targets and modifier not in param.targets):
                raise InvalidSearch(f"{param.name}: {modifier!r} is not a type this parameter can point to")
            return modifier
        return None

    def _reference(
        self, alias: Any, res_type: str, param: SearchParameter, modifier: str, values: list[str]
    ) -> ColumnElement[bool]:
        if modifier == "identifier":
            matches = or_(*(self._token_match(v) for v in values))
            rows = self._rows(sp_token, res_type, f"{param.name}:identifier").where(matches)
            return _pk_in(alias, rows=rows)
        type_modifier = self._type_modifier(param, modifier)
        if modifier and type_modifier is None:
            raise InvalidSearch(f"{param.name}: the reference modifier {modifier!r} is not supported")
        matches = or_(*(self._reference_match(param, type_modifier, v) for v in values))
        return _pk_in(alias, rows=self._rows(sp_reference, res_type, param.name).where(matches))

    def _chain(
        self,
        alias: Any,
        res_type: str,
        param: SearchParameter,
        modifier: str,
        rest: str,
        value: str,
        depth: int,
    ) -> ColumnElement[bool] | None:
        if param.type != REFERENCE:
            raise InvalidSearch(f"{param.name} is not a reference parameter, so it cannot be chained")
        if depth >= MAX_CHAIN_DEPTH:
            raise InvalidSearch(f"chains are limited to {MAX_CHAIN_DEPTH} links")
        type_modifier = self._type_modifier(param, modifier)
        if modifier and type_modifier is None:
            raise InvalidSearch(f"{param.name}: the modifier {modifier!r} cannot be chained")
        candidates = [type_modifier] if type_modifier else list(param.targets or SUPPORTED_TYPES)
        chained_name = rest.partition(".")[0].partition(":")[0]
        targets = [t for t in candidates if parameter(t, chained_name) is not None]
        if not targets:
            raise InvalidSearch(f"{param.name}.{chained_name}: no target type of {param.name} has {chained_name!r}")
        target = resource.alias(f"chain{depth}")
        per_type = []
        for target_type in targets:
            inner = self.condition(target, target_type, rest, value, depth + 1)
            if inner is not None:
                per_type.append(and_(target.c.res_type == target_type, inner))
        if not per_type:
            return None
        refs = sp_reference
        rows = (
            select(refs.c.res_pk)
            .join(target, and_(target.c.res_type == refs.c.target_type, target.c.res_id == refs.c.target_id))
            .where(
                refs.c.res_type == res_type,
                refs.c.param == param.name,
                target.c.deleted.is_(False),
                or_(*per_type),
            )
        )
        return _pk_in(alias, rows=rows)


# -- execution -------------------------------------------------------------------------------------------------

_COLUMNS = (resource.c.pk, resource.c.res_type, resource.c.res_id, resource.c.version_id, resource.c.last_updated)


def _stored(row: Any) -> StoredResource:
    return StoredResource(row.res_type, row.res_id, row.version_id, row.last_updated, row.content)


def _base_conditions(res_type: str) -> list[ColumnElement[bool]]:
    return [resource.c.res_type == res_type, resource.c.deleted.is_(False)]


async def find_matches(
    conn: AsyncConnection, res_type: str, params: Sequence[tuple[str, str]], *, limit: int
) -> list[str]:
    """Logical ids of the resources matching a conditional interaction's criteria (at most ``limit``)."""
    criteria = [(k, v) for k, v in params if k not in PAGING_PARAMS and k not in INCLUDE_PARAMS]
    if not criteria:
        raise InvalidSearch("a conditional interaction needs search criteria")
    compiler = SearchCompiler(conn.dialect.name, strict=True)
    conds = _base_conditions(res_type)
    for name, value in criteria:
        cond = compiler.condition(resource, res_type, name, value)
        if cond is not None:
            conds.append(cond)
    q = select(resource.c.res_id).where(*conds).limit(limit)
    return [r[0] for r in (await conn.execute(q)).all()]


async def _include_rows(
    conn: AsyncConnection,
    includes: list[Include],
    found: list[tuple[int, StoredResource]],
    seen: set[int],
    iterate_only: bool,
) -> list[tuple[int, StoredResource]]:
    """The resources the directives pull in from ``found`` (one round), skipping ``seen``."""
    out: list[tuple[int, StoredResource]] = []
    for inc in includes:
        if iterate_only and not inc.iterate:
            continue
        if inc.reverse:
            out += await _reverse_rows(conn, inc, found)
        else:
            out += await _forward_rows(conn, inc, found)
    fresh: list[tuple[int, StoredResource]] = []
    for pk, stored in out:
        if pk not in seen:
            seen.add(pk)
            fresh.append((pk, stored))
    return fresh


async def _forward_rows(
    conn: AsyncConnection, inc: Include, found: list[tuple[int, StoredResource]]
) -> list[tuple[int, StoredResource]]:
    pks = [pk for pk, stored in found if inc.source in ("*", stored.res_type)]
    if not pks:
        return []
    refs = sp_reference
    target = resource.alias("included")
    conds: list[ColumnElement[bool]] = [refs.c.res_pk.in_(pks), target.c.deleted.is_(False)]
    if inc.param != "*":
        conds.append(refs.c.param == inc.param)
    if inc.target is not None:
        conds.append(refs.c.target_type == inc.target)
    q = (
        select(target.c.pk, target.c.res_type, target.c.res_id, target.c.version_id, target.c.last_updated)
        .add_columns(target.c.content)
        .join(refs, and_(target.c.res_type == refs.c.target_type, target.c.res_id == refs.c.target_id))
        .where(*conds)
        .limit(MAX_INCLUDES)
    )
    return [(r.pk, _stored(r)) for r in (await conn.execute(q)).all()]


async def _reverse_rows(
    conn: AsyncConnection, inc: Include, found: list[tuple[int, StoredResource]]
) -> list[tuple[int, StoredResource]]:
    by_type: dict[str, list[str]] = {}
    for _pk, stored in found:
        if inc.target is None or stored.res_type == inc.target:
            by_type.setdefault(stored.res_type, []).append(stored.res_id)
    if not by_type:
        return []
    refs = sp_reference
    source = resource.alias("revincluded")
    targets = or_(*(and_(refs.c.target_type == t, refs.c.target_id.in_(ids)) for t, ids in by_type.items()))
    conds: list[ColumnElement[bool]] = [targets, source.c.deleted.is_(False)]
    if inc.source != "*":
        conds.append(refs.c.res_type == inc.source)
    if inc.param != "*":
        conds.append(refs.c.param == inc.param)
    q = (
        select(source.c.pk, source.c.res_type, source.c.res_id, source.c.version_id, source.c.last_updated)
        .add_columns(source.c.content)
        .join(refs, refs.c.res_pk == source.c.pk)
        .where(*conds)
        .limit(MAX_INCLUDES)
    )
    return [(r.pk, _stored(r)) for r in (await conn.execute(q)).all()]


async def execute_search(
    conn: AsyncConnection,
    res_type: str,
    params: Sequence[tuple[str, str]],
    *,
    strict: bool,
    default_count: int,
    max_count: int,
) -> SearchResult:
    compiler = SearchCompiler(conn.dialect.name, strict=strict)
    parsed = compiler.parse(res_type, params, default_count=default_count, max_count=max_count)
    conds = _base_conditions(res_type) + parsed.conditions
    result = SearchResult(
        [],
        [],
        None,
        parsed.offset,
        parsed.count,
        False,
        parsed.understood,
        parsed.summary,
        parsed.elements,
    )
    if parsed.summary == "count" or parsed.count == 0:
        result.total = (await conn.execute(select(func.count()).select_from(resource).where(*conds))).scalar_one()
        return result
    q = (
        select(*_COLUMNS, resource.c.content)
        .where(*conds)
        .order_by(*parsed.sort, resource.c.pk)
        .offset(parsed.offset)
        .limit(parsed.count + 1)
    )
    rows = (await conn.execute(q)).all()
    result.has_next = len(rows) > parsed.count
    page = [(r.pk, _stored(r)) for r in rows[: parsed.count]]
    result.matches = [stored for _pk, stored in page]
    if parsed.total_mode != "none":
        if not result.has_next and (page or parsed.offset == 0):
            result.total = parsed.offset + len(page)
        else:
            total_q = select(func.count()).select_from(resource).where(*conds)
            result.total = (await conn.execute(total_q)).scalar_one()
    if parsed.includes and page:
        seen = {pk for pk, _ in page}
        included = await _include_rows(conn, parsed.includes, page, seen, iterate_only=False)
        frontier = included
        for _ in range(MAX_ITERATIONS - 1):
            if not frontier or not any(i.iterate for i in parsed.includes):
                break
            frontier = await _include_rows(conn, parsed.includes, frontier, seen, iterate_only=True)
            included += frontier
        result.includes = [stored for _pk, stored in included[:MAX_INCLUDES]]
    return result


__all__ = [
    "Include",
    "SearchCompiler",
    "SearchResult",
    "execute_search",
    "find_matches",
    "reference_parameters",
    "split_escaped",
]
