"""Planning a turn: what a generation starts from (the user message and a bounded window of the
history before it, the chat's assistant with its knowledge and tools) and the pipeline's decision
on it.

One round trip reads the window and a stamp of the assistant's configuration
(ChatRepository.turn_window); the configuration itself (the assistant row, its fixed responses
and lessons, its FAQ as a built index, its tools as functions for the model) is kept per
process while the stamp is unchanged, so a turn on an unchanged assistant reads nothing more.
The stamp is read from the database every turn, so a change made through any replica is seen
by the next turn everywhere."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.assistants.models import Assistant
from chatsvc.chats.repository import MessageRepository
from chatsvc.generation import retrieval
from chatsvc.generation.pipeline import (
    DEFAULT_LAST_N,
    Knowledge,
    ModelCall,
    Plan,
    faq_index,
    plan_answer,
)
from chatsvc.generation.tools import BoundTool, load_tools
from chatsvc.kit.errors import ChatsvcError
from chatsvc.kit.fingerprint_cache import FingerprintCache
from chatsvc.knowledge.models import CommonQuestion, FixedResponse, Lesson
from chatsvc.knowledge.repository import KnowledgeRepository

#: the most history messages a prompt may carry (the `none` strategy, and the bound of others)
HISTORY_LIMIT = 200


@dataclass(frozen=True, slots=True)
class TurnTools:
    """The tools one turn may use, read with the plan."""

    workspace_id: int
    tools: list[BoundTool] = field(default_factory=list)
    pretools: list[BoundTool] = field(default_factory=list)
    pretools_generator: str = ""
    max_calls: int = 5


@dataclass(frozen=True, slots=True)
class AssistantConfig:
    """An assistant as turns use it: read once per change, shared by the turns that follow."""

    assistant: Assistant
    knowledge: Knowledge
    tools: TurnTools


class FaqIndexCache:
    """Built BM25 indexes of assistants' FAQ, kept while the FAQ is unchanged (same count, last
    id and last update), so a turn does not re-read and re-tokenise the whole FAQ."""

    def __init__(self, size: int = 256) -> None:
        self._cache: FingerprintCache[int, retrieval.Bm25Index] = FingerprintCache(size)

    async def get(
        self, session: AsyncSession, assistant_id: int, fingerprint: tuple[Any, ...] | None = None
    ) -> retrieval.Bm25Index:
        repository = KnowledgeRepository(session, CommonQuestion)
        return await self._cache.get(
            assistant_id,
            fingerprint if fingerprint is not None else await repository.fingerprint(assistant_id),
            lambda: repository.all_of(assistant_id),
            faq_index,
        )


class Planner:
    """Reads a turn's inputs and decides how to answer it (a verbatim answer or a model call)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        faq_cache: FaqIndexCache | None = None,
        *,
        history_limit: int = HISTORY_LIMIT,
        size: int = 256,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.faq_cache = faq_cache or FaqIndexCache()
        self.history_limit = history_limit
        self.size = size
        self._configs: OrderedDict[int, tuple[tuple[Any, ...], AssistantConfig]] = OrderedDict()

    async def plan(self, chat_id: int, user_msg_num: int) -> tuple[Plan, TurnTools]:
        async with self.sessionmaker() as session:
            window = await MessageRepository(session).turn_window(
                chat_id, user_msg_num, self.history_limit
            )
            if window is None:
                raise ChatsvcError("The user message to answer is gone.", "missing_message")
            config = await self._config(session, window.assistant_id, window.stamp)
        assistant = config.assistant
        history = window.history
        limit = _window(assistant.strategy_to_optimize_tokens, self.history_limit)
        if len(history) > limit:
            history = history[-limit:]
        plan = plan_answer(assistant, history, window.user, config.knowledge)
        if isinstance(plan, ModelCall):
            return plan, config.tools
        return plan, TurnTools(workspace_id=window.workspace_id)

    async def _config(
        self, session: AsyncSession, assistant_id: int, stamp: tuple[Any, ...]
    ) -> AssistantConfig:
        cached = self._configs.get(assistant_id)
        if cached is not None and cached[0] == stamp:
            self._configs.move_to_end(assistant_id)
            return cached[1]
        config = await self._load(session, assistant_id, stamp)
        self._configs[assistant_id] = (stamp, config)
        self._configs.move_to_end(assistant_id)
        while len(self._configs) > self.size:
            self._configs.popitem(last=False)
        return config

    async def _load(
        self, session: AsyncSession, assistant_id: int, stamp: tuple[Any, ...]
    ) -> AssistantConfig:
        assistant = await session.get(Assistant, assistant_id)
        if assistant is None:
            raise ChatsvcError("The chat's assistant is gone.", "missing_assistant")
        faq = retrieval.EMPTY_INDEX
        if assistant.faq_available:
            faq = await self.faq_cache.get(session, assistant.id, stamp[2:5])
        fixed: list[FixedResponse] = []
        if assistant.fixed_available:
            fixed = await KnowledgeRepository(session, FixedResponse).all_of(assistant.id)
        lessons: list[Lesson] = []
        if assistant.lessons_available:
            lessons = await KnowledgeRepository(session, Lesson).all_of(assistant.id)
        workspace_id = assistant.workspace_id
        tools = TurnTools(
            workspace_id=workspace_id,
            tools=await load_tools(session, workspace_id, assistant.tools),
            pretools=await load_tools(session, workspace_id, assistant.pretools),
            pretools_generator=assistant.generation_config_pretools or assistant.generation_config,
            max_calls=assistant.max_consecutive_tool_calls,
        )
        knowledge = Knowledge(faq_index=faq, fixed=fixed, lessons=lessons)
        return AssistantConfig(assistant, knowledge, tools)


def _window(strategy: str, limit: int) -> int:
    """How many history messages the token strategy can use at most: `last_n:N` needs N (and
    a few more, for messages it leaves out), the others up to `limit`."""
    name, _, raw = strategy.partition(":")
    if name == "last_n":
        wanted = int(raw) if raw.isdigit() else DEFAULT_LAST_N
        return min(limit, 2 * wanted + 8)
    return limit
