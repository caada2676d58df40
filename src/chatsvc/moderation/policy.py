"""The moderation vocabulary (severities, actions, PII categories) and the per-workspace policy that
decides what happens to a message once the scanner has found something in it."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

_RANKS = {"none": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


class ModerationSeverity(StrEnum):
    """How bad a finding is. Ordered: compare with `rank` (or `max_severity`), not as strings."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANKS[self.value]

    def raised(self) -> Severity:
        """One step up (critical stays critical): evasion makes a match worse."""
        return _BY_RANK[min(self.rank + 1, 4)]


#: The name the moderation code uses (the class is named for the OpenAPI document, where the
#: reports' severity is another enum, ReportSeverity).
Severity = ModerationSeverity
_BY_RANK = {rank: Severity(name) for name, rank in _RANKS.items()}


def max_severity(severities: Iterable[Severity | str]) -> Severity:
    """The highest of `severities` (none when empty): how a thread aggregates its messages."""
    return _BY_RANK[max((Severity(s).rank for s in severities), default=0)]


class ModerationAction(StrEnum):
    """What moderation did to a message (the message's action_taken)."""

    NONE = "none"
    FLAGGED = "flagged"
    REDACTED = "redacted"
    BLOCKED = "blocked"


#: The name the moderation code uses (the class is named for what it is in the OpenAPI document).
Action = ModerationAction


class PiiAction(StrEnum):
    """What a policy does with one PII category."""

    REDACT = "redact"  # replaced by a placeholder before the generator sees the message
    FLAG = "flag"  # left in the message, the message is flagged
    BLOCK = "block"  # the message is not answered
    ALLOW = "allow"  # not looked for at all


class PiiCategory(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    PAYMENT_CARD = "payment_card"
    IBAN = "iban"
    NATIONAL_ID = "national_id"
    IP_ADDRESS = "ip_address"
    API_KEY = "api_key"


NationalId = Literal["us_ssn", "es_dni", "es_nie", "br_cpf", "fr_nir", "de_idnr", "it_cf"]
NATIONAL_IDS: tuple[NationalId, ...] = (
    "us_ssn",
    "es_dni",
    "es_nie",
    "br_cpf",
    "fr_nir",
    "de_idnr",
    "it_cf",
)


class PiiActions(BaseModel):
    """One action per PII category; a stored policy may name only the categories it changes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: PiiAction = PiiAction.REDACT
    phone: PiiAction = PiiAction.REDACT
    payment_card: PiiAction = PiiAction.REDACT
    iban: PiiAction = PiiAction.REDACT
    national_id: PiiAction = PiiAction.REDACT
    ip_address: PiiAction = PiiAction.REDACT
    api_key: PiiAction = PiiAction.REDACT

    def of(self, category: PiiCategory) -> PiiAction:
        action: PiiAction = getattr(self, category.value)
        return action


Region = Annotated[str, StringConstraints(min_length=2, max_length=3, to_upper=True)]


class ModerationPolicy(BaseModel):
    """A workspace's moderation policy, stored as JSON. Every field has a default, so `{}` is the
    default policy: redact every kind of PII, flag every injection finding, block from high."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pii: PiiActions = Field(default_factory=PiiActions)
    #: injection findings at or above this severity are kept and flag the message (null: none)
    injection_flag_at: Severity | None = Severity.LOW
    #: injection findings at or above this severity block the message (null: never block)
    injection_block_at: Severity | None = Severity.HIGH
    #: regions tried, in order, for numbers written without an international prefix
    #: (numbers starting with + or 00 are parsed on their own)
    phone_regions: Annotated[list[Region], Field(max_length=20)] = Field(
        default_factory=lambda: ["US", "GB", "DE", "FR", "ES", "IT", "NL"]
    )
    #: the national identity numbers looked for when `pii.national_id` is not allow
    national_ids: Annotated[list[NationalId], Field(max_length=len(NATIONAL_IDS))] = Field(
        default_factory=lambda: list(NATIONAL_IDS)
    )
    #: the answer given instead of a blocked message; null: a message that names the reason
    block_message: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None

    @field_validator("injection_flag_at", "injection_block_at")
    @classmethod
    def _real_threshold(cls, threshold: Severity | None) -> Severity | None:
        if threshold is Severity.NONE:
            raise ValueError("must be low, medium, high or critical (or null for never)")
        return threshold

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, regions: list[str]) -> list[str]:
        unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown phone region(s): {', '.join(unknown)} (use ISO 3166 codes)")
        return list(dict.fromkeys(regions))

    def injection_kept(self, severity: Severity) -> bool:
        """Whether an injection finding of this severity is reported at all."""
        floors = [t.rank for t in (self.injection_flag_at, self.injection_block_at) if t]
        return bool(floors) and severity.rank >= min(floors)

    def injection_blocks(self, severity: Severity) -> bool:
        block_at = self.injection_block_at
        return block_at is not None and severity.rank >= block_at.rank


DEFAULT_POLICY = ModerationPolicy()
