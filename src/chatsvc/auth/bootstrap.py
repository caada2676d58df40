"""First start: a default workspace, its bootstrap admin user and key, and a demo assistant."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.assistants import service as assistant_service
from chatsvc.assistants.schemas import AssistantIn
from chatsvc.auth import service as auth_service
from chatsvc.auth.models import Role
from chatsvc.auth.repository import ApiKeyRepository, WorkspaceRepository
from chatsvc.config import Environment, Settings
from chatsvc.knowledge import service as knowledge_service
from chatsvc.knowledge.schemas import CommonQuestionIn, FixedResponseIn, LessonIn

DEFAULT_WORKSPACE = "default"


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    workspace_slug: str
    #: the admin key in clear when this start generated it; None when it came from settings
    generated_key: str | None
    demo_assistant_id: int | None


async def bootstrap(session: AsyncSession, settings: Settings) -> BootstrapResult | None:
    """Set up an empty database; None when a workspace already exists (nothing to do).

    In production nothing is generated (a generated key would have to be printed to the logs):
    only CHATSVC_BOOTSTRAP_API_KEY is registered, and no demo assistant is made."""
    configured = (
        settings.bootstrap_api_key.get_secret_value() if settings.bootstrap_api_key else None
    )
    production = settings.env == Environment.PRODUCTION
    if production and configured is None:
        return None
    if await WorkspaceRepository(session).any_exists():
        if configured is not None:
            await _ensure_configured_key(session, configured)
        return None
    workspace = await auth_service.create_workspace(session, DEFAULT_WORKSPACE, "Default workspace")
    raw = await _bootstrap_key(session, workspace.id, configured)
    demo_id = (
        await _create_demo_assistant(session, workspace.id, settings)
        if settings.demo_assistant and not production
        else None
    )
    return BootstrapResult(
        workspace_slug=workspace.slug,
        generated_key=None if configured else raw,
        demo_assistant_id=demo_id,
    )


async def _ensure_configured_key(session: AsyncSession, raw: str) -> None:
    if await ApiKeyRepository(session).hash_taken(auth_service.hash_key(raw)):
        return
    workspace = await auth_service.get_workspace_by_slug(session, DEFAULT_WORKSPACE)
    await _bootstrap_key(session, workspace.id, raw)


async def _bootstrap_key(session: AsyncSession, workspace_id: int, raw: str | None) -> str:
    """The admin key of the bootstrap admin user: `raw` when given, else a new one."""
    _key, key = await auth_service.create_api_key(
        session,
        workspace_id,
        Role.ADMIN,
        username=auth_service.BOOTSTRAP_USERNAME,
        full_name="Bootstrap admin",
        name="bootstrap",
        raw_key=raw,
    )
    return key


async def _create_demo_assistant(
    session: AsyncSession, workspace_id: int, settings: Settings
) -> int:
    assistant = await assistant_service.create_assistant(
        session,
        workspace_id,
        AssistantIn(
            description="Demo assistant",
            info="Demo",
            system_prompt="You are the chatsvc demo assistant. Answer briefly and kindly.",
            initial_message="Hi! I am the chatsvc demo assistant. Ask me what chatsvc is.",
            end_message="This demo chat has reached its message limit. Start a new chat to go on.",
            not_info_message="I do not know that yet. Ask me about chatsvc.",
            colors={"primaryColor": "#2f6fed", "secondaryColor": "#606060"},
        ),
        settings,
    )
    faq = [
        (
            "What is chatsvc?",
            "chatsvc is a self-hosted backend for chat assistants: REST and Server-Sent Events, "
            "resumable streams, exports and reports.",
        ),
        (
            "How do I create an assistant?",
            "POST /assistants/ with at least a description, using an admin API key.",
        ),
    ]
    for name, content in faq:
        await knowledge_service.create_item(
            session,
            workspace_id,
            assistant.id,
            CommonQuestionIn(name=name, content=content),
            settings,
        )
    await knowledge_service.create_item(
        session,
        workspace_id,
        assistant.id,
        FixedResponseIn(topic="greeting", name="hello", content="Hello! How can I help you today?"),
        settings,
    )
    await knowledge_service.create_item(
        session,
        workspace_id,
        assistant.id,
        LessonIn(
            name="Be concise",
            content="Keep answers under three sentences.",
            context_of_application="every answer",
        ),
        settings,
    )
    return assistant.id
