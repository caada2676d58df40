"""Cognitive face: /usage/, the workspace's token usage (admin keys only)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field

from chatsvc.api.deps import AuthDep
from chatsvc.auth.service import AuthContext
from chatsvc.chats.usage import GroupBy, UsageQuery, UsageRepository
from chatsvc.kit.web import PageDep, SlashRouter, day_query, envelope, error_responses
from chatsvc.services import ReadSessionDep

router = SlashRouter(tags=["usage"])
BAD_FILTER = error_responses(
    {400: "A malformed date (the detail names the parameter), or start_date after end_date."}
)


async def require_admin(auth: AuthDep) -> AuthContext:
    """Usage is the workspace's cost: member keys get 403."""
    auth.require_admin("read the workspace's token usage")
    return auth


UsageAdminDep = Annotated[AuthContext, Depends(require_admin)]


class UsageTotalsOut(BaseModel):
    """Tokens of the answers in the period."""

    prompt_tokens: int = Field(description="Tokens of the prompts sent to the models.")
    completion_tokens: int = Field(description="Tokens the models generated.")
    total_tokens: int = Field(description="prompt_tokens + completion_tokens.")
    answers: int = Field(description="Assistant answers counted (those given by a model).")
    estimated_answers: int = Field(
        description="How many of those answers carry estimated figures (~4 characters a token: "
        "the offline generator, upstreams that report no usage, cancelled answers)."
    )


class UsageGroupOut(UsageTotalsOut):
    """The usage of one group: the field named by `group_by` is set, the other two are null."""

    day: date | None = Field(description="The UTC day (group_by=day).")
    assistant: int | None = Field(description="The assistant's id (group_by=assistant).")
    api_key: int | None = Field(
        description="group_by=api_key: the principal of the API key that made the chats (every "
        "key of one principal counts together); null for chats whose principal was deleted."
    )


class UsagePage(BaseModel):
    """The period's totals and one page of its groups, in key order (days oldest first)."""

    group_by: GroupBy = Field(description="What the groups are.")
    start_date: date | None = Field(description="The first day counted, or null.")
    end_date: date | None = Field(description="The last day counted, or null.")
    totals: UsageTotalsOut = Field(description="Every answer of the period together.")
    count: int = Field(description="Number of groups.")
    next: str | None = Field(description="Absolute URL of the next page, or null.")
    previous: str | None = Field(description="Absolute URL of the previous page, or null.")
    results: list[UsageGroupOut] = Field(description="One page of the groups.")


def _totals(prompt: int, completion: int, answers: int, estimated: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "answers": answers,
        "estimated_answers": estimated,
    }


@router.get(
    "/usage/",
    response_model=UsagePage,
    summary="Token usage of the workspace",
    description="The prompt and completion tokens of the workspace's assistant answers (tool-call "
    "rounds included), summed by UTC day, assistant or API key over whole UTC days, with the "
    "period's totals. Figures are the upstream's own when it reports them, else estimates "
    "(counted in `estimated_answers`). Answers given without a model (fixed responses) count "
    "no tokens. Admin keys only.",
    responses=BAD_FILTER,
)
async def get_usage(
    request: Request,
    session: ReadSessionDep,
    auth: UsageAdminDep,
    page: PageDep,
    group_by: Annotated[
        GroupBy, Query(description="Sum by `day` (UTC), `assistant` or `api_key`.")
    ] = GroupBy.DAY,
    start_date: Annotated[str | None, day_query("Answers from this day", "2026-12-01")] = None,
    end_date: Annotated[str | None, day_query("Answers up to this day", "2026-12-31")] = None,
) -> UsagePage:
    query = UsageQuery.from_query(group_by, start_date, end_date)
    totals, found = await UsageRepository(session).summary(auth.workspace_id, query, page)
    results = [
        {
            **_totals(row.prompt_tokens, row.completion_tokens, row.answers, row.estimated_answers),
            "day": row.key if group_by is GroupBy.DAY else None,
            "assistant": row.key if group_by is GroupBy.ASSISTANT else None,
            "api_key": row.key if group_by is GroupBy.API_KEY else None,
        }
        for row in found.items
    ]
    return UsagePage.model_validate(
        {
            "group_by": group_by,
            "start_date": query.start_date,
            "end_date": query.end_date,
            "totals": _totals(
                totals.prompt_tokens,
                totals.completion_tokens,
                totals.answers,
                totals.estimated_answers,
            ),
            **envelope(request, found, results),
        }
    )
