"""How every face serves a generation's events: the ids a client resumes with, reading the
position it sends back, and how a blocking request reports the way a generation ended."""

from __future__ import annotations

from collections.abc import AsyncIterator

from chatsvc.generation.runner import GenerationManager
from chatsvc.kit.errors import ChatsvcError, Invalid, UpstreamError, UpstreamTimeout
from chatsvc.streaming import events
from chatsvc.streaming.broker import BrokerEntry


async def resumable(
    manager: GenerationManager, chat_id: int, generation_id: str, after: str | None = None
) -> AsyncIterator[BrokerEntry]:
    """The generation's events after `after`, each with the id a client resumes from
    (`<generation id>:<entry id>`)."""
    async for entry in manager.follow(chat_id, generation_id, after):
        yield BrokerEntry(events.event_id(generation_id, entry.id), entry.event, entry.data)


async def resume_point(manager: GenerationManager, last_event_id: str) -> tuple[str, str]:
    """(generation id, broker entry id) of a Last-Event-ID, refused with 400 before any byte is
    streamed when it is malformed or the broker cannot read from it."""
    try:
        generation_id, after = events.parse_event_id(last_event_id)
    except ValueError as exc:
        raise Invalid(str(exc), code="bad_last_event_id") from None
    await manager.check_position(generation_id, after)
    return generation_id, after


def raise_for(terminal: BrokerEntry | None) -> None:
    """A blocking request reports a failed generation as the seeds say: 502 or 504."""
    if terminal is None or terminal.event != events.ERROR:
        return
    detail = str(terminal.data.get("detail", "The generation failed."))
    code = str(terminal.data.get("code", "error"))
    status = terminal.data.get("status")
    if status == 504:
        raise UpstreamTimeout(detail, code=code)
    if status == 502:
        raise UpstreamError(detail, code=code)
    raise ChatsvcError(detail, code)
