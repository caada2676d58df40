"""The turn workflow, in one place for every face: accept a user message (a new chat's first, a
new one, a thread's reload or edit, or one stored earlier and still unanswered) in one committed
unit of work; start its generation in this process or hand it to a background job; then follow
the generation's events (resumable) or wait for its end. Faces turn requests into these calls and
the typed results into their wire format; the rules live in the chat and thread services.

    faces ──► TurnService ──► chat / thread services (rules, in the caller's transaction)
                   │  └─────► Generations (start here, cancel anywhere, follow, wait)
                   └────────► jobs (a background turn's answer)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatsvc.auth.service import AuthContext
from chatsvc.chats import external
from chatsvc.chats import service as chat_service
from chatsvc.chats.jobs import enqueue_answer
from chatsvc.chats.models import Chat, ExecutionStatus, Message
from chatsvc.chats.schemas import OptionalUserMessageIn
from chatsvc.chats.service import Earlier, Turn, UserMessage
from chatsvc.config import Settings
from chatsvc.generation.answers import TurnRef
from chatsvc.generation.runner import Generations
from chatsvc.jobs.queue import JobQueue
from chatsvc.kit.db import in_unit_of_work, unit_of_work, utcnow
from chatsvc.kit.errors import Invalid, NotFound
from chatsvc.streaming import events
from chatsvc.streaming.broker import BrokerEntry
from chatsvc.threads import service as thread_service
from chatsvc.threads.service import TurnRequest


class Delivery(StrEnum):
    """Where a turn's answer is generated."""

    #: a task of this process; the caller streams its events or waits for its end
    LIVE = "live"
    #: a background job (a worker, or this process's in-process queue); the caller returns
    BACKGROUND = "background"


#: reads what a face shows first of an accepted turn, inside the turn's own transaction
Intro = Callable[[AsyncSession, Chat, Turn], Awaitable[dict[str, Any]]]
#: accepts a turn by the chat and thread services' rules, in the caller's transaction
Accept = Callable[[AsyncSession], Awaitable[tuple[Chat, Turn | None]]]


@dataclass(frozen=True, slots=True)
class ChatRef:
    """The chat a turn is in, as faces name it."""

    id: int
    uuid: str

    @classmethod
    def of(cls, chat: Chat) -> ChatRef:
        return cls(chat.id, chat.uuid)


@dataclass(frozen=True, slots=True)
class TurnHandle:
    """A chat after a turn was asked of it, and what to follow."""

    chat: ChatRef
    #: the user message accepted for an answer (None: nothing new, e.g. a GET with no pending
    #: message, or a chat made without a message)
    turn: Turn | None
    #: the generation to follow: this turn's, a replayed turn's, or one already running in the
    #: chat; None when there is nothing to follow (answered at once, or nothing to answer)
    generation_id: str | None
    #: what `intro` read (threads face), also the first event of the stream
    intro: dict[str, Any] | None = None
    #: the broker position to resume after (Last-Event-ID), None: from the start
    after: str | None = None
    #: the chat and its messages as read, when nothing ran (what `outcome` answers)
    snapshot: tuple[Chat, list[Message]] | None = None
    #: a resume from the generation's last event (or after its events expired): the client has
    #: had everything; faces answer 204, which is what ends a browser EventSource's reconnects
    ended: bool = False


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    chat_id: int
    #: the generation asked to stop; None when none was running
    generation_id: str | None

    @property
    def cancelled(self) -> bool:
        return self.generation_id is not None


