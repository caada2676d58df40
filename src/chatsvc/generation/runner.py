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
from dataclasses import dataclass, field
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
from chatsvc.generation.types import Generator, TextDelta
from chatsvc.kit.db import unit_of_work, utcnow
from chatsvc.kit.errors import ChatsvcError, Invalid, UpstreamError, UpstreamTimeout
from chatsvc.knowledge.models import CommonQuestion, FixedResponse, Lesson
from chatsvc.streaming import events
from chatsvc.streaming.broker import BrokerEntry, StreamBroker

logger = logging.getLogger("chatsvc.generation")
CANCEL_POLL_SECONDS = 0.2
IDLE_READ_SECONDS = 2.0


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
    ) -> None:
        self.sessionmaker = sessionmaker
        self.broker = broker
        self.generators = generators
        self.settings = settings
        self._running: dict[str, _Running] = {}
        self.faq_cache = FaqIndexCache()

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
            plan = await self._plan(chat_id, user_msg_num)
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
            status = MessageStatus.COMPLETE
            if isinstance(plan, VerbatimAnswer):
                parts.append(plan.content)
                await self.broker.publish(key, events.DELTA, {"text": plan.content})
            else:
                if plan.references:
                    await self.broker.publish(
                        key, events.REFERENCES, {"references": plan.references}
                    )
                if not await self._stream(plan, key, parts, cancelled):
                    status = MessageStatus.CANCELLED
            await self._complete(chat_id, generation_id, user_msg_num, plan, parts, status)
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

    async def _stream(
        self, plan: ModelCall, key: str, parts: list[str], cancelled: asyncio.Event
    ) -> bool:
        """Relay the generator's deltas; False when a cancel stopped it (parts keep the text)."""
        generator = self.generators.get(plan.generator)
        if generator is None:
            raise UpstreamError(
                f"Generator app {plan.generator!r} is not configured (CHATSVC_GENERATOR_APPS)."
            )

        deltas = _DeltaPublisher(self.broker, key)

        async def relay() -> None:
            stream = generator.stream(plan.request)
            try:
                async for event in stream:
                    if isinstance(event, TextDelta) and event.text:
                        parts.append(event.text)
                        deltas.push(event.text)
            finally:
                await stream.aclose()

        relay_task = asyncio.create_task(relay())
        cancel_task = asyncio.create_task(cancelled.wait())
        try:
            await asyncio.wait({relay_task, cancel_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancel_task.cancel()
        completed = relay_task.done()
        if not completed:
            relay_task.cancel()  # closes the upstream request through aclose()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task
        await deltas.close()  # every delta is out before the terminal event
        if completed:
            relay_task.result()  # re-raise generator errors
        return completed

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

    async def _plan(self, chat_id: int, user_msg_num: int) -> Plan:
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
            return plan_answer(assistant, history, user.content, knowledge)

    async def _complete(
        self,
        chat_id: int,
        generation_id: str,
        user_msg_num: int,
        plan: Plan,
        parts: list[str],
        status: MessageStatus,
    ) -> None:
        async with unit_of_work(self.sessionmaker) as session:
            repository = ChatRepository(session)
            message = Message(
                chat_id=chat_id,
                msg_num=await repository.next_msg_num(chat_id),
                role=Role.ASSISTANT,
                content="".join(parts),
                usr_msg_num=user_msg_num,
                fixed=plan.fixed if isinstance(plan, VerbatimAnswer) else None,
                references=plan.references if isinstance(plan, ModelCall) else [],
                prompt=plan.prompt_record() if isinstance(plan, ModelCall) else None,
                status=status,
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
