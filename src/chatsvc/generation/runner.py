"""Detached generations: a generation runs as a task of its own, not inside the request that
started it. It reads what it needs in one short transaction, streams the generator's output to the
stream broker (O(1) per token, no database write per token), and stores the answer in a second
short transaction. A client leaving changes nothing; only a cancel stops it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.assistants.models import Assistant
from chatsvc.chats.models import Chat, ExecutionStatus, Message, MessageStatus, Role
from chatsvc.chats.repository import ChatRepository, MessageRepository
from chatsvc.config import Settings
from chatsvc.generation import retrieval
from chatsvc.generation.pipeline import (
    Knowledge,
    ModelCall,
    Plan,
    VerbatimAnswer,
    faq_index,
    plan_answer,
)
from chatsvc.generation.tools import BoundTool, ToolExecutor, ToolResult, load_tools
from chatsvc.generation.types import (
    GenerationRequest,
    Generator,
    PromptMessage,
    TextDelta,
    ToolCall,
    ToolCalls,
)
from chatsvc.kit.db import unit_of_work, utcnow
from chatsvc.kit.errors import ChatsvcError, Invalid, UpstreamError, UpstreamTimeout
from chatsvc.knowledge.models import CommonQuestion, FixedResponse, Lesson
from chatsvc.streaming import events
from chatsvc.streaming.broker import BrokerEntry, StreamBroker
from chatsvc.tools.runtime import ToolRuntime

logger = logging.getLogger("chatsvc.generation")
CANCEL_POLL_SECONDS = 0.2
IDLE_READ_SECONDS = 2.0
LIMIT_ANSWER = (
    "I stopped calling tools: this assistant allows at most {limit} tool calls per answer, "
    "and I did not reach an answer within them."
)


@dataclass(frozen=True, slots=True)
class TurnTools:
    """The tools one turn may use, read with the plan."""

    workspace_id: int
    tools: list[BoundTool] = field(default_factory=list)
    pretools: list[BoundTool] = field(default_factory=list)
    pretools_generator: str = ""
    max_calls: int = 5


@dataclass(slots=True)
class _Answer:
    """What the tool-calling loop adds to the answer."""

    status: MessageStatus = MessageStatus.COMPLETE
    references: list[dict[str, Any]] = field(default_factory=list)
    visible: bool = True
    tool_calls: int = 0


@dataclass
class _Running:
    task: asyncio.Task[None]
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


class _DeltaPublisher:
    """Publishes deltas without making the generator wait for the broker: while one publish is
    in flight, the next deltas gather and go out as one event. Idle, each delta goes out at once;
    under load, fewer and larger events (per token still O(1) amortised)."""

    def __init__(self, broker: StreamBroker, key: str) -> None:
        self.broker = broker
        self.key = key
        self.pending: list[str] = []
        self.wake = asyncio.Event()
        self.closing = False
        self.task = asyncio.create_task(self._run())

    def push(self, text: str) -> None:
        self.pending.append(text)
        self.wake.set()

    async def close(self) -> None:
        self.closing = True
        self.wake.set()
        await self.task

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending:
                batch = "".join(self.pending)
                self.pending.clear()
                await self.broker.publish(self.key, events.DELTA, {"text": batch})
            if self.closing:
                return


class GenerationManager:
    """Starts, follows and cancels generations. One per process; the broker and the database
    make generations visible and cancellable from every process."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        broker: StreamBroker,
        generators: Mapping[str, Generator],
        settings: Settings,
        tools: ToolRuntime | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.broker = broker
        self.generators = generators
        self.settings = settings
        self._running: dict[str, _Running] = {}
        self.faq_cache = FaqIndexCache()
        self.executor = ToolExecutor(tools, sessionmaker, settings)

    # --- control ---------------------------------------------------------------------------

    def start(self, chat_id: int, generation_id: str, user_msg_num: int) -> None:
        """Run the generation detached, as a task of this process."""
        self._track(chat_id, generation_id, user_msg_num)

    async def run(self, chat_id: int, generation_id: str, user_msg_num: int) -> None:
        """Run the generation to its end (a background job's body)."""
        await self._track(chat_id, generation_id, user_msg_num)

    def _track(self, chat_id: int, generation_id: str, user_msg_num: int) -> asyncio.Task[None]:
        cancelled = asyncio.Event()
        task = asyncio.create_task(
            self._run(chat_id, generation_id, user_msg_num, cancelled),
            name=f"generation-{generation_id}",
        )
        self._running[generation_id] = _Running(task, cancelled)
        task.add_done_callback(lambda _t: self._running.pop(generation_id, None))
        return task

    async def cancel(self, generation_id: str) -> None:
        """Stop a generation wherever it runs: this process directly, others through the
        broker's cancel flag. Idempotent."""
        running = self._running.get(generation_id)
        if running is not None:
            running.cancelled.set()
        await self.broker.request_cancel(generation_id, self.settings.stream_ttl_seconds)

    async def shutdown(self, grace_seconds: float = 10.0) -> None:
        """Let running generations finish for a while; then stop them as a cancel does (their
        partial answers are kept), and, as a last resort, cut them off (marked FAILED)."""
        tasks = [running.task for running in self._running.values()]
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace_seconds)
        for running in list(self._running.values()):
            running.cancelled.set()
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=5)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)

    # --- reading ---------------------------------------------------------------------------

    async def follow(
        self, chat_id: int, generation_id: str, after: str | None = None
    ) -> AsyncIterator[BrokerEntry]:
        """The generation's events after `after`, live, until its terminal event. Ends early
        when the generation is no longer running and nothing is left to read (its events
        expired, or the client had them all)."""
        key = events.stream_key(generation_id)
        while True:
            entries = await self.broker.read(key, after, block_seconds=IDLE_READ_SECONDS)
            if not entries:
                if await self._is_running(chat_id, generation_id):
                    continue
                entries = await self.broker.read(key, after, block_seconds=0.05)
                if not entries:
                    return
            for entry in entries:
                yield entry
                after = entry.id
                if entry.event in events.TERMINAL:
                    return

    async def check_position(self, generation_id: str, after: str) -> None:
        """Refuse a resume position the broker cannot read (before any byte is streamed)."""
        try:
            await self.broker.read(
                events.stream_key(generation_id), after, block_seconds=0, count=1
            )
        except ValueError as exc:
            raise Invalid(str(exc), code="bad_last_event_id") from None

    async def wait(self, chat_id: int, generation_id: str) -> BrokerEntry | None:
        """Block until the generation ends; its terminal event (None if it vanished)."""
        terminal = None
        async for entry in self.follow(chat_id, generation_id):
            if entry.event in events.TERMINAL:
                terminal = entry
        return terminal

    async def _is_running(self, chat_id: int, generation_id: str) -> bool:
        async with self.sessionmaker() as session:
            row = (
                await session.execute(
                    select(Chat.execution_status, Chat.generation_id, Chat.lease_expires_at).where(
                        Chat.id == chat_id
                    )
                )
            ).one_or_none()
        return bool(
            row is not None
            and row.execution_status == ExecutionStatus.PROCESSING
            and row.generation_id == generation_id
            and (row.lease_expires_at is None or row.lease_expires_at > utcnow())
        )

    # --- the generation --------------------------------------------------------------------

    async def _run(
        self, chat_id: int, generation_id: str, user_msg_num: int, cancelled: asyncio.Event
    ) -> None:
        key = events.stream_key(generation_id)
        parts: list[str] = []
        watcher = asyncio.create_task(self._watch(chat_id, generation_id, cancelled))
        try:
            plan, turn_tools = await self._plan(chat_id, user_msg_num)
            await self.broker.publish(
                key,
                events.MESSAGE_CREATED,
                {
                    "chat_id": chat_id,
                    "generation_id": generation_id,
                    "role": Role.ASSISTANT,
                    "usr_msg_num": user_msg_num,
                },
            )
            answer = _Answer()
            if isinstance(plan, VerbatimAnswer):
                parts.append(plan.content)
                await self.broker.publish(key, events.DELTA, {"text": plan.content})
            else:
                if plan.references:
                    await self.broker.publish(
                        key, events.REFERENCES, {"references": plan.references}
                    )
                turn = _Turn(chat_id, generation_id, user_msg_num, key, cancelled)
                answer = await self._answer(plan, turn_tools, turn, parts)
            await self._complete(chat_id, generation_id, user_msg_num, plan, parts, answer)
        except (UpstreamError, UpstreamTimeout) as exc:
            status_code = 504 if isinstance(exc, UpstreamTimeout) else 502
            await self._fail(chat_id, generation_id, exc.message, exc.code, status_code)
        except ChatsvcError as exc:
            await self._fail(chat_id, generation_id, exc.message, exc.code, 400)
        except asyncio.CancelledError:
            await asyncio.shield(
                self._fail(chat_id, generation_id, "The server stopped.", "interrupted", 503)
            )
            raise
        except Exception:
            logger.exception("generation %s of chat %s failed", generation_id, chat_id)
            await self._fail(
                chat_id, generation_id, "Internal error while generating.", "internal", 500
            )
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self.broker.finish(key, self.settings.stream_ttl_seconds)

    async def _answer(
        self, plan: ModelCall, tools: TurnTools, turn: _Turn, parts: list[str]
    ) -> _Answer:
        """The tool-calling loop: pretools first, then the model with the tools until it
        answers in words, a retrieval tool answers for it, or the call budget is spent (then
        one last call without tools, so the user gets an answer, not an error)."""
        answer = _Answer()
        messages = list(plan.request.messages)
        if tools.pretools:
            request = replace(
                plan.request,
                messages=messages,
                tools=[t.spec for t in tools.pretools],
                tool_choice="required",
            )
            # The pretool model's words are not the answer: only its calls count.
            done, calls = await self._stream(
                tools.pretools_generator, request, turn, [], publish=False
            )
            if not done:
                answer.status = MessageStatus.CANCELLED
                return answer
            if calls and await self._tool_round(
                calls, "", tools.pretools, tools, turn, messages, answer, parts
            ):
                return answer
        while True:
            offered = [t.spec for t in tools.tools]
            choice = "auto" if answer.tool_calls < tools.max_calls else "none"
            request = replace(plan.request, messages=messages, tools=offered, tool_choice=choice)
            start = len(parts)
            done, calls = await self._stream(plan.generator, request, turn, parts)
            if not done:
                answer.status = MessageStatus.CANCELLED
                return answer
            if not calls or not offered:
                return answer  # calls of tools never offered are not run
            if choice == "none":
                # The model insists after its budget was spent: answer in words rather than
                # loop or fail.
                text = LIMIT_ANSWER.format(limit=tools.max_calls)
                parts.append(text)
                await self.broker.publish(turn.key, events.DELTA, {"text": text})
                return answer
            said = "".join(parts[start:])
            if await self._tool_round(
                calls, said, tools.tools, tools, turn, messages, answer, parts
            ):
                return answer

    async def _tool_round(
        self,
        calls: tuple[ToolCall, ...],
        said: str,
        offered: list[BoundTool],
        tools: TurnTools,
        turn: _Turn,
        messages: list[PromptMessage],
        answer: _Answer,
        parts: list[str],
    ) -> bool:
        """Runs one round of calls (concurrently, each under its deadline), stores each call
        and result as a tool message, and adds them to the prompt. True when the turn ends
        here: a cancel, or a retrieval tool that answers by itself."""
        by_name = {tool.spec.name: tool for tool in offered}
        budget = max(0, tools.max_calls - answer.tool_calls)
        messages.append(PromptMessage("assistant", said, tool_calls=calls))
        jobs: list[asyncio.Task[ToolResult]] = []
        for number, call in enumerate(calls):
            tool = by_name.get(call.name)
            await self.broker.publish(
                turn.key,
                events.TOOL_CALL,
                {
                    "tool_call_id": call.id,
                    "tool_id": tool.tool_id if tool else None,
                    "tool_name": tool.title if tool else None,
                    "function_name": call.name,
                    "arguments": call.arguments,
                },
            )
            jobs.append(asyncio.create_task(self._call(tools, tool, call, number < budget)))
        answer.tool_calls += min(len(calls), budget)
        gathered = asyncio.gather(*jobs)
        if not await _until(gathered, turn.cancelled):
            answer.status = MessageStatus.CANCELLED
            return True
        own_answer = None
        for call, result in zip(calls, gathered.result(), strict=True):
            tool = by_name.get(call.name)
            await self._store_tool_message(turn, call, tool, result, answer)
            messages.append(PromptMessage("tool", result.content, tool_call_id=call.id))
            if result.answer is not None and not result.is_error and own_answer is None:
                own_answer = result.answer
        if own_answer is not None:
            parts.append(own_answer)
            await self.broker.publish(turn.key, events.DELTA, {"text": own_answer})
            return True
        return False

    async def _call(
        self, tools: TurnTools, tool: BoundTool | None, call: ToolCall, allowed: bool
    ) -> ToolResult:
        if tool is None:
            return ToolResult(f"Error: no tool named {call.name!r} is offered.", is_error=True)
        if not allowed:
            return ToolResult(
                f"Error: not run: this assistant allows at most {tools.max_calls} tool calls "
                "per answer.",
                is_error=True,
            )
        return await self.executor.execute(tools.workspace_id, tool, call)

    async def _store_tool_message(
        self,
        turn: _Turn,
        call: ToolCall,
        tool: BoundTool | None,
        result: ToolResult,
        answer: _Answer,
    ) -> None:
        references = _renumbered(result.references, len(answer.references))
        answer.references.extend(references)
        if tool is not None and not tool.show_assistant_message:
            answer.visible = False
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
            session.add(message)
            await session.flush()
            payload = events.message_payload(message)
        await self.broker.publish(
            turn.key,
            events.TOOL_RESULT,
            {
                "tool_call_id": call.id,
                "is_error": result.is_error,
                "content": result.content,
                "message": payload,
            },
        )
        if references:
            await self.broker.publish(turn.key, events.REFERENCES, {"references": references})

    async def _stream(
        self,
        generator_name: str,
        request: GenerationRequest,
        turn: _Turn,
        parts: list[str],
        *,
        publish: bool = True,
    ) -> tuple[bool, tuple[ToolCall, ...]]:
        """Relay one generator call's deltas. (False, ()) when a cancel stopped it (parts keep
        the text); else (True, the tool calls the model asked for)."""
        generator = self.generators.get(generator_name)
        if generator is None:
            raise UpstreamError(
                f"Generator app {generator_name!r} is not configured (CHATSVC_GENERATOR_APPS)."
            )

        deltas = _DeltaPublisher(self.broker, turn.key) if publish else None
        calls: list[ToolCall] = []

        async def relay() -> None:
            stream = generator.stream(request)
            try:
                async for event in stream:
                    if isinstance(event, TextDelta) and event.text:
                        parts.append(event.text)
                        if deltas is not None:
                            deltas.push(event.text)
                    elif isinstance(event, ToolCalls):
                        calls.extend(event.calls)
            finally:
                await stream.aclose()

        relay_task = asyncio.create_task(relay())
        completed = await _until(relay_task, turn.cancelled)
        if deltas is not None:
            await deltas.close()  # every delta is out before the next event
        if completed:
            relay_task.result()  # re-raise generator errors
        return completed, tuple(calls)

    async def _watch(self, chat_id: int, generation_id: str, cancelled: asyncio.Event) -> None:
        """Sees cancels asked in other processes, and keeps the lease alive."""
        lease = self.settings.generation_lease_seconds
        renew_every = max(1.0, lease / 3)
        since_renewal = 0.0
        while not cancelled.is_set():
            await asyncio.sleep(CANCEL_POLL_SECONDS)
            if await self.broker.cancel_requested(generation_id):
                cancelled.set()
                return
            since_renewal += CANCEL_POLL_SECONDS
            if since_renewal >= renew_every:
                since_renewal = 0.0
                async with unit_of_work(self.sessionmaker) as session:
                    await ChatRepository(session).extend_lease(
                        chat_id, generation_id, utcnow() + timedelta(seconds=lease)
                    )

    async def _plan(self, chat_id: int, user_msg_num: int) -> tuple[Plan, TurnTools]:
        async with self.sessionmaker() as session:
            chat = await session.get(Chat, chat_id)
            assert chat is not None
            assistant = await session.get(Assistant, chat.assistant_id)
            assert assistant is not None
            messages = await MessageRepository(session).for_chat(chat_id)
            user = next((m for m in messages if m.msg_num == user_msg_num), None)
            if user is None:
                raise ChatsvcError("The user message to answer is gone.", "missing_message")
            history = [
                m
                for m in messages
                if m.msg_num < user_msg_num and m.visible and m.tool_call_id is None
            ]
            knowledge = await _knowledge(session, assistant, self.faq_cache)
            plan = plan_answer(assistant, history, user, knowledge)
            turn_tools = TurnTools(workspace_id=chat.workspace_id)
            if isinstance(plan, ModelCall):
                turn_tools = TurnTools(
                    workspace_id=chat.workspace_id,
                    tools=await load_tools(session, chat.workspace_id, assistant.tools),
                    pretools=await load_tools(session, chat.workspace_id, assistant.pretools),
                    pretools_generator=assistant.generation_config_pretools
                    or assistant.generation_config,
                    max_calls=assistant.max_consecutive_tool_calls,
                )
            return plan, turn_tools

    async def _complete(
        self,
        chat_id: int,
        generation_id: str,
        user_msg_num: int,
        plan: Plan,
        parts: list[str],
        answer: _Answer,
    ) -> None:
        async with unit_of_work(self.sessionmaker) as session:
            repository = ChatRepository(session)
            # A reload hid the previous answer to this message: the new one replaces it.
            previous = await MessageRepository(session).answer_to(chat_id, user_msg_num)
            message = Message(
                chat_id=chat_id,
                msg_num=await repository.next_msg_num(chat_id),
                role=Role.ASSISTANT,
                content="".join(parts),
                usr_msg_num=user_msg_num,
                replaces_id=previous.id if previous and not previous.visible else None,
                fixed=plan.fixed if isinstance(plan, VerbatimAnswer) else None,
                references=(plan.references + answer.references)
                if isinstance(plan, ModelCall)
                else [],
                prompt=plan.prompt_record() if isinstance(plan, ModelCall) else None,
                status=answer.status,
                visible=answer.visible,
                generation_id=generation_id,
                meta={"not_info": True}
                if isinstance(plan, VerbatimAnswer) and plan.reason == "not_info"
                else {},
            )
            session.add(message)
            await session.flush()
            await repository.release_generation(
                chat_id, generation_id, ExecutionStatus.AVAILABLE, answered=True
            )
            chat = await session.get(Chat, chat_id, populate_existing=True)
            assert chat is not None
            payload: dict[str, Any] = {
                "message": events.message_payload(message),
                "chat": events.chat_payload(chat),
            }
        await self.broker.publish(
            events.stream_key(generation_id), events.MESSAGE_COMPLETED, payload
        )

    async def _fail(
        self, chat_id: int, generation_id: str, detail: str, code: str, status: int
    ) -> None:
        try:
            async with unit_of_work(self.sessionmaker) as session:
                await ChatRepository(session).release_generation(
                    chat_id, generation_id, ExecutionStatus.FAILED, error=detail
                )
        finally:
            await self.broker.publish(
                events.stream_key(generation_id),
                events.ERROR,
                {"code": code, "detail": detail, "status": status, "chat_id": chat_id},
            )


