"""Threads face: the workspace's chat settings (not in the seed): the default assistant of new
threads and the moderation policy."""

from __future__ import annotations

from chatsvc.api.deps import AuthDep
from chatsvc.api.threads.schemas import ChatSettingsOut, ChatSettingsPatch
from chatsvc.kit.web import SlashRouter, invalid_is_400
from chatsvc.services import ReadSessionDep, SessionDep
from chatsvc.threads import service as thread_service
from chatsvc.threads.service import UNSET, SettingsView

router = SlashRouter(tags=["chat settings"])


def _out(view: SettingsView) -> ChatSettingsOut:
    return ChatSettingsOut(
        default_assistant=view.default_assistant_id,
        moderation_policy=view.moderation_policy.model_dump(mode="json"),
    )


@router.get(
    "/api/chat-settings/",
    response_model=ChatSettingsOut,
    summary="The workspace's chat settings",
    description="The default assistant of threads started without one, and the moderation "
    "policy in force (see docs/moderation-policy.md).",
)
async def chat_settings_retrieve(session: ReadSessionDep, auth: AuthDep) -> ChatSettingsOut:
    return _out(await thread_service.chat_settings(session, auth.workspace_id))


@router.patch(
    "/api/chat-settings/",
    response_model=ChatSettingsOut,
    summary="Change the workspace's chat settings",
    description="Admin keys only. Only the fields sent change; null restores a default.",
)
@invalid_is_400
async def chat_settings_update(
    body: ChatSettingsPatch, session: SessionDep, auth: AuthDep
) -> ChatSettingsOut:
    sent = body.model_fields_set
    view = await thread_service.update_chat_settings(
        session,
        auth,
        default_assistant_id=body.default_assistant if "default_assistant" in sent else UNSET,
        moderation_policy=body.policy() if "moderation_policy" in sent else UNSET,
    )
    return _out(view)
