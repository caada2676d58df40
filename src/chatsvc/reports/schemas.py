"""Validated chat reports as every face hands them to the service: the four enums, the writable
fields, the filters of a report list and the aggregate counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from chatsvc.kit.errors import Invalid
from chatsvc.kit.filtering import check_day_range
from chatsvc.kit.filtering import parse_day as parse_day  # re-exported: reports name it here
from chatsvc.kit.validation import MAX_ID, InputModel, PatchModel
from chatsvc.reports.models import Category as Category  # the column enums, re-exported
from chatsvc.reports.models import Reason as Reason
from chatsvc.reports.models import Severity as Severity
from chatsvc.reports.models import Status as Status

#: the counted columns of a report and the values each may take
DIMENSIONS: dict[str, type[StrEnum]] = {
    "status": Status,
    "category": Category,
    "reason": Reason,
    "severity": Severity,
}

Topic = Annotated[str, StringConstraints(max_length=255)]
Comments = Annotated[str, StringConstraints(max_length=20_000)]
ChatId = Annotated[int, Field(ge=1, le=MAX_ID, description="The id of the reported chat.")]


class ReportIn(InputModel):
    """Every writable field of a report; topic and comments default to empty text."""

    category: Category
    reason: Reason
    severity: Severity
    status: Status
    topic: Topic = ""
    comments: Comments = ""
    chat: ChatId


class ReportPatch(PatchModel):
    """A partial update: only the fields sent are changed; none may be null."""

    category: Category | None = None
    reason: Reason | None = None
    severity: Severity | None = None
    status: Status | None = None
    topic: Topic | None = None
    comments: Comments | None = None
    chat: ChatId | None = None


@dataclass(frozen=True, slots=True)
class ReportFilters:
    """Which reports a list or a metric covers; None means no filter. Days are whole UTC days,
    both ends included, and the start may not come after the end."""

    topic: str | None = None
    assistant_id: int | None = None
    start_date: date | None = None
    end_date: date | None = None

    def __post_init__(self) -> None:
        if self.topic is not None and "\x00" in self.topic:
            raise Invalid("topic contains a NUL character, which no report can have.")
        check_day_range(self.start_date, self.end_date)

    @classmethod
    def from_query(
        cls,
        *,
        topic: str | None = None,
        assistant: int | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
    ) -> ReportFilters:
        """Filters from query-string text: empty values mean no filter."""
        return cls(
            topic=topic or None,
            assistant_id=assistant,
            start_date=parse_day("start_date", start_date),
            end_date=parse_day("end_date", end_date),
        )


@dataclass(frozen=True, slots=True)
class ReportMetrics:
    """Counts of the filtered reports per dimension; every enum value is a key, zero included."""

    total_reports: int
    status_counts: dict[str, int]
    category_counts: dict[str, int]
    reason_counts: dict[str, int]
    severity_counts: dict[str, int]
    #: the token usage of the answers in the reported chats (chats.usage.UsageTotals.as_dict)
    token_usage: dict[str, int]
