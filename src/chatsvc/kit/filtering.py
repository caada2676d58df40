"""List filters, ordering and sparse fieldsets from query-string text, shared by every list. Values
are parsed here, not by FastAPI, so a bad one is a 400 that names the parameter (never a 500)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import QueryableAttribute

from chatsvc.kit.errors import FieldError, Invalid

S = TypeVar("S", bound=Select[Any])
#: what a list orders by: a mapped attribute or any SQL expression
Orderable = ColumnElement[Any] | QueryableAttribute[Any]
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


#: how an empty filter value (`?start_date=`) is documented: it means "no filter", as if the
#: parameter were left out (the parse_* functions below), so the OpenAPI document allows it
EMPTY_MEANS_NONE = {"type": "string", "maxLength": 0, "description": "Empty: no filter."}


def filter_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI schema of a filter parameter read as text and parsed here: `schema` (what
    a value must be), empty (no filter) or left out."""
    return {"anyOf": [schema, EMPTY_MEANS_NONE, {"type": "null"}]}


def _invalid(name: str, message: str, code: str) -> Invalid:
    return Invalid(message, code=code, errors=[FieldError(f"query.{name}", message)])


def _shown(value: str) -> str:
    return repr(value[:80])


def parse_day(name: str, value: str | None) -> date | None:
    """A YYYY-MM-DD filter value (empty means none); Invalid naming the parameter otherwise."""
    if not value:
        return None
    try:
        if not _DAY.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise _invalid(
            name, f"{name} must be a date as YYYY-MM-DD, got {_shown(value)}.", "invalid_date"
        ) from None


def check_day_range(start_date: date | None, end_date: date | None) -> None:
    """Whole days, both ends included: a start after the end is refused (400)."""
    if start_date and end_date and start_date > end_date:
        raise Invalid(
            f"start_date ({start_date}) is after end_date ({end_date}).",
            code="invalid_date_range",
        )


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants [day 00:00, next day 00:00) of a whole day."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def parse_bool(name: str, value: str | None) -> bool | None:
    """true/false (or 1/0, any case); empty means no filter."""
    if not value:
        return None
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _invalid(name, f"{name} must be true or false, got {_shown(value)}.", "invalid_filter")


def parse_choice(name: str, value: str | None, choices: Sequence[str]) -> str | None:
    """One of `choices` (exact); empty means no filter."""
    if not value:
        return None
    if value not in choices:
        raise _invalid(
            name,
            f"{name} must be one of {', '.join(choices)}; got {_shown(value)}.",
            "invalid_filter",
        )
    return value


def parse_uuid(name: str, value: str | None) -> str | None:
    """A UUID, in its canonical lower-case form; empty means no filter."""
    if not value:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise _invalid(
            name, f"{name} must be a UUID, got {_shown(value)}.", "invalid_filter"
        ) from None


def split_values(values: Iterable[str] | None) -> list[str]:
    """A multi-valued parameter, given repeated (`?o=a&o=b`), comma-separated (`?o=a,b`) or
    both; blanks dropped."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


@dataclass(frozen=True, slots=True)
class OrderKey:
    name: str
    descending: bool = False


def parse_ordering(
    name: str, values: Iterable[str] | None, allowed: Collection[str]
) -> tuple[OrderKey, ...]:
    """Ordering keys such as `-created,name` (`-` for descending), each one of `allowed` and named
    once. Empty means the caller's default."""
    keys: list[OrderKey] = []
    for raw in split_values(values):
        key = OrderKey(raw[1:], True) if raw.startswith("-") else OrderKey(raw)
        if key.name not in allowed:
            raise _invalid(
                name,
                f"{name} cannot order by {_shown(raw)}; use {', '.join(sorted(allowed))} "
                "(with a leading - for descending).",
                "invalid_ordering",
            )
        if any(k.name == key.name for k in keys):
            raise _invalid(name, f"{name} names {key.name!r} twice.", "invalid_ordering")
        keys.append(key)
    return tuple(keys)


def order_by(
    statement: S,
    keys: Sequence[OrderKey],
    columns: Mapping[str, Orderable],
    tiebreak: Orderable,
) -> S:
    """Order by `keys` (names of `columns`), then by `tiebreak` (a unique column, so pages do not
    overlap) in the direction of the first key."""
    clauses = [columns[k.name].desc() if k.descending else columns[k.name].asc() for k in keys]
    clauses.append(tiebreak.desc() if keys and keys[0].descending else tiebreak.asc())
    return statement.order_by(*clauses)


def parse_fields(
    name: str, values: Iterable[str] | None, allowed: Sequence[str]
) -> tuple[str, ...] | None:
    """A sparse fieldset: the fields to answer, in the order of `allowed`; None means all."""
    wanted = split_values(values)
    if not wanted:
        return None
    unknown = [field for field in wanted if field not in allowed]
    if unknown:
        raise _invalid(
            name,
            f"{name} {_shown(unknown[0])} is not a field; choose from {', '.join(allowed)}.",
            "invalid_field",
        )
    return tuple(field for field in allowed if field in wanted)


def pick(body: dict[str, Any], fields: Sequence[str] | None) -> dict[str, Any]:
    """`body` reduced to a sparse fieldset (all of it for None)."""
    if fields is None:
        return body
    return {field: body[field] for field in fields}
