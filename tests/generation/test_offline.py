"""The offline generator: what it answers, in which order, and that the words join back."""

from __future__ import annotations

from chatsvc.config import GeneratorApp
from chatsvc.generation.offline import NO_KNOWLEDGE_ANSWER, OfflineGenerator
from chatsvc.generation.types import (
    Finished,
    GenerationRequest,
    GeneratorEvent,
    KnowledgeHit,
    PromptMessage,
    TextDelta,
)


def _request(
    hits: list[KnowledgeHit] | None = None, not_info_message: str | None = None
) -> GenerationRequest:
    return GenerationRequest(
        messages=[PromptMessage("user", "How do I reset my password?")],
        temperature=0.2,
        user_message="How do I reset my password?",
        hits=hits or [],
        not_info_message=not_info_message,
    )


def _hit(item_id: int, content: str, score: float) -> KnowledgeHit:
    return KnowledgeHit("faq", item_id, f"faq {item_id}", content, score)


async def _collect(generator: OfflineGenerator, request: GenerationRequest) -> list[GeneratorEvent]:
    return [event async for event in generator.stream(request)]


def _text(events: list[GeneratorEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_answers_with_the_first_hit_word_by_word() -> None:
    answer = "  Open Settings,\tthen choose\n'Reset password'.  "
    request = _request([_hit(1, answer, 0.9), _hit(2, "Call support.", 0.5)])
    events = await _collect(OfflineGenerator(GeneratorApp()), request)

    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert _text(events) == answer
    assert len(deltas) == 6  # one per word, whitespace kept inside the words' deltas
    assert events[-1] == Finished("stop")  # no usage: the loop estimates it
    assert all(isinstance(e, TextDelta) for e in events[:-1])


async def test_is_deterministic() -> None:
    generator = OfflineGenerator(GeneratorApp())
    request = _request([_hit(1, "Same words every time.", 0.7)])
    assert await _collect(generator, request) == await _collect(generator, request)


async def test_falls_back_to_the_not_info_message() -> None:
    events = await _collect(
        OfflineGenerator(GeneratorApp()), _request(not_info_message="Ask our team instead.")
    )
    assert _text(events) == "Ask our team instead."


async def test_falls_back_to_a_sentence_explaining_how_to_add_knowledge() -> None:
    events = await _collect(OfflineGenerator(GeneratorApp()), _request())
    text = _text(events)
    assert text == NO_KNOWLEDGE_ANSWER
    assert "offline generator" in text
    assert "common questions" in text
    assert "lessons" in text


async def test_token_delay_keeps_the_order_of_words() -> None:
    generator = OfflineGenerator(GeneratorApp(token_delay_seconds=0.001))
    events = await _collect(generator, _request([_hit(1, "one two three four", 1.0)]))
    assert [e.text for e in events if isinstance(e, TextDelta)] == [
        "one ",
        "two ",
        "three ",
        "four",
    ]
    assert isinstance(events[-1], Finished)


async def test_closing_early_stops_the_stream() -> None:
    stream = OfflineGenerator(GeneratorApp()).stream(_request([_hit(1, "a b c d", 1.0)]))
    assert await anext(stream) == TextDelta("a ")
    await stream.aclose()
    assert [event async for event in stream] == []