class FaqIndexCache:
    """Built BM25 indexes of assistants' FAQ, kept while the FAQ is unchanged (same count, last
    id and last update), so a turn does not re-read and re-tokenise the whole FAQ. Bounded LRU."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[int, tuple[tuple[Any, ...], retrieval.Bm25Index]] = OrderedDict()

    async def get(self, session: AsyncSession, assistant_id: int) -> retrieval.Bm25Index:
        fingerprint = tuple(
            (
                await session.execute(
                    select(
                        func.count(CommonQuestion.id),
                        func.max(CommonQuestion.id),
                        func.max(CommonQuestion.updated_at),
                    ).where(CommonQuestion.assistant_id == assistant_id)
                )
            ).one()
        )
        cached = self._entries.get(assistant_id)
        if cached is not None and cached[0] == fingerprint:
            self._entries.move_to_end(assistant_id)
            return cached[1]
        rows = list(
            (
                await session.scalars(
                    select(CommonQuestion)
                    .where(CommonQuestion.assistant_id == assistant_id)
                    .order_by(CommonQuestion.id)
                )
            ).all()
        )
        # Tokenising thousands of items takes a while: keep it off the event loop.
        index = await asyncio.to_thread(faq_index, rows) if len(rows) > 200 else faq_index(rows)
        self._entries[assistant_id] = (fingerprint, index)
        self._entries.move_to_end(assistant_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return index


async def _knowledge(
    session: AsyncSession, assistant: Assistant, faq_cache: FaqIndexCache
) -> Knowledge:
    async def rows(model: type[Any], wanted: bool) -> list[Any]:
        if not wanted:
            return []
        result = await session.scalars(
            select(model).where(model.assistant_id == assistant.id).order_by(model.id)
        )
        return list(result.all())

    return Knowledge(
        faq_index=await faq_cache.get(session, assistant.id)
        if assistant.faq_available
        else retrieval.EMPTY_INDEX,
        fixed=await rows(FixedResponse, assistant.fixed_available),
        lessons=await rows(Lesson, assistant.lessons_available),
    )


@dataclass(frozen=True, slots=True)
class _Turn:
    chat_id: int
    generation_id: str
    user_msg_num: int
    key: str
    cancelled: asyncio.Event


async def _until(work: asyncio.Future[Any], cancelled: asyncio.Event) -> bool:
    """Wait for `work` unless a cancel comes first: then cancel it (closing any upstream
    request) and return False."""
    waiter = asyncio.create_task(cancelled.wait())
    try:
        await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if work.done():
        return True
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await work
    return False


def _renumbered(references: list[dict[str, Any]], before: int) -> list[dict[str, Any]]:
    return [
        {**reference, "reference_num": before + number, "showed_num": before + number}
        for number, reference in enumerate(references, start=1)
    ]