@dataclass(frozen=True)
class TurnService:
    """One per process (built by the lifespan or the worker); every method runs its own short
    units of work, so nothing holds a database session while a generation streams."""

    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    generations: Generations
    queue: JobQueue
    #: sessions for reads (autocommit: no BEGIN/COMMIT around them); default: `sessionmaker`
    read_sessionmaker: async_sessionmaker[AsyncSession] | None = None

    @property
    def reads(self) -> async_sessionmaker[AsyncSession]:
        return self.read_sessionmaker or self.sessionmaker

    def on(self, sessionmaker: async_sessionmaker[AsyncSession]) -> TurnService:
        """This service with its units of work (and reads) on another sessionmaker."""
        return replace(self, sessionmaker=sessionmaker, read_sessionmaker=None)

    @property
    def _lease(self) -> int:
        return self.settings.generation_lease_seconds

    def _owner(self, delivery: Delivery) -> str | None:
        """Who a turn's claim names as its generation's process: this one for a live turn; none
        for a background one (the worker that runs it takes it over when it starts)."""
        return self.generations.owner if delivery is Delivery.LIVE else None

    # --- accepting turns -----------------------------------------------------------------------

    async def open_chat(
        self,
        auth: AuthContext,
        assistant_id: int,
        data: OptionalUserMessageIn,
        *,
        idempotency_key: str | None,
        delivery: Delivery = Delivery.LIVE,
        streaming: bool = False,
        history: Sequence[Earlier] = (),
    ) -> TurnHandle:
        """A new chat of the assistant, with its first message's turn when one is given (a retry
        with the same Idempotency-Key returns the first chat and re-attaches to its turn).
        `history`: earlier messages of a conversation the client held, stored before the first
        message in the same unit of work (nothing is stored if any check fails), so its answer's
        prompt carries them (chat_service.create_chat says how they count)."""

        async def accept(session: AsyncSession) -> tuple[Chat, Turn | None]:
            return await chat_service.create_chat(
                session,
                auth,
                assistant_id,
                data,
                idempotency_key=idempotency_key,
                lease_seconds=self._lease,
                owner=self._owner(delivery),
                require_streaming=streaming,
                require_realtime=delivery is Delivery.BACKGROUND,
                history=history,
            )

        return await self._accept_and_start(auth, delivery, accept)

    async def send(
        self,
        auth: AuthContext,
        chat_id: int,
        text: str,
        metadata: dict[str, Any],
        *,
        idempotency_key: str | None,
        delivery: Delivery = Delivery.LIVE,
    ) -> TurnHandle:
        """A new user message in a chat, claimed for its answer (409 while another runs)."""
        sent = UserMessage(chat_id, text, metadata, idempotency_key)
        if delivery is Delivery.LIVE:
            # The common case in one read and one statement, no transaction around them.
            async with unit_of_work(self.reads) as session:
                quick = await chat_service.accept_in_one_statement(
                    session, auth, sent, lease_seconds=self._lease, owner=self._owner(delivery)
                )
            if quick is not None:
                target, accepted = quick
                return await self._started(ChatRef(target.chat_id, target.uuid), accepted, delivery)

        async def accept(session: AsyncSession) -> tuple[Chat, Turn | None]:
            turn = await chat_service.submit_user_message(
                session, auth, sent, lease_seconds=self._lease, owner=self._owner(delivery)
            )
            return await chat_service.get_chat(session, auth, chat_id), turn

        return await self._accept_and_start(auth, delivery, accept)

    async def thread_turn(
        self,
        auth: AuthContext,
        request: TurnRequest,
        *,
        idempotency_key: str | None,
        intro: Intro,
    ) -> TurnHandle:
        """A threads-face turn (new thread, new message, reload or edit). `intro` reads what the
        stream shows first; it is published before the generation starts, so every reader of
        the stream (resumes too) gets it first."""

        async def start(session: AsyncSession) -> tuple[Chat, Turn, dict[str, Any]]:
            chat, turn = await thread_service.start_turn(
                session,
                auth,
                request,
                idempotency_key=idempotency_key,
                lease_seconds=self._lease,
                owner=self._owner(Delivery.LIVE),
            )
            return chat, turn, await intro(session, chat, turn)

        chat, turn, shown = await in_unit_of_work(self.sessionmaker, start)
        if turn.generation_id is not None and not turn.replayed:
            await self.generations.broker.publish(
                events.stream_key(turn.generation_id), events.TURN, shown
            )
        handle = await self._started(chat, turn, Delivery.LIVE)
        return TurnHandle(handle.chat, turn, handle.generation_id, intro=shown)

    async def answer_pending(
        self,
        auth: AuthContext,
        chat_id: int,
        *,
        retry_failed: bool = False,
        delivery: Delivery = Delivery.LIVE,
    ) -> TurnHandle:
        """A chat read by a client that expects its answer: when its last message is from the
        user and nothing runs, one generation starts (one, however many clients ask); when one
        runs, that one is followed."""
        # Usually there is nothing to start: one read (no transaction) answers the GET.
        async with self.reads() as session:
            chat = await chat_service.get_chat(session, auth, chat_id)
            messages = await chat_service.messages_of(session, chat.id)
        if not chat_service.awaits_answer(chat, messages, utcnow(), retry_failed=retry_failed):
            idle = chat.execution_status != ExecutionStatus.PROCESSING
            running = None if idle else chat.generation_id
            follow = running if delivery is Delivery.LIVE else None
            snapshot = (chat, messages) if follow is None else None
            return TurnHandle(ChatRef.of(chat), None, follow, snapshot=snapshot)

        async def accept(session: AsyncSession) -> tuple[Chat, Turn | None]:
            return await chat_service.claim_pending(
                session,
                auth,
                chat_id,
                lease_seconds=self._lease,
                owner=self._owner(delivery),
                retry_failed=retry_failed,
            )

        chat, pending = await self._accept(auth, delivery, accept)
        if pending is not None:
            return await self._started(chat, pending, delivery)
        running = (
            chat.generation_id if chat.execution_status == ExecutionStatus.PROCESSING else None
        )
        follow = running if delivery is Delivery.LIVE else None
        return TurnHandle(ChatRef.of(chat), None, follow)

    async def post_message(self, auth: AuthContext, new: external.NewMessage) -> external.Posted:
        """messages-v1: a message stored once per externalId; a main-thread user message is a
        turn answered by a background job."""

        async def post(session: AsyncSession) -> external.Posted:
            posted = await external.post_message(session, auth, new, settings=self.settings)
            if posted.turn is not None:
                job_id = await enqueue_answer(session, self.queue, self.settings, auth, posted.turn)
                posted = replace(posted, answer_job_id=job_id)
            return posted

        return await in_unit_of_work(self.sessionmaker, post)

    # --- following -----------------------------------------------------------------------------

    async def resume(
        self,
        auth: AuthContext,
        last_event_id: str,
        *,
        chat_id: int | None = None,
        thread_uuid: str | None = None,
    ) -> TurnHandle:
        """Where a client that reconnects with Last-Event-ID resumes: the generation its id
        names, after that event. Refused (400) before any byte is streamed when the id is
        malformed or the broker cannot read from it; 404 unless the caller sees the chat (the
        one named, else the one the generation answered in) and the generation is of it. The
        handle is `ended` when the client had every event of a generation that no longer runs."""
        try:
            generation_id, after = events.parse_event_id(last_event_id)
        except ValueError as exc:
            raise Invalid(str(exc), code="bad_last_event_id") from None
        await self.generations.check_position(generation_id, after)
        async with self.reads() as session:
            if chat_id is not None:
                chat = await chat_service.get_chat(session, auth, chat_id)
                await chat_service.ensure_generation_of(session, auth, chat.id, generation_id)
            else:
                chat = await thread_service.thread_of_generation(session, auth, generation_id)
        if thread_uuid is not None and thread_uuid != chat.uuid:
            raise NotFound(
                f"No stream {generation_id} in thread {thread_uuid}.", code="stream_not_found"
            )
        ended = await self.generations.has_ended(chat.id, generation_id, after)
        return TurnHandle(ChatRef.of(chat), None, generation_id, after=after, ended=ended)

    async def events(self, handle: TurnHandle) -> AsyncIterator[BrokerEntry]:
        """The handle's generation's events from its resume position, live, until its terminal
        event; each with the id a client resumes from (`<generation id>:<entry id>`)."""
        generation_id = handle.generation_id
        if generation_id is None:
            return
        source = self.generations.follow(handle.chat.id, generation_id, handle.after)
        try:
            async for entry in source:
                ident = events.event_id(generation_id, entry.id)
                yield BrokerEntry(ident, entry.event, entry.data, entry.encoded)
        finally:
            await source.aclose()  # type: ignore[attr-defined]

    async def finish(self, handle: TurnHandle) -> None:
        """Wait for the handle's generation to end; a failed one is raised as the domain error
        it reported (UpstreamError, UpstreamTimeout, ...)."""
        if handle.generation_id is None:
            return
        terminal = await self.generations.wait(handle.chat.id, handle.generation_id)
        if terminal is not None and terminal.event == events.ERROR:
            raise events.error_of(terminal.data)

    async def outcome(self, auth: AuthContext, handle: TurnHandle) -> tuple[Chat, list[Message]]:
        """`finish`, then the chat and its messages as they are now."""
        if handle.generation_id is None and handle.snapshot is not None:
            return handle.snapshot
        await self.finish(handle)
        return await self.chat_with_messages(auth, handle.chat.id)

    async def cancel(self, auth: AuthContext, chat_id: int) -> CancelOutcome:
        """Stop the chat's running generation wherever it runs; idempotent."""
        async with self.reads() as session:
            chat = await chat_service.get_chat(session, auth, chat_id)
        running = chat.execution_status == ExecutionStatus.PROCESSING
        generation_id = chat.generation_id if running else None
        if generation_id is not None:
            await self.generations.cancel(generation_id)
        return CancelOutcome(chat.id, generation_id)

    # --- reading what a face shows -------------------------------------------------------------

    async def chat_with_messages(
        self, auth: AuthContext, chat_id: int
    ) -> tuple[Chat, list[Message]]:
        """The chat and its messages as they are now (after a turn, or for a read)."""
        async with self.reads() as session:
            chat = await chat_service.get_chat(session, auth, chat_id)
            return chat, await chat_service.messages_of(session, chat.id)

    # --- internals -----------------------------------------------------------------------------

    async def _accept(
        self, auth: AuthContext, delivery: Delivery, accept: Accept
    ) -> tuple[Chat, Turn | None]:
        """Run `accept` (the rules: a turn accepted, or none) in one committed unit of work with,
        for a background delivery, the job that will answer the turn (queued once it commits).
        On SQLite, a unit that meets a lock error runs again from the start (`in_unit_of_work`)."""

        async def accepted(session: AsyncSession) -> tuple[Chat, Turn | None]:
            chat, turn = await accept(session)
            if delivery is Delivery.BACKGROUND:
                await enqueue_answer(session, self.queue, self.settings, auth, turn)
            return chat, turn

        return await in_unit_of_work(self.sessionmaker, accepted)

    async def _accept_and_start(
        self, auth: AuthContext, delivery: Delivery, accept: Accept
    ) -> TurnHandle:
        """`_accept`, then the accepted turn started."""
        chat, turn = await self._accept(auth, delivery, accept)
        return await self._started(chat, turn, delivery)

    async def _started(
        self, chat: Chat | ChatRef, turn: Turn | None, delivery: Delivery
    ) -> TurnHandle:
        """After the accepting transaction committed: start a new live turn's generation."""
        if isinstance(chat, Chat):
            chat = ChatRef.of(chat)
        if turn is None:
            return TurnHandle(chat, None, None)
        if delivery is Delivery.LIVE and turn.generation_id is not None and not turn.replayed:
            self.generations.start(TurnRef(turn.chat_id, turn.generation_id, turn.user_msg_num))
        follow = turn.generation_id if delivery is Delivery.LIVE else None
        return TurnHandle(chat, turn, follow)
