"""Planning a turn: what a generation starts from (the chat, its assistant, the user message and
the history before it, the assistant's knowledge and tools), read through repositories in one
short session, and the pipeline's decision on it."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.assistants.models import Assistant
from chatsvc.chats.repository import ChatRepository, MessageRepository
from chatsvc.generation import retrieval
from chatsvc.generation.pipeline import Knowledge, ModelCall, Plan, faq_index, plan_answer
from chatsvc.generation.tools import BoundTool, load_tools
from chatsvc.kit.errors import ChatsvcError
from chatsvc.kit.fingerprint_cache import FingerprintCache
from chatsvc.knowledge.models import CommonQuestion, FixedResponse, Lesson
from chatsvc.knowledge.repository import KnowledgeRepository


@dataclass(frozen=True, slots=True)
class TurnTools:
    """The tools one turn may use, read with the plan."""

    workspace_id: int
    tools: list[BoundTool] = field(default_factory=list)
    pretools: list[BoundTool] = field(default_factory=list)
    pretools_generator: str = ""
    max_calls: int = 5


class FaqIndexCache:
    """Built BM25 indexes of assistants' FAQ, kept while the FAQ is unchanged (same count, last
    id and last update), so a turn does not re-read and re-tokenise the whole FAQ."""

    def __init__(self, size: int = 256) -> None:
        self._cache: FingerprintCache[int, retrieval.Bm25Index] = FingerprintCache(size)

    async def get(self, session: AsyncSession, assistant_id: int) -> retrieval.Bm25Index:
        repository = KnowledgeRepository(session, CommonQuestion)
        return await self._cache.get(
            assistant_id,
            await repository.fingerprint(assistant_id),
            lambda: repository.all_of(assistant_id),
            faq_index,
        )


class Planner:
    """Reads a turn's inputs and decides how to answer it (a verbatim answer or a model call)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        faq_cache: FaqIndexCache | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.faq_cache = faq_cache or FaqIndexCache()

    async def plan(self, chat_id: int, user_msg_num: int) -> tuple[Plan, TurnTools]:
        async with self.sessionmaker() as session:
            chat = await ChatRepository(session).by_id(chat_id)
            if chat is None:
                raise ChatsvcError("The chat to answer is gone.", "missing_chat")
            assistant = await session.get(Assistant, chat.assistant_id)
            if assistant is None:
                raise ChatsvcError("The chat's assistant is gone.", "missing_assistant")
            messages = MessageRepository(session)
            user = await messages.by_number(chat_id, user_msg_num)
            if user is None:
                raise ChatsvcError("The user message to answer is gone.", "missing_message")
            history = await messages.history_before(chat_id, user_msg_num)
            plan = plan_answer(assistant, history, user, await self._knowledge(session, assistant))
            if not isinstance(plan, ModelCall):
                return plan, TurnTools(workspace_id=chat.workspace_id)
            return plan, TurnTools(
                workspace_id=chat.workspace_id,
                tools=await load_tools(session, chat.workspace_id, assistant.tools),
                pretools=await load_tools(session, chat.workspace_id, assistant.pretools),
                pretools_generator=assistant.generation_config_pretools
                or assistant.generation_config,
                max_calls=assistant.max_consecutive_tool_calls,
            )

    async def _knowledge(self, session: AsyncSession, assistant: Assistant) -> Knowledge:
        faq = retrieval.EMPTY_INDEX
        if assistant.faq_available:
            faq = await self.faq_cache.get(session, assistant.id)
        fixed: list[FixedResponse] = []
        if assistant.fixed_available:
            fixed = await KnowledgeRepository(session, FixedResponse).all_of(assistant.id)
        lessons: list[Lesson] = []
        if assistant.lessons_available:
            lessons = await KnowledgeRepository(session, Lesson).all_of(assistant.id)
        return Knowledge(faq_index=faq, fixed=fixed, lessons=lessons)
