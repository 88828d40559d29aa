"""FHIR search compiled to indexed SQL over the ``sp_*`` tables.

A search is parsed against the parameter registry (:mod:`gateway.store.searchparams`) into SQL conditions on the
``resource`` table: each parameter becomes ``pk IN (SELECT res_pk FROM sp_<type> WHERE ...)`` (an indexed lookup,
never a scan of JSON); comma-separated values are ORed inside it, repeated parameters are ANDed. Chains
(``patient.identifier=``) join ``sp_reference`` to the target resources and apply the chained parameter to them.

The SQL is written as text with every value bound (``:b0``, ``:b1``...): searches of the same shape give the same
statement, which SQLAlchemy and PostgreSQL prepare once, and building it costs microseconds (building the same
query from SQLAlchemy expression objects cost about 0.3 ms a search, a third of the request). Identifiers in the
text come only from the parameter registry and fixed table names, never from the request.

Supported: token ``[system]|[code]`` and ``:not``; string by prefix (default), ``:exact``, ``:contains``;
reference ``Type/id``, ``id``, absolute URL, type modifier (``subject:Patient``), ``:identifier`` and chains;
date with the prefixes eq, ne, lt, gt, le, ge, sa, eb, ap and precision; uri exact; ``:missing`` on every
parameter. Controls: ``_count``, ``_offset``, ``_sort`` (several keys, ``-`` for descending), ``_total``,
``_summary``, ``_elements``, ``_include``/``_revinclude`` (with ``:iterate``). An unknown parameter or modifier
is an :class:`~gateway.errors.InvalidSearch` unless the search is lenient, when it is ignored (and left out of
the parameters the result reports as understood).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import InvalidSearch
from gateway.store.dates import date_range
from gateway.store.indexing import MAX_NORM, MAX_TOKEN, normalise, parse_reference
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
from gateway.store.statements import fetch, fetch_one
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
    conditions: list[str]  # SQL conditions on the alias ``r``
    understood: list[tuple[str, str]]
    count: int
    offset: int
    sort: list[str]  # ORDER BY terms
    includes: list[Include]
    summary: str | None
    elements: tuple[str, ...] | None
    total_mode: str


# -- small parsers ---------------------------------------------------------------------------------------------


def split_escaped(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split on ``sep`` not preceded by a backslash; unescape ``\\,``, ``\\|``, ``\\$`` and ``\\\\``."""
    if "\\" not in text:
        return text.split(sep, maxsplit)
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
    if not (value.isascii() and value.isdigit()) or int(value) < minimum or int(value) > MAX_WHOLE_NUMBER:
        raise InvalidSearch(f"{name} must be a whole number from {minimum} to {MAX_WHOLE_NUMBER:,}, not {value[:40]!r}")
    return int(value)


#: The largest ``_count`` or ``_offset`` read (both databases hold 64-bit integers; no page is further away).
MAX_WHOLE_NUMBER = 2**62


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


#: The index table of each parameter type.
TABLE_OF = {TOKEN: "sp_token", URI: "sp_token", STRING: "sp_string", REFERENCE: "sp_reference", DATE: "sp_date"}

#: The value column each parameter type sorts on (dates by when they start, either way: an open end must not
#: sort first).
SORT_COLUMN = {TOKEN: "code", URI: "code", STRING: "norm", DATE: "low"}


