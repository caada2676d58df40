"""The domain error hierarchy. Services raise these; each API face maps them once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid input field: a dotted path and a human reason."""

    field: str
    message: str


@dataclass
class ChatsvcError(Exception):
    """Base of every error a service may raise on purpose."""

    message: str
    code: str = "error"
    errors: list[FieldError] = field(default_factory=list)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message


class NotFound(ChatsvcError):
    def __init__(self, message: str, *, code: str = "not_found") -> None:
        super().__init__(message, code)


T = TypeVar("T")


def or_not_found(found: T | None, message: str) -> T:
    """`found` itself, or NotFound(message) when a lookup found nothing."""
    if found is None:
        raise NotFound(message)
    return found


class Conflict(ChatsvcError):
    def __init__(self, message: str, *, code: str = "conflict") -> None:
        super().__init__(message, code)


class Invalid(ChatsvcError):
    """Input that is well-formed but breaks a rule (unknown tool id, too long, ...)."""

    def __init__(
        self, message: str, *, code: str = "invalid", errors: list[FieldError] | None = None
    ) -> None:
        super().__init__(message, code, list(errors or []))


class Unauthenticated(ChatsvcError):
    def __init__(self, message: str, *, code: str = "unauthenticated") -> None:
        super().__init__(message, code)


class Forbidden(ChatsvcError):
    def __init__(self, message: str, *, code: str = "forbidden") -> None:
        super().__init__(message, code)


class Unavailable(ChatsvcError):
    """A dependency (database, Redis, upstream) cannot be reached."""

    def __init__(self, message: str, *, code: str = "unavailable") -> None:
        super().__init__(message, code)


class UpstreamError(ChatsvcError):
    """A generator or other upstream could not be reached or answered with an error (502)."""

    def __init__(self, message: str, *, code: str = "upstream_error") -> None:
        super().__init__(message, code)


class UpstreamTimeout(ChatsvcError):
    """A generator or other upstream did not answer in time (504)."""

    def __init__(self, message: str, *, code: str = "upstream_timeout") -> None:
        super().__init__(message, code)
