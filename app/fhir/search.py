"""FHIR R4 search of stored results (``GET /fhir/r4/Observation?subject=…``): reading the query
string into a ``Search``, deciding which rendered resources it matches, and the searchset
Bundle of a page. Pure; the reading of screenings is app/fhir/service.py's.

What is supported: ``subject`` and ``patient`` (references), ``code`` and ``identifier``
(tokens; ``identifier`` alone, without a subject, finds one screening's results), ``date`` on
Observations (``effectiveDateTime``, with the prefixes eq, ne, gt, lt, ge and le), ``_count``,
``_sort=-date`` (the only order: newest first) and ``_cursor`` (the next link's). As FHIR R4
asks, an unknown parameter is ignored unless the client sends ``Prefer: handling=strict``, and
is then reported in the Bundle, as an OperationOutcome entry (``search.mode = outcome``),
and left out of the ``self`` link; a known parameter with a modifier (``code:text``) is
refused, as FHIR requires of modifiers a server does not support. Errors name the parameter,
never the value sent."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

from app.engine.determination import LevelOfCare
from app.fhir.outcome import FhirError, Issue
from app.kernel.text import NO_CONTROL_CHARACTERS
from app.programs.repository import ProgramCriteria
from app.screenings.models import normal_reference

MAX_COUNT = 100
DEFAULT_COUNT = 20
MAX_SCREENINGS = 50  # an identifier search without a subject reads each screening it names
# What each resource type can be searched by, besides the common parameters.
PARAMETERS = {
    "Observation": frozenset({"subject", "patient", "code", "date", "identifier"}),
    "ServiceRequest": frozenset({"subject", "patient", "code", "identifier"}),
}
COMMON = frozenset({"_count", "_sort", "_cursor", "_format"})
NEWEST_FIRST = "-date"

_PLAIN = re.compile(NO_CONTROL_CHARACTERS)
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-.:]{0,63}")
_DATE = re.compile(
    r"(?P<prefix>eq|ne|gt|lt|ge|le|sa|eb|ap)?"
    r"(?P<value>\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?)?)?)"
)
_SUPPORTED_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")


@dataclass(frozen=True, slots=True)
class DateBound:
    """One value of ``date``: a prefix and the range the value's precision spans."""

    prefix: str
    low: datetime
    high: datetime  # exclusive


@dataclass(frozen=True, slots=True)
class Token:
    """One value of ``code``: None for "any" system or code."""

    system: str | None
    code: str | None
    no_system: bool = False  # ``|code``: codes without a system


@dataclass(frozen=True, slots=True)
class Search:
    """A search of one resource type: each tuple of alternatives is ORed, the tuples ANDed."""

    resource_type: str
    references: frozenset[str] | None  # None: not by subject (by identifier only)
    dates: tuple[tuple[DateBound, ...], ...] = ()
    codes: tuple[tuple[Token, ...], ...] = ()
    identifiers: tuple[tuple[Token, ...], ...] = ()
    count: int = DEFAULT_COUNT
    cursor: str | None = None
    used: tuple[tuple[str, str], ...] = ()  # (name, value) as applied: the self link's
    ignored: tuple[str, ...] = ()  # names of the parameters left out