class Binder:
    """Collects bound values and hands out their placeholders."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        name = f"b{len(self.values)}"
        self.values[name] = value
        return f":{name}"

    def many(self, values: Sequence[Any]) -> str:
        return ", ".join(self(v) for v in values)


_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_:.\-]{0,63}$")


def literal(name: str) -> str:
    """A resource type or parameter name from the registry, written into the SQL as a literal.

    Written, not bound: PostgreSQL plans a prepared statement generically after a few runs, and a generic plan
    cannot use the statistics of ``res_type = 'CareTeam' AND param = 'patient'`` (measured: a chained search ran
    at a third of the speed with these bound). Only names that passed the registry get here; the pattern check
    makes sure nothing else can.
    """
    if not _NAME.match(name):
        raise InvalidSearch(f"{name!r} is not a valid name")
    return f"'{name}'"


def _any(conditions: list[str]) -> str:
    return conditions[0] if len(conditions) == 1 else "(" + " OR ".join(conditions) + ")"


# -- the compiler ----------------------------------------------------------------------------------------------


class SearchCompiler:
    """Turns search parameters into SQL conditions on a ``resource`` table alias, for one SQL dialect."""

    def __init__(self, dialect: str, *, strict: bool, binder: Binder | None = None) -> None:
        self.dialect = dialect
        self.strict = strict
        self.bind = binder or Binder()

    def parse(
        self, res_type: str, params: Sequence[tuple[str, str]], *, default_count: int, max_count: int
    ) -> ParsedSearch:
        parsed = ParsedSearch([], [], default_count, 0, [], [], None, None, "accurate")
        for raw_name, value in params:
            if "\x00" in raw_name or "\x00" in value:  # no FHIR value holds one; PostgreSQL text cannot
                raise InvalidSearch(f"search parameter {raw_name[:40]!r}: a NUL character is not allowed")
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
            condition = self.condition("r", res_type, raw_name, value)
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

    def _sort_key(self, res_type: str, key: str) -> str:
        descending = key.startswith("-")
        name = key[1:] if descending else key
        if name == "_id":
            column = "r.res_id"
        elif name == "_lastUpdated":
            column = "r.last_updated"
        else:
            param = parameter(res_type, name)
            if param is None or param.type == REFERENCE:
                raise InvalidSearch(f"_sort: {name!r} is not a sortable search parameter of {res_type}")
            aggregate = "max" if descending else "min"
            column = (
                f"(SELECT {aggregate}(s.{SORT_COLUMN[param.type]}) FROM {TABLE_OF[param.type]} s"
                f" WHERE s.res_pk = r.pk AND s.param = {literal(param.name)})"
            )
        return f"{column} {'DESC' if descending else 'ASC'} NULLS LAST"

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

    def condition(self, alias: str, res_type: str, raw_name: str, value: str, depth: int = 0) -> str | None:
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
            column = f"{alias}.last_updated"
            return _any([self._date_match(name, v, column, column) for v in values])
        if param.type == TOKEN or param.type == URI:
            return self._token(alias, res_type, param, modifier, values)
        if param.type == STRING:
            return self._string(alias, res_type, param, modifier, values)
        if param.type == DATE:
            if modifier:
                raise InvalidSearch(f"{name}: date parameters take no modifier ({modifier!r} given)")
            matches = _any([self._date_match(name, v, "s.low", "s.high") for v in values])
            return self._pk_in(alias, "sp_date", res_type, param.name, matches)
        return self._reference(alias, res_type, param, modifier, values)

    def _pk_in(
        self, alias: str, table: str, res_type: str, param_name: str, matches: str | None, *, negate: bool = False
    ) -> str:
        """``alias.pk [NOT] IN (index rows of this parameter that match)``: the shape of every indexed condition."""
        rows = f"SELECT s.res_pk FROM {table} s WHERE s.res_type = {literal(res_type)}"
        rows += f" AND s.param = {literal(param_name)}"
        if matches:
            rows += f" AND {matches}"
        return f"{alias}.pk {'NOT IN' if negate else 'IN'} ({rows})"

    def _missing(self, alias: str, res_type: str, param: SearchParameter, missing: bool) -> str:
        if not param.paths:
            return "1 = 0" if missing else "1 = 1"
        return self._pk_in(alias, TABLE_OF[param.type], res_type, param.name, None, negate=missing)

    def _ids(self, alias: str, modifier: str, values: list[str]) -> str:
        if modifier not in ("", "not"):
            raise InvalidSearch(f"_id does not take the modifier {modifier!r}")
        return f"{alias}.res_id {'NOT IN' if modifier == 'not' else 'IN'} ({self.bind.many(values)})"

    def _token_match(self, value: str) -> str:
        if "|" not in value.replace("\\|", ""):
            return f"s.code = {self.bind(split_escaped(value, '|')[0][:MAX_TOKEN])}"
        system, code = split_escaped(value, "|", 1)
        if system == "":
            return f"(s.system IS NULL AND s.code = {self.bind(code[:MAX_TOKEN])})"
        if code == "":
            return f"s.system = {self.bind(system[:MAX_TOKEN])}"
        return f"(s.code = {self.bind(code[:MAX_TOKEN])} AND s.system = {self.bind(system[:MAX_TOKEN])})"

    def _token(self, alias: str, res_type: str, param: SearchParameter, modifier: str, values: list[str]) -> str:
        if modifier not in ("", "not"):
            raise InvalidSearch(f"{param.name}: the token modifier {modifier!r} is not supported")
        if param.type == URI:
            matches = f"s.code IN ({self.bind.many([v[:MAX_TOKEN] for v in values])})"
        else:
            matches = _any([self._token_match(v) for v in values])
        return self._pk_in(alias, "sp_token", res_type, param.name, matches, negate=modifier == "not")

    def _string_match(self, modifier: str, value: str) -> str:
        if modifier == "exact":
            return f"s.exact = {self.bind(value)}"
        norm = normalise(value)
        if modifier == "contains":
            return f"s.norm LIKE {self.bind('%' + _like_escape(norm) + '%')} ESCAPE '\\'"
        if len(norm) >= MAX_NORM:
            return f"s.norm = {self.bind(norm)}"
        if self.dialect == "postgresql":  # LIKE 'x%' uses the text_pattern_ops index
            return f"s.norm LIKE {self.bind(_like_escape(norm) + '%')} ESCAPE '\\'"
        # SQLite: a range on the binary-ordered index; U+10FFFF sorts after every other character.
        return f"(s.norm >= {self.bind(norm)} AND s.norm < {self.bind(norm + chr(0x10FFFF))})"

    def _string(self, alias: str, res_type: str, param: SearchParameter, modifier: str, values: list[str]) -> str:
        if modifier not in ("", "exact", "contains"):
            raise InvalidSearch(f"{param.name}: the string modifier {modifier!r} is not supported")
        matches = _any([self._string_match(modifier, v) for v in values])
        return self._pk_in(alias, "sp_string", res_type, param.name, matches)

    def _date_match(self, name: str, value: str, low: str, high: str) -> str:
        """The stored range [low, high] against the searched range, per the prefix (FHIR search 3.1.1.4.3)."""
        prefix, s_low, s_high = _date_value(name, value)
        b = self.bind
        if prefix == "eq":
            return f"({low} >= {b(s_low)} AND {high} <= {b(s_high)})"
        if prefix == "ne":
            return f"({low} < {b(s_low)} OR {high} > {b(s_high)})"
        if prefix == "gt":
            return f"{high} > {b(s_high)}"
        if prefix == "lt":
            return f"{low} < {b(s_low)}"
        if prefix == "ge":
            return f"{high} >= {b(s_low)}"
        if prefix == "le":
            return f"{low} <= {b(s_high)}"
        if prefix == "sa":
            return f"{low} > {b(s_high)}"
        if prefix == "eb":
            return f"{high} < {b(s_low)}"
        # ap: overlaps the searched range widened by a tenth of its width, at least a day either side
        margin = max((s_high - s_low) // 10, 86_400_000_000)
        return f"({low} <= {b(s_high + margin)} AND {high} >= {b(s_low - margin)})"

    def _reference_match(self, param: SearchParameter, type_modifier: str | None, value: str) -> str:
        if "://" in value or value.startswith("urn:"):
            return f"s.target_url = {self.bind(value)}"
        if "/" in value:
            target_type, target_id, _url = parse_reference(value)
            if target_type is None or target_id is None:
                raise InvalidSearch(f"{param.name}: {value!r} is not a reference like Type/id")
            if type_modifier is not None and target_type != type_modifier:
                raise InvalidSearch(f"{param.name}:{type_modifier}: {value!r} names another type")
            return f"(s.target_id = {self.bind(target_id)} AND s.target_type = {literal(target_type)})"
        if type_modifier is not None:
            return f"(s.target_id = {self.bind(value)} AND s.target_type = {literal(type_modifier)})"
        if len(param.targets) == 1:
            return f"(s.target_id = {self.bind(value)} AND s.target_type = {literal(param.targets[0])})"
        return f"s.target_id = {self.bind(value)}"

    def _type_modifier(self, param: SearchParameter, modifier: str) -> str | None:
        if modifier and modifier[0].isupper():
            if modifier not in SUPPORTED_TYPES or (param.targets and modifier not in param.targets):
                raise InvalidSearch(f"{param.name}: {modifier!r} is not a type this parameter can point to")
            return modifier
        return None

    def _reference(self, alias: str, res_type: str, param: SearchParameter, modifier: str, values: list[str]) -> str:
        if modifier == "identifier":
            matches = _any([self._token_match(v) for v in values])
            return self._pk_in(alias, "sp_token", res_type, f"{param.name}:identifier", matches)
        type_modifier = self._type_modifier(param, modifier)
        if modifier and type_modifier is None:
            raise InvalidSearch(f"{param.name}: the reference modifier {modifier!r} is not supported")
        matches = _any([self._reference_match(param, type_modifier, v) for v in values])
        return self._pk_in(alias, "sp_reference", res_type, param.name, matches)

    def _chain(
        self,
        alias: str,
        res_type: str,
        param: SearchParameter,
        modifier: str,
        rest: str,
        value: str,
        depth: int,
    ) -> str | None:
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
        target = f"t{depth}"
        per_type = []
        for target_type in targets:
            inner = self.condition(target, target_type, rest, value, depth + 1)
            if inner is not None:
                per_type.append(f"({target}.res_type = {literal(target_type)} AND {inner})")
        if not per_type:
            return None
        refs = f"c{depth}"
        rows = (
            f"SELECT {refs}.res_pk FROM sp_reference {refs} JOIN resource {target}"
            f" ON {target}.res_type = {refs}.target_type AND {target}.res_id = {refs}.target_id"
            f" WHERE {refs}.res_type = {literal(res_type)} AND {refs}.param = {literal(param.name)}"
            f" AND {target}.deleted = false AND {_any(per_type)}"
        )
        return f"{alias}.pk IN ({rows})"


# -- execution -------------------------------------------------------------------------------------------------

_COLUMNS = "r.pk, r.res_type, r.res_id, r.version_id, r.last_updated, r.content"


def _stored(row: Any) -> StoredResource:
    return StoredResource(row[1], row[2], row[3], row[4], row[5])  # the order of _COLUMNS


async def _count(conn: AsyncConnection, sql: str, values: dict[str, Any]) -> int:
    row = await fetch_one(conn, sql, values)
    return int(row[0]) if row is not None else 0


def _where(compiler: SearchCompiler, res_type: str, conditions: list[str]) -> str:
    return " AND ".join([f"r.res_type = {literal(res_type)}", "r.deleted = false", *conditions])


async def find_matches(
    conn: AsyncConnection, res_type: str, params: Sequence[tuple[str, str]], *, limit: int
) -> list[str]:
    """Logical ids of the resources matching a conditional interaction's criteria (at most ``limit``)."""
    criteria = [(k, v) for k, v in params if k not in PAGING_PARAMS and k not in INCLUDE_PARAMS]
    if not criteria:
        raise InvalidSearch("a conditional interaction needs search criteria")
    compiler = SearchCompiler(conn.dialect.name, strict=True)
    conds = []
    for name, value in criteria:
        cond = compiler.condition("r", res_type, name, value)
        if cond is not None:
            conds.append(cond)
    sql = f"SELECT r.res_id FROM resource r WHERE {_where(compiler, res_type, conds)} LIMIT {compiler.bind(limit)}"
    return [row[0] for row in await fetch(conn, sql, compiler.bind.values)]


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
    b = Binder()
    sql = (
        f"SELECT {_COLUMNS} FROM sp_reference s JOIN resource r"
        " ON r.res_type = s.target_type AND r.res_id = s.target_id"
        f" WHERE s.res_pk IN ({b.many(pks)}) AND r.deleted = false"
    )
    if inc.param != "*":
        sql += f" AND s.param = {literal(inc.param)}"
    if inc.target is not None:
        sql += f" AND s.target_type = {literal(inc.target)}"
    sql += f" ORDER BY r.pk LIMIT {b(MAX_INCLUDES)}"
    return [(row[0], _stored(row)) for row in await fetch(conn, sql, b.values)]


