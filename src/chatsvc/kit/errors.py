"""The domain error hierarchy. Services raise these; each API face maps them once (kit/web.py).
Each class has a `kind`, the name under which an error crosses a process boundary (a generation's
`error` event) and is raised again on the other side (`from_kind`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid input field: a dotted path and a human reason."""

    field: str
    message: str


#: kind → the error class that names it (ChatsvcError.__init_subclass__ fills it)
_BY_KIND: dict[str, type[ChatsvcError]] = {}


@dataclass
class ChatsvcError(Exception):
    """Base of every error a service may raise on purpose. `code` defaults to the class's `kind`
    (a subclass only names its kind)."""

    kind: ClassVar[str] = "error"
    message: str
    code: str = ""
    errors: list[FieldError] = field(default_factory=list)
    #: the chat a failed turn left stored (its user message kept): the response names it, so the
    #: client can retry the turn
    chat_id: int | None = None

    def __init_subclass__(cls, kind: str | None = None, **kwargs: Any) -> None:
        """A subclass names its kind in its class line (`kind="conflict"`), and from_kind finds
        it by that name; a subclass naming none keeps its base's kind."""
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.kind = kind
            _BY_KIND[kind] = cls

    def __post_init__(self) -> None:
        self.code = self.code or self.kind
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message


class NotFound(ChatsvcError, kind="not_found"):
    """The thing asked for does not exist (or is not the caller's to see)."""


T = TypeVar("T")


def or_not_found(found: T | None, message: str, *, code: str = "not_found") -> T:
    """`found` itself, or NotFound(message) when a lookup found nothing."""
    if found is None:
        raise NotFound(message, code=code)
    return found


class Conflict(ChatsvcError, kind="conflict"):
    """The request clashes with the current state (already running, key in use, ...)."""


class Invalid(ChatsvcError, kind="invalid"):
    """Input that is well-formed but breaks a rule (unknown tool id, too long, ...)."""


class Unauthenticated(ChatsvcError, kind="unauthenticated"):
    """No valid credentials came with the request."""


class Forbidden(ChatsvcError, kind="forbidden"):
    """The caller is known but may not do this."""


class Unavailable(ChatsvcError, kind="unavailable"):
    """A dependency (database, Redis, upstream) cannot be reached."""


class UpstreamError(ChatsvcError, kind="upstream_error"):
    """A generator or other upstream could not be reached or answered with an error (502)."""


class UpstreamTimeout(ChatsvcError, kind="upstream_timeout"):
    """A generator or other upstream did not answer in time (504)."""


class InternalError(ChatsvcError, kind="internal"):
    """Something this service did not foresee went wrong (the details are in the log only)."""


def from_kind(kind: str, message: str, code: str, *, chat_id: int | None = None) -> ChatsvcError:
    """The error a `kind` names, raised again where it arrived (an unknown kind: the base)."""
    error_class = _BY_KIND.get(kind, ChatsvcError)
    return error_class(message, code=code, chat_id=chat_id)