def strict_handling(prefer: str | None) -> bool:
    """Whether ``Prefer`` asks for ``handling=strict`` (FHIR's default is lenient)."""
    for preference in (prefer or "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "handling":
            return value.strip().strip('"').lower() == "strict"
    return False


def _error(parameter: str, problem: str, code: str = "invalid") -> FhirError:
    return FhirError(
        400,
        f"The search parameter '{parameter}' cannot be used.",
        [Issue(diagnostics=f"{parameter}: {problem}", code=code)],
    )


def _safe_name(name: str) -> str:
    return name if _NAME.fullmatch(name) else "(a parameter)"


def parse_search(
    resource_type: str, parameters: Sequence[tuple[str, str]], *, strict: bool
) -> Search:
    """The search a query string asks for; 400 (an OperationOutcome) when it cannot be run."""
    supported = PARAMETERS[resource_type] | COMMON
    ignored = unknown_parameters(parameters, supported, strict=strict)
    reader = _Reader(resource_type)
    for name, value in parameters:
        if not value or name == "_format" or name not in supported:
            continue
        if len(value) > 1000 or not _PLAIN.match(value):
            raise _error(name, "is too long or holds control characters")
        reader.read(name, value)
    return reader.search(ignored)


def unknown_parameters(
    parameters: Sequence[tuple[str, str]], supported: frozenset[str], *, strict: bool
) -> tuple[str, ...]:
    """The names of the parameters a search does not support, to report as ignored (FHIR
    R4's lenient handling); 400 for one when ``strict``, and for a supported parameter with a
    modifier either way. Empty parameters and ``_format`` (negotiated before) never count."""
    ignored: list[str] = []
    for name, value in parameters:
        if not value or name == "_format" or name in supported:
            continue
        if name.split(":", 1)[0] in supported:
            raise _error(_safe_name(name), "modifiers are not supported", "not-supported")
        if strict:
            raise _error(_safe_name(name), "is not supported here", "not-supported")
        ignored.append(_safe_name(name))
    return tuple(ignored)


class _Reader:
    def __init__(self, resource_type: str) -> None:
        self.resource_type = resource_type
        self.references: list[set[str]] = []
        self.dates: list[tuple[DateBound, ...]] = []
        self.codes: list[tuple[Token, ...]] = []
        self.identifiers: list[tuple[Token, ...]] = []
        self.single: dict[str, str] = {}
        self.used: list[tuple[str, str]] = []

    def read(self, name: str, value: str) -> None:
        if name in ("subject", "patient"):
            self.references.append({_reference(name, v) for v in value.split(",")})
        elif name == "date":
            self.dates.append(tuple(_date_bound(v) for v in value.split(",")))
        elif name == "code":
            self.codes.append(tuple(_token(v) for v in value.split(",")))
        elif name == "identifier":
            self.identifiers.append(tuple(_identifier(v) for v in value.split(",")))
        elif name in self.single:
            raise _error(name, "may be given once")
        else:
            self.single[name] = value
            if name == "_cursor":
                return  # the next link gives it; the self link stays the search's
        self.used.append((name, value))

    def search(self, ignored: tuple[str, ...]) -> Search:
        if not self.references and not self.identifiers:
            raise _error(
                "subject", "search by subject or patient (Patient/123), or identifier", "required"
            )
        references = set.intersection(*self.references) if self.references else None
        if references is None and len(screening_ids(tuple(self.identifiers))) > MAX_SCREENINGS:
            raise _error("identifier", f"names more than {MAX_SCREENINGS} screenings")
        sort = self.single.get("_sort")
        if sort is not None and sort != NEWEST_FIRST:
            raise _error("_sort", f"results come newest first: only {NEWEST_FIRST}")
        return Search(
            resource_type=self.resource_type,
            references=None if references is None else frozenset(references),
            dates=tuple(self.dates),
            codes=tuple(self.codes),
            identifiers=tuple(self.identifiers),
            count=_count(self.single.get("_count")),
            cursor=self.single.get("_cursor"),
            used=tuple(self.used),
            ignored=ignored,
        )


def _count(value: str | None) -> int:
    if value is None:
        return DEFAULT_COUNT
    if not value.isdigit() or int(value) < 1:
        raise _error("_count", "must be a whole number of at least 1")
    return min(int(value), MAX_COUNT)  # FHIR lets a server return fewer than asked


def _reference(name: str, value: str) -> str:
    """``Patient/123``, ``https://ehr.example/fhir/Patient/123`` or a bare id (a Patient's)."""
    reference = f"Patient/{value}" if _ID.fullmatch(value) else normal_reference(value)
    if reference is None:
        raise _error(name, "must be a reference (Patient/123, or an absolute URL) or an id")
    if name == "patient" and reference.rsplit("/", 2)[-2] != "Patient":
        raise _error(name, "must reference a Patient")
    return reference


def _token(value: str) -> Token:
    if "|" not in value:
        return Token(system=None, code=value)
    system, _, code = value.partition("|")
    return Token(system=system or None, code=code or None, no_system=not system)


def _identifier(value: str) -> Token:
    """``system|value``, or a value in any system; each screening's results are found by it."""
    token = _token(value)
    if token.code is None:
        raise _error("identifier", "must give a value (system|value, or value)")
    return token


def screening_ids(identifiers: tuple[tuple[Token, ...], ...]) -> frozenset[str]:
    """The screenings whose results can meet every identifier criterion: carelevel's result
    and screening identifiers begin with the screening's id (a UUID)."""
    candidates = [
        {t.code[:36] for t in tokens if t.code is not None and len(t.code) >= 36}
        for tokens in identifiers
    ]
    return frozenset(set.intersection(*candidates)) if candidates else frozenset()


def _date_bound(value: str) -> DateBound:
    found = _DATE.fullmatch(value)
    if found is None:
        raise _error("date", "must be a FHIR date or dateTime, with an optional prefix (ge2026-01)")
    prefix = found["prefix"] or "eq"
    if prefix not in _SUPPORTED_PREFIXES:
        raise _error("date", "the prefixes sa, eb and ap are not supported", "not-supported")
    spanned = date_range(found["value"])
    if spanned is None:
        raise _error("date", "is not a valid date")
    return DateBound(prefix, *spanned)


def date_range(value: str) -> tuple[datetime, datetime] | None:
    """The range a FHIR date or dateTime spans at its precision (``2026-01`` the month); a
    time without a zone is taken as UTC. None: not a valid one."""
    try:
        if len(value) == 4:
            year = int(value)
            return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        if len(value) == 7:
            low = datetime.strptime(value, "%Y-%m").replace(tzinfo=UTC)
            return low, (low + timedelta(days=32)).replace(day=1)
        if len(value) == 10:
            low = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
            return low, low + timedelta(days=1)
        low = datetime.fromisoformat(value.replace("Z", "+00:00"))
        low = low if low.tzinfo else low.replace(tzinfo=UTC)
        return low, low + _precision(value[11:])
    except (ValueError, OverflowError):  # out of range: 9999-12-31T23:59:59Z has no end
        return None


def _precision(time: str) -> timedelta:
    """The span of a time of day at the precision written (minutes, seconds, fractions)."""
    time = time.split("+")[0].split("-")[0].rstrip("Z")
    if "." in time:
        return timedelta(microseconds=1)
    return timedelta(minutes=1) if len(time) == 5 else timedelta(seconds=1)


def _date_matches(bound: DateBound, low: datetime, high: datetime) -> bool:
    """FHIR R4's comparison of the target's range [low, high) with the bound's."""
    within = bound.low <= low and high <= bound.high
    if bound.prefix == "eq":
        return within
    if bound.prefix == "ne":
        return not within
    if bound.prefix in ("gt", "ge"):
        return high > bound.high or (bound.prefix == "ge" and within)
    return low < bound.low or (bound.prefix == "le" and within)


def _code_matches(token: Token, coding: dict[str, Any]) -> bool:
    system = coding.get("system")
    if token.no_system and system is not None:
        return False
    if token.system is not None and system != token.system:
        return False
    return token.code is None or coding.get("code") == token.code


def _tokens_match(criteria: tuple[tuple[Token, ...], ...], codings: list[dict[str, Any]]) -> bool:
    """Each criterion met by one of its alternatives (identifiers as codings: value → code)."""
    return all(any(_code_matches(t, c) for t in tokens for c in codings) for tokens in criteria)


def matches(resource: dict[str, Any], search: Search) -> bool:
    """Whether a rendered resource of the search's type meets its code and date criteria."""
    if resource.get("resourceType") != search.resource_type:
        return False
    codings = [c for c in (resource.get("code") or {}).get("coding") or [] if isinstance(c, dict)]
    identifiers = [
        {"system": i.get("system"), "code": i.get("value")}
        for i in resource.get("identifier") or []
        if isinstance(i, dict)
    ]
    if not (
        _tokens_match(search.codes, codings) and _tokens_match(search.identifiers, identifiers)
    ):
        return False
    if not search.dates:
        return True
    effective = resource.get("effectiveDateTime")
    spanned = date_range(effective) if isinstance(effective, str) else None
    if spanned is None:
        return False
    return all(any(_date_matches(b, *spanned) for b in bounds) for bounds in search.dates)


def search_bundle(
    base: str, search: Search | ServiceSearch, found: list[dict[str, Any]], next_cursor: str | None
) -> dict[str, Any]:
    """The searchset Bundle of one page: ``self`` names the parameters applied, ``next`` (if
    there are more) the same with the cursor of the page after."""
    address = f"{base}/fhir/r4/{search.resource_type}"
    links = [{"relation": "self", "url": f"{address}?{urlencode(search.used)}"}]
    if next_cursor is not None:
        following = urlencode([*search.used, ("_cursor", next_cursor)])
        links.append({"relation": "next", "url": f"{address}?{following}"})
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{address}/{resource['id']}",
            "resource": resource,
            "search": {"mode": "match"},
        }
        for resource in found
    ]
    if search.ignored:
        entries.append(ignored_entry(search.ignored))
    return {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}


