"""Cognitive face: /reports/ (feedback on chats, with aggregate counts) and /reports/metrics/."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import AliasChoices, BaseModel, Field

from chatsvc.api.cognitive.items import add_delete_route
from chatsvc.api.cognitive.params import ReportId
from chatsvc.api.cognitive.schemas import OutModel
from chatsvc.api.cognitive.usage import UsageTotalsOut
from chatsvc.api.deps import AdminDep, AuthDep
from chatsvc.auth.service import AuthContext
from chatsvc.chats.service import scope_of
from chatsvc.kit.updates import add_patch_route, update_values
from chatsvc.kit.validation import MAX_ID
from chatsvc.kit.web import (
    PageDep,
    SlashRouter,
    day_query,
    envelope,
    error_responses,
    invalid_is_400,
)
from chatsvc.reports import service as report_service
from chatsvc.reports.schemas import (
    Category,
    Reason,
    ReportFilters,
    ReportIn,
    ReportPatch,
    Severity,
    Status,
)
from chatsvc.services import ReadSessionDep, SessionDep

router = SlashRouter(tags=["reports"])
NOT_FOUND = error_responses({404: "No such report in this workspace."})
CHAT_NOT_FOUND = error_responses({404: "No such chat in this workspace."})
REPORT_OR_CHAT_NOT_FOUND = error_responses(
    {404: "No such report, or no such chat, in this workspace."}
)
BAD_FILTER = error_responses(
    {400: "A malformed date (the detail names the parameter), or start_date after end_date."}
)


# --- wire schemas --------------------------------------------------------------------------------


class ReportOut(OutModel):
    """A report on a chat: how the answer was judged, why, how much it matters, and where it


    stands."""

    id: int
    category: Category
    reason: Reason
    severity: Severity
    topic: str
    comments: str
    status: Status
    created_at: datetime
    updated_at: datetime
    chat: int = Field(
        validation_alias=AliasChoices("chat_id", "chat"), description="The reported chat's id."
    )


class ReportMetricsOut(BaseModel):
    """Counts of the matching reports. Every value of each enum is a key, zero included, so a
    dashboard can rely on the keys."""

    total_reports: int
    status_counts: dict[Status, int] = Field(description="Reports per status.")
    category_counts: dict[Category, int] = Field(description="Reports per category.")
    reason_counts: dict[Reason, int] = Field(description="Reports per reason.")
    severity_counts: dict[Severity, int] = Field(description="Reports per severity.")
    token_usage: UsageTotalsOut = Field(
        description="The token usage of the answers in the reported chats (each chat once, "
        "whatever its number of matching reports; see GET /usage/)."
    )


class ReportPage(ReportMetricsOut):
    """The seed's counts and, next to them, the matching reports themselves, one page at a time."""

    count: int = Field(description="Number of matching reports (equals total_reports).")
    next: str | None = Field(description="Absolute URL of the next page, or null.")
    previous: str | None = Field(description="Absolute URL of the previous page, or null.")
    results: list[ReportOut] = Field(description="One page of the matching reports, oldest first.")


async def report_filters(
    topic: Annotated[str | None, Query(description="Only reports with exactly this topic.")] = None,
    assistant: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="Only reports on chats with this assistant (its id)."),
    ] = None,
    start_date: Annotated[
        str | None, day_query("Only reports created on or after this day", "2025-05-01")
    ] = None,
    end_date: Annotated[
        str | None, day_query("Only reports created on or before this day", "2025-05-31")
    ] = None,
) -> ReportFilters:
    # Dates are parsed by the domain so a malformed one is a 400 naming the parameter, as the
    # seed documents, rather than the 422 of other malformed query parameters.
    return ReportFilters.from_query(
        topic=topic, assistant=assistant, start_date=start_date, end_date=end_date
    )


FiltersDep = Annotated[ReportFilters, Depends(report_filters)]


def _reader(auth: AuthContext) -> int | None:
    """The principal whose chats bound what the caller sees of reports: the chats domain's own
    rule (`scope_of`: None for an admin, the member itself otherwise; see the service)."""
    return scope_of(auth).principal_id


