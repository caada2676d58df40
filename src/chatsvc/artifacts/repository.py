"""Queries of the chat artifacts, always scoped to one workspace. They add and flush; they never
commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.artifacts.kinds import ResourceKind
from chatsvc.artifacts.models import Attachment, Bundle, Draft, Resource
from chatsvc.artifacts.schemas import SectionQuery
from chatsvc.assistants.models import Assistant
from chatsvc.chats.models import Chat
from chatsvc.chats.repository import ChatRepository, ChatScope
from chatsvc.kit.db import utcnow
from chatsvc.kit.pagination import Page, PageParams
from chatsvc.kit.repository import RepositoryBase

Selection = dict[ResourceKind, list[str]]


class ResourceRepository(RepositoryBase[Resource]):
    model = Resource

    async def by_ids(self, workspace_id: int, ids: Iterable[str]) -> dict[str, Resource]:
        wanted = set(ids)
        if not wanted:
            return {}
        rows = await self.session.scalars(
            select(Resource).where(Resource.workspace_id == workspace_id, Resource.id.in_(wanted))
        )
        return {resource.id: resource for resource in rows}

    async def available(
        self,
        workspace_id: int,
        queries: Sequence[SectionQuery],
        selection: Selection,
        limit: int,
    ) -> list[Row[Any]]:
        """Per kind, the first `limit` items (by name, case-insensitively) matching the kind's
        query, with the number of matches in `total`: one query for every section."""
        conditions = []
        for query in queries:
            condition = [Resource.kind == query.kind]
            if query.search:
                term = query.search.lower()
                condition.append(
                    or_(
                        func.lower(Resource.name).contains(term, autoescape=True),
                        func.lower(Resource.description).contains(term, autoescape=True),
                    )
                )
            chosen = selection.get(query.kind)
            if chosen and not query.show_selected:
                condition.append(Resource.id.not_in(chosen))
            conditions.append(and_(*condition))
        if not conditions:
            return []
        ranked = (
            select(
                Resource.id,
                Resource.kind,
                Resource.name,
                Resource.description,
                Resource.data,
                func.row_number()
                .over(partition_by=Resource.kind, order_by=(func.lower(Resource.name), Resource.id))
                .label("rank"),
                func.count().over(partition_by=Resource.kind).label("total"),
            )
            .where(Resource.workspace_id == workspace_id, or_(*conditions))
            .subquery()
        )
        rows = await self.session.execute(
            select(ranked).where(ranked.c.rank <= limit).order_by(ranked.c.kind, ranked.c.rank)
        )
        return list(rows.all())


class BundleRepository(RepositoryBase[Bundle]):
    model = Bundle

    async def current_revision(self, assistant_id: int) -> int:
        found = await self.session.scalar(
            select(func.max(Bundle.revision)).where(Bundle.assistant_id == assistant_id)
        )
        return int(found or 0)

    async def revision_at(self, assistant_id: int, moment: datetime) -> int:
        """The revision that was current at `moment` (0: none was published yet)."""
        found = await self.session.scalar(
            select(func.max(Bundle.revision)).where(
                Bundle.assistant_id == assistant_id, Bundle.created_at <= moment
            )
        )
        return int(found or 0)

    async def selection(self, assistant_id: int, revision: int) -> Selection:
        selection: Selection = {}
        if revision == 0:
            return selection
        rows = await self.session.execute(
            select(Attachment.kind, Attachment.resource_id)
            .join(Bundle, Bundle.id == Attachment.bundle_id)
            .where(Bundle.assistant_id == assistant_id, Bundle.revision == revision)
            .order_by(Attachment.kind, Attachment.position)
        )
        for kind, resource_id in rows:
            selection.setdefault(kind, []).append(resource_id)
        return selection

    async def attach(self, bundle_id: int, selection: Selection) -> None:
        self.session.add_all(
            Attachment(bundle_id=bundle_id, kind=kind, position=position, resource_id=resource_id)
            for kind, ids in selection.items()
            for position, resource_id in enumerate(ids)
        )
        await self.session.flush()


class DraftRepository(RepositoryBase[Draft]):
    model = Draft

    async def get(self, workspace_id: int, draft_id: str, owner: int | None) -> Draft | None:
        statement = select(Draft).where(Draft.id == draft_id, Draft.workspace_id == workspace_id)
        if owner is not None:
            statement = statement.where(Draft.principal_id == owner)
        return await self.get_one_or_none(statement, fresh=True)

    async def of_owner(self, principal_id: int, assistant_id: int) -> Draft | None:
        return await self.get_one_or_none(
            select(Draft)
            .where(Draft.principal_id == principal_id, Draft.assistant_id == assistant_id)
            .execution_options(populate_existing=True)
        )

    async def version(self, draft_id: str) -> int | None:
        found = await self.session.scalar(
            select(Draft.version)
            .where(Draft.id == draft_id)
            .execution_options(populate_existing=True)
        )
        return None if found is None else int(found)

    async def advance(
        self, draft_id: str, expected_version: int, form_state: dict[str, Any]
    ) -> int | None:
        """version + 1 and the new state, only if the draft is still at `expected_version`: one
        conditional UPDATE, so of concurrent changes against one version exactly one applies
        (on PostgreSQL the others wait for its commit, then find another version)."""
        found = await self.session.scalar(
            update(Draft)
            .where(Draft.id == draft_id, Draft.version == expected_version)
            .values(version=Draft.version + 1, form_state=form_state, updated_at=utcnow())
            .returning(Draft.version)
            .execution_options(synchronize_session=False)
        )
        return None if found is None else int(found)

    async def remove(self, draft_id: str) -> None:
        await self.session.execute(
            delete(Draft).where(Draft.id == draft_id).execution_options(synchronize_session=False)
        )

    async def list_of_owner(
        self, workspace_id: int, principal_id: int, params: PageParams
    ) -> Page[Draft]:
        """The owner's drafts of live entries, most recently changed first."""
        statement = (
            select(Draft)
            .join(Assistant, Assistant.id == Draft.assistant_id)
            .where(
                Draft.workspace_id == workspace_id,
                Draft.principal_id == principal_id,
                Assistant.deleted_at.is_(None),
            )
            .order_by(Draft.updated_at.desc(), Draft.id)
        )
        return await self.paginate(statement, params)


async def find_attempt(
    session: AsyncSession, scope: ChatScope, assistant_id: int, attempt: str | None
) -> Chat | None:
    """A chat of the assistant that the scope sees, by id or uuid; without one, the newest."""
    statement = ChatRepository(session).scoped(scope).where(Chat.assistant_id == assistant_id)
    if attempt is None:
        statement = statement.order_by(Chat.id.desc()).limit(1)
    elif attempt.isdigit():
        statement = statement.where(Chat.id == int(attempt))
    else:
        statement = statement.where(Chat.uuid == attempt.lower())
    found: Chat | None = await session.scalar(statement)
    return found