def ignored_entry(names: tuple[str, ...]) -> dict[str, Any]:
    """The searchset entry (``search.mode = outcome``) warning of the parameters ignored."""
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "warning",
                "code": "not-supported",
                "diagnostics": f"{name}: is not supported here and was ignored "
                "(send Prefer: handling=strict to have it refused)",
            }
            for name in names
        ],
    }
    return {"resource": outcome, "search": {"mode": "outcome"}}


# --- the program directory (HealthcareService) -----------------------------------------------

SERVICE_PARAMETERS = frozenset({"_id", "active", "name", "service-category"})
_SERVICE_PAGING = frozenset({"_count", "_cursor"})


@dataclass(frozen=True, slots=True)
class ServiceSearch:
    """A search of the tenant's HealthcareServices (its programs): each tuple of alternatives
    is ORed, the criteria ANDed. ``names``: prefixes as sent. Paged like the results'
    searches: ``count`` a page, ``cursor`` the next link's."""

    resource_type: ClassVar[str] = "HealthcareService"
    ids: tuple[frozenset[str], ...] = ()
    active: bool | None = None
    names: tuple[tuple[str, ...], ...] = ()
    categories: tuple[tuple[Token, ...], ...] = ()
    count: int = DEFAULT_COUNT
    cursor: str | None = None
    used: tuple[tuple[str, str], ...] = ()  # (name, value) as applied: the self link's
    ignored: tuple[str, ...] = ()