# --- routes --------------------------------------------------------------------------------------


@router.get(
    "/reports/",
    response_model=ReportPage,
    summary="Report counts and the matching reports",
    description="Counts of the matching reports grouped by status, category, reason and "
    "severity (every enum value is a key, zero included), and one page of the reports "
    "themselves in `count`, `next`, `previous`, `results` (oldest first). No match is not an "
    "error: the counts are zero and the page is empty.",
    responses=BAD_FILTER,
)
async def list_reports(
    request: Request, session: ReadSessionDep, auth: AuthDep, filters: FiltersDep, page: PageDep
) -> ReportPage:
    reader = _reader(auth)
    metrics = await report_service.report_metrics(
        session, auth.workspace_id, filters, principal_id=reader
    )
    found = await report_service.list_reports(
        session, auth.workspace_id, filters, page, principal_id=reader
    )
    return ReportPage.model_validate(asdict(metrics) | envelope(request, found, found.items))


@router.post(
    "/reports/",
    response_model=ReportOut,
    status_code=200,
    summary="Create a new report for a chat interaction",
    description="An admin key may report on any chat of the workspace, a member key on the chats "
    "it can open (its own); a report is seen by whoever may open its chat.",
    responses={200: {"description": "Report submitted successfully."}, **CHAT_NOT_FOUND},
)
@invalid_is_400
async def create_report(body: ReportIn, session: SessionDep, auth: AuthDep) -> ReportOut:
    report = await report_service.create_report(
        session,
        auth.workspace_id,
        body,
        principal_id=_reader(auth),
    )
    return ReportOut.model_validate(report)


@router.get(
    "/reports/metrics/",
    response_model=ReportMetricsOut,
    summary="Report metrics",
    description="Counts of the matching reports grouped by status, category, reason and "
    "severity; every enum value is a key, zero included.",
    responses=BAD_FILTER,
)
async def report_metrics(
    session: ReadSessionDep, auth: AuthDep, filters: FiltersDep
) -> ReportMetricsOut:
    metrics = await report_service.report_metrics(
        session, auth.workspace_id, filters, principal_id=_reader(auth)
    )
    return ReportMetricsOut.model_validate(asdict(metrics))


# Not add_get_route: what a member may read depends on the caller, not only on its workspace.
@router.get(
    "/reports/{id}/",
    response_model=ReportOut,
    name="get_report",
    summary="Retrieve a chat report",
    responses=NOT_FOUND,
)
async def get_report(id: ReportId, session: ReadSessionDep, auth: AuthDep) -> ReportOut:
    """One report on a chat the caller may read: admin keys see every report of the workspace,
    member keys those on the chats they made (any other is 404)."""
    report = await report_service.get_report(
        session, auth.workspace_id, id, principal_id=_reader(auth)
    )
    return ReportOut.model_validate(report)


@router.put(
    "/reports/{id}/",
    response_model=ReportOut,
    summary="Update a chat report",
    description="Replaces the report: every required field is sent; topic and comments left out "
    "become empty. Admin keys only.",
    responses=REPORT_OR_CHAT_NOT_FOUND,
)
@invalid_is_400
async def update_report(
    id: ReportId, body: ReportIn, session: SessionDep, auth: AdminDep
) -> ReportOut:
    return ReportOut.model_validate(
        await report_service.update_report(
            session, auth.workspace_id, id, update_values(body), principal_id=_reader(auth)
        )
    )


partial_update_report = add_patch_route(
    router,
    update_report,
    ReportPatch,
    summary="Partially update a chat report",
    description="Changes only the fields sent; none may be null. Admin keys only.",
)


add_delete_route(
    router,
    "/reports/{id}/",
    ReportId,
    report_service.delete_report,
    name="delete_report",
    summary="Delete a chat report",
    description="Deletes the report permanently. Admin keys only.",
    responses=NOT_FOUND,
)