async def _reverse_rows(
    conn: AsyncConnection, inc: Include, found: list[tuple[int, StoredResource]]
) -> list[tuple[int, StoredResource]]:
    by_type: dict[str, list[str]] = {}
    for _pk, stored in found:
        if inc.target is None or stored.res_type == inc.target:
            by_type.setdefault(stored.res_type, []).append(stored.res_id)
    if not by_type:
        return []
    b = Binder()
    targets = _any([f"(s.target_type = {literal(t)} AND s.target_id IN ({b.many(ids)}))" for t, ids in by_type.items()])
    sql = (
        f"SELECT {_COLUMNS} FROM sp_reference s JOIN resource r ON r.pk = s.res_pk"
        f" WHERE {targets} AND r.deleted = false"
    )
    if inc.source != "*":
        sql += f" AND s.res_type = {literal(inc.source)}"
    if inc.param != "*":
        sql += f" AND s.param = {literal(inc.param)}"
    sql += f" ORDER BY r.pk LIMIT {b(MAX_INCLUDES)}"
    return [(row[0], _stored(row)) for row in await fetch(conn, sql, b.values)]


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
    where = _where(compiler, res_type, parsed.conditions)
    values = compiler.bind.values
    result = SearchResult(
        [], [], None, parsed.offset, parsed.count, False, parsed.understood, parsed.summary, parsed.elements
    )
    count_sql = f"SELECT count(*) FROM resource r WHERE {where}"
    if parsed.summary == "count" or parsed.count == 0:
        result.total = await _count(conn, count_sql, values)
        return result
    order = ", ".join([*parsed.sort, "r.pk"])
    page_sql = f"SELECT {_COLUMNS} FROM resource r WHERE {where} ORDER BY {order} LIMIT :page_limit OFFSET :page_offset"
    rows = await fetch(conn, page_sql, {**values, "page_limit": parsed.count + 1, "page_offset": parsed.offset})
    result.has_next = len(rows) > parsed.count
    page = [(row[0], _stored(row)) for row in rows[: parsed.count]]
    result.matches = [stored for _pk, stored in page]
    if parsed.total_mode != "none":
        if not result.has_next and (page or parsed.offset == 0):
            result.total = parsed.offset + len(page)
        else:
            result.total = await _count(conn, count_sql, values)
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
    "Binder",
    "Include",
    "SearchCompiler",
    "SearchResult",
    "execute_search",
    "find_matches",
    "reference_parameters",
    "split_escaped",
]