def parse_service_search(parameters: Sequence[tuple[str, str]], *, strict: bool) -> ServiceSearch:
    """The HealthcareService search a query string asks for; 400 when it cannot be run."""
    supported = SERVICE_PARAMETERS | _SERVICE_PAGING | {"_format"}
    ignored = unknown_parameters(parameters, supported, strict=strict)
    ids: list[frozenset[str]] = []
    names: list[tuple[str, ...]] = []
    categories: list[tuple[Token, ...]] = []
    single: dict[str, str] = {}
    used: list[tuple[str, str]] = []
    for name, value in parameters:
        if not value or name not in supported - {"_format"}:
            continue
        if len(value) > 1000 or not _PLAIN.match(value):
            raise _error(name, "is too long or holds control characters")
        if name == "_id":
            ids.append(frozenset(value.split(",")))
        elif name == "name":
            names.append(tuple(value.split(",")))
        elif name == "service-category":
            categories.append(tuple(_token(v) for v in value.split(",")))
        elif name in single:
            raise _error(name, "may be given once")
        else:
            single[name] = value
        if name != "_cursor":  # the next link gives it; the self link stays the search's
            used.append((name, value))
    active = single.get("active")
    if active not in (None, "true", "false"):
        raise _error("active", "must be true or false, given once")
    return ServiceSearch(
        ids=tuple(ids),
        active=None if active is None else active == "true",
        names=tuple(names),
        categories=tuple(categories),
        count=_count(single.get("_count")),
        cursor=single.get("_cursor"),
        used=tuple(used),
        ignored=ignored,
    )


def program_criteria(search: ServiceSearch, levels_system: str) -> ProgramCriteria:
    """What ``search`` asks of the programs table: ``service-category`` is the level of care,
    a code of ``levels_system`` (a token of another system, or ``|code``, finds none)."""
    return ProgramCriteria(
        ids=search.ids,
        retired=None if search.active is None else not search.active,
        name_prefixes=search.names,
        levels=tuple(_levels(tokens, levels_system) for tokens in search.categories),
    )


def _levels(tokens: tuple[Token, ...], levels_system: str) -> frozenset[str]:
    found: set[str] = set()
    for token in tokens:
        if token.no_system or token.system not in (None, levels_system):
            continue
        found |= {level.value for level in LevelOfCare} if token.code is None else {token.code}
    return frozenset(found)
