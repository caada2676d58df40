"""The answer of a model call: the generator's deltas relayed to the stream as they come, and the
tool-calling loop (pretools first, then the model with its tools until it answers in words, a
retrieval tool answers for it, or the call budget is spent)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from chatsvc.chats.models import MessageStatus
from chatsvc.generation import usage
from chatsvc.generation.answers import Answer, AnswerStore, TurnRef
from chatsvc.generation.pipeline import ModelCall
from chatsvc.generation.planning import TurnTools
from chatsvc.generation.tools import BoundTool, ToolExecutor, ToolResult
from chatsvc.generation.types import (
    Finished,
    GenerationRequest,
    Generator,
    PromptMessage,
    TextDelta,
    ToolCall,
    ToolCalls,
)
from chatsvc.kit.errors import UpstreamError
from chatsvc.streaming import events
from chatsvc.streaming.broker import StreamBroker

LIMIT_ANSWER = (
    "I stopped calling tools: this assistant allows at most {limit} tool calls per answer, "
    "and I did not reach an answer within them."
)


@dataclass(frozen=True, slots=True)
class Running:
    """A generation as its loop sees it: the turn, its stream and its cancel signal."""

    turn: TurnRef
    key: str
    cancelled: asyncio.Event


@dataclass
class ToolLoop:
    broker: StreamBroker
    generators: Mapping[str, Generator]
    executor: ToolExecutor
    store: AnswerStore

    async def answer(
        self, plan: ModelCall, tools: TurnTools, run: Running, parts: list[str]
    ) -> Answer:
        """Run the model (and its tools) to an answer; its text is appended to `parts` as it
        comes, so a cancel or a failure keeps what was said."""
        answer = Answer()
        messages = list(plan.request.messages)
        if tools.pretools:
            request = replace(
                plan.request,
                messages=messages,
                tools=[t.spec for t in tools.pretools],
                tool_choice="required",
            )
            # The pretool model's words are not the answer: only its calls count.
            done, calls = await self.relay(
                tools.pretools_generator, request, run, [], publish=False, answer=answer
            )
            if not done:
                answer.status = MessageStatus.CANCELLED
                return answer
            if calls and await self._round(
                calls, "", tools.pretools, tools, run, messages, answer, parts
            ):
                return answer
        while True:
            offered = [t.spec for t in tools.tools]
            choice = "auto" if answer.tool_calls < tools.max_calls else "none"
            request = replace(plan.request, messages=messages, tools=offered, tool_choice=choice)
            start = len(parts)
            done, calls = await self.relay(plan.generator, request, run, parts, answer=answer)
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
                await self.broker.publish(run.key, events.DELTA, {"text": text})
                return answer
            said = "".join(parts[start:])
            if await self._round(calls, said, tools.tools, tools, run, messages, answer, parts):
                return answer

    async def relay(
        self,
        generator_name: str,
        request: GenerationRequest,
        run: Running,
        parts: list[str],
        *,
        publish: bool = True,
        answer: Answer | None = None,
    ) -> tuple[bool, tuple[ToolCall, ...]]:
        """Relay one generator call's deltas. (False, ()) when a cancel stopped it (parts keep
        the text); else (True, the tool calls the model asked for). The call's token usage is
        added to `answer`: the upstream's figures, else an estimate (chatsvc.generation.usage)."""
        generator = self.generators.get(generator_name)
        if generator is None:
            raise UpstreamError(
                f"Generator app {generator_name!r} is not configured (CHATSVC_GENERATOR_APPS)."
            )
        calls: list[ToolCall] = []
        broker, key = self.broker, run.key
        #: characters streamed (O(1) per delta) and the upstream's usage, for the accounting
        said = [0]
        finished: list[Finished] = []

        async def relay() -> None:
            # One upstream piece, one `delta` event: publishing appends in memory (the broker
            # writes to Redis in batches), so the generator never waits for it.
            stream = generator.stream(request)
            try:
                async for event in stream:
                    if isinstance(event, TextDelta) and event.text:
                        parts.append(event.text)
                        said[0] += len(event.text)
                        if publish:
                            await broker.publish(key, events.DELTA, {"text": event.text})
                    elif isinstance(event, ToolCalls):
                        calls.extend(event.calls)
                    elif isinstance(event, Finished):
                        finished.append(event)
            finally:
                await stream.aclose()

        relay_task = asyncio.create_task(relay())
        completed = await until(relay_task, run.cancelled)
        if completed:
            relay_task.result()  # re-raise generator errors
        if answer is not None:
            figures = usage.reported(finished[-1].usage) if finished else None
            if figures is not None:
                answer.add_usage(*figures, estimated=False)
            else:
                answer.add_usage(
                    usage.tokens_of(usage.prompt_chars(request)),
                    usage.tokens_of(said[0] + usage.calls_chars(calls)),
                    estimated=True,
                )
        return completed, tuple(calls)

    async def _round(
        self,
        calls: tuple[ToolCall, ...],
        said: str,
        offered: list[BoundTool],
        tools: TurnTools,
        run: Running,
        messages: list[PromptMessage],
        answer: Answer,
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
                run.key,
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
        if not await until(gathered, run.cancelled):
            answer.status = MessageStatus.CANCELLED
            return True
        own_answer = None
        for call, result in zip(calls, gathered.result(), strict=True):
            tool = by_name.get(call.name)
            await self._store(run, call, tool, result, answer)
            messages.append(PromptMessage("tool", result.content, tool_call_id=call.id))
            if result.answer is not None and not result.is_error and own_answer is None:
                own_answer = result.answer
        if own_answer is None:
            return False
        parts.append(own_answer)
        await self.broker.publish(run.key, events.DELTA, {"text": own_answer})
        return True

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

    async def _store(
        self,
        run: Running,
        call: ToolCall,
        tool: BoundTool | None,
        result: ToolResult,
        answer: Answer,
    ) -> None:
        references = renumbered(result.references, len(answer.references))
        answer.references.extend(references)
        if tool is not None and not tool.show_assistant_message:
            answer.visible = False
        message = await self.store.tool_message(run.turn, call, tool, result, references)
        await self.broker.publish(
            run.key,
            events.TOOL_RESULT,
            {
                "tool_call_id": call.id,
                "is_error": result.is_error,
                "content": result.content,
                "message": message,
            },
        )
        if references:
            await self.broker.publish(run.key, events.REFERENCES, {"references": references})


async def until(work: asyncio.Future[Any], cancelled: asyncio.Event) -> bool:
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


def renumbered(references: list[dict[str, Any]], before: int) -> list[dict[str, Any]]:
    return [
        {**reference, "reference_num": before + number, "showed_num": before + number}
        for number, reference in enumerate(references, start=1)
    ]
