"""What a generation stores, each in a short unit of work of its own: the tool messages of its
tool rounds, the answer (which releases the chat), the failure (which marks the chat FAILED), and
the renewal of the chat's lease while it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.chats.models import ExecutionStatus, Message, MessageStatus, Role
from chatsvc.chats.repository import ChatRepository, MessageRepository
from chatsvc.chats.schemas import ChatStateOut, MessageOut
from chatsvc.generation.pipeline import ModelCall, Plan, VerbatimAnswer
from chatsvc.generation.tools import BoundTool, ToolResult
from chatsvc.generation.types import ToolCall
from chatsvc.kit.db import unit_of_work, utcnow
from chatsvc.webhooks.events import WebhookEvents


@dataclass(frozen=True, slots=True)
class TurnRef:
    """The turn a generation answers."""

    chat_id: int
    generation_id: str
    user_msg_num: int


@dataclass(slots=True)
class Answer:
    """What the tool-calling loop adds to the answer."""

    status: MessageStatus = MessageStatus.COMPLETE
    references: list[dict[str, Any]] = field(default_factory=list)
    visible: bool = True
    tool_calls: int = 0
    #: token usage summed over the model calls of the answer (None: the model was not called)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    #: some round's figures were estimated (the upstream sent none, or a cancel cut it short)
    usage_estimated: bool = False

    def add_usage(self, prompt_tokens: int, completion_tokens: int, *, estimated: bool) -> None:
        """Count one model call (a tool-call round or the final answer)."""
        self.prompt_tokens = (self.prompt_tokens or 0) + prompt_tokens
        self.completion_tokens = (self.completion_tokens or 0) + completion_tokens
        self.usage_estimated = self.usage_estimated or estimated


@dataclass
class AnswerStore:
    sessionmaker: async_sessionmaker[AsyncSession]
    #: autocommit sessions, for what is one statement (no BEGIN/COMMIT around it)
    single: async_sessionmaker[AsyncSession] | None = None
    #: where a turn's end is announced (event webhooks), after its final state committed
    events: WebhookEvents | None = None

    async def tool_message(
        self,
        turn: TurnRef,
        call: ToolCall,
        tool: BoundTool | None,
        result: ToolResult,
        references: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """Store one call and its result as a `tool` message; the message as the wire shows it."""
        async with unit_of_work(self.sessionmaker) as session:
            message = Message(
                chat_id=turn.chat_id,
                msg_num=await ChatRepository(session).next_msg_num(turn.chat_id),
                role=Role.TOOL,
                content=result.content,
                usr_msg_num=turn.user_msg_num,
                tool_call_id=call.id,
                function_name=call.name,
                parameters=call.arguments,
                references=references,
                visible=tool.show_tool_message if tool is not None else False,
                generation_id=turn.generation_id,
                meta=result.meta,
                status=MessageStatus.FAILED if result.is_error else MessageStatus.COMPLETE,
            )
            await MessageRepository(session).add(message)
            return MessageOut.wire(message)

    async def complete(
        self, turn: TurnRef, plan: Plan, text: str, answer: Answer
    ) -> dict[str, Any]:
        """Store the answer and release the chat (AVAILABLE, one more response); the
        `message.completed` payload: the message and the chat as they are now. Announce it with
        `announce_completed` once the stream has it."""
        return await self._store_answer(turn, plan, text, answer)

    async def announce_completed(self, turn: TurnRef, completed: dict[str, Any]) -> None:
        """`chat.completed` to the workspace's event webhooks (the answer is committed)."""
        if self.events is not None:
            await self.events.emit_for_chat(
                turn.chat_id,
                "chat.completed",
                f"chat.completed-{turn.generation_id}",
                {
                    "chat_id": turn.chat_id,
                    "generation_id": turn.generation_id,
                    "message": completed["message"],
                },
            )

    async def _store_answer(
        self, turn: TurnRef, plan: Plan, text: str, answer: Answer
    ) -> dict[str, Any]:
        model_call = plan if isinstance(plan, ModelCall) else None
        verbatim = plan if isinstance(plan, VerbatimAnswer) else None
        columns: dict[str, Any] = {
            "role": Role.ASSISTANT,
            "content": text,
            "fixed": verbatim.fixed if verbatim is not None else None,
            "references": model_call.references + answer.references if model_call else [],
            "prompt": model_call.prompt_record() if model_call else None,
            "status": answer.status,
            "visible": answer.visible,
            "generation_id": turn.generation_id,
            "meta": {"not_info": True} if verbatim and verbatim.reason == "not_info" else {},
            # Stored with the answer, in the same statement (no query of its own).
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "usage_estimated": answer.usage_estimated,
        }
        async with unit_of_work(self.single or self.sessionmaker) as session:
            if session.get_bind().dialect.name == "postgresql":
                # One statement, one round trip.
                found = await ChatRepository(session).store_answer(
                    turn.chat_id, turn.generation_id, turn.user_msg_num, utcnow(), columns
                )
                if found is not None:
                    stored, chat_state = found
                    return {
                        "message": MessageOut.wire(stored),
                        "chat": ChatStateOut.wire(chat_state),
                    }
        async with unit_of_work(self.sessionmaker) as session:
            # The generation lost the chat (it is kept, not released), or SQLite: statement by
            # statement.
            chats = ChatRepository(session)
            messages = MessageRepository(session)
            # A reload hid the previous answer to this message: the new one replaces it.
            previous = await messages.answer_to(turn.chat_id, turn.user_msg_num)
            message = Message(
                chat_id=turn.chat_id,
                msg_num=await chats.next_msg_num(turn.chat_id),
                usr_msg_num=turn.user_msg_num,
                replaces_id=previous.id if previous and not previous.visible else None,
                **columns,
            )
            await messages.add(message)
            await chats.release_generation(
                turn.chat_id, turn.generation_id, ExecutionStatus.AVAILABLE, answered=True
            )
            chat = await chats.by_id(turn.chat_id, fresh=True)
            assert chat is not None  # the chat row is locked by this transaction
            return {"message": MessageOut.wire(message), "chat": ChatStateOut.wire(chat)}

    async def fail(self, chat_id: int, generation_id: str, detail: str) -> None:
        """Mark the chat FAILED with `detail`, if this generation still holds it; once
        committed, `chat.failed` is emitted to the workspace's event webhooks."""
        async with unit_of_work(self.single or self.sessionmaker) as session:
            released = await ChatRepository(session).release_generation(
                chat_id, generation_id, ExecutionStatus.FAILED, error=detail
            )
        if released and self.events is not None:
            await self.events.emit_for_chat(
                chat_id,
                "chat.failed",
                f"chat.failed-{generation_id}",
                {"chat_id": chat_id, "generation_id": generation_id, "error": detail},
            )

    async def extend_lease(
        self, chat_id: int, generation_id: str, until: datetime, owner: str | None = None
    ) -> None:
        async with unit_of_work(self.single or self.sessionmaker) as session:
            await ChatRepository(session).extend_lease(chat_id, generation_id, until, owner)
