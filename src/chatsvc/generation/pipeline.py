"""The generation pipeline's decisions, for every face and mode: moderation outcome, fixed response,
prompt assembly (system prompt, lessons, retrieved FAQ, trimmed history, add_to_user_message) and
not_info_message. Pure: it takes loaded rows and returns a plan; the runner does the I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chatsvc.assistants.models import Assistant
from chatsvc.chats.repository import WindowMessage
from chatsvc.generation import retrieval
from chatsvc.generation.types import GenerationRequest, KnowledgeHit, PromptMessage
from chatsvc.knowledge.models import CommonQuestion, FixedResponse, Lesson

DEFAULT_LAST_N = 10
DEFAULT_TOKEN_BUDGET = 2000
FAQ_IN_PROMPT = 3
BLOCKED = "blocked"
BLOCK_ANSWER = "I can't answer this message: it was blocked by this workspace's moderation policy."


@dataclass(frozen=True, slots=True)
class Knowledge:
    """What an assistant knows, ready for a turn: its FAQ as a built BM25 index."""

    faq_index: retrieval.Bm25Index = retrieval.EMPTY_INDEX
    fixed: Sequence[FixedResponse] = ()
    lessons: Sequence[Lesson] = ()

    @classmethod
    def of(
        cls,
        faqs: Sequence[CommonQuestion] = (),
        fixed: Sequence[FixedResponse] = (),
        lessons: Sequence[Lesson] = (),
    ) -> Knowledge:
        return cls(faq_index(faqs), fixed, lessons)


def faq_index(faqs: Sequence[CommonQuestion]) -> retrieval.Bm25Index:
    return retrieval.Bm25Index([retrieval.Document(q.id, q.name, q.content) for q in faqs])


@dataclass(frozen=True, slots=True)
class VerbatimAnswer:
    """An answer given without the model: a fixed response or the not_info_message."""

    content: str
    fixed: str | None = None  # the fixed response's name
    reason: str = "fixed"  # "fixed" | "not_info" | "blocked"


@dataclass(frozen=True, slots=True)
class ModelCall:
    request: GenerationRequest
    generator: str
    references: list[dict[str, Any]] = field(default_factory=list)

    def prompt_record(self) -> dict[str, Any]:
        """What operators see of the prompt actually sent."""
        return {
            "generator": self.generator,
            "temperature": self.request.temperature,
            "messages": [m.as_dict() for m in self.request.messages],
        }


Plan = VerbatimAnswer | ModelCall


def for_model(message: WindowMessage) -> str:
    """What the generator is sent of a stored message: the text as typed, or the redacted text
    when the workspace's moderation policy redacted some of it."""
    return message.redacted_content if message.redacted_content is not None else message.content


def _blocked(message: WindowMessage) -> bool:
    return message.action_taken == BLOCKED


def plan_answer(
    assistant: Assistant,
    history: Sequence[WindowMessage],
    user_message: WindowMessage | str,
    knowledge: Knowledge,
) -> Plan:
    """Decide how to answer `user_message` (the last user message; `history` is what came before,
    visible messages only, oldest first). Moderation ran when the message was stored: a blocked
    message is answered with the block message, without the model; a redacted one is seen by
    the model (and by retrieval) as redacted, here and later in the history."""
    if not isinstance(user_message, str):
        if _blocked(user_message):
            verdict = user_message.moderation or {}
            return VerbatimAnswer(
                content=str(verdict.get("block_message") or BLOCK_ANSWER), reason="blocked"
            )
        text = for_model(user_message)
    else:
        text = user_message

    if assistant.fixed_available and knowledge.fixed:
        candidates = [
            (retrieval.Document(f.id, f.name, f.content), f.topic) for f in knowledge.fixed
        ]
        match = retrieval.fixed_match(text, candidates)
        if match is not None:
            return VerbatimAnswer(content=match.content, fixed=match.name)

    hits: list[KnowledgeHit] = []
    if assistant.faq_available and len(knowledge.faq_index):
        for scored in knowledge.faq_index.search(text, limit=FAQ_IN_PROMPT):
            hits.append(
                KnowledgeHit("faq", scored.document.item_id, scored.document.name,
                             scored.document.content, scored.score)
            )  # fmt: skip
    lessons = (
        [
            lesson
            for lesson in knowledge.lessons
            if retrieval.lesson_applies(lesson.context_of_application, text)
        ]
        if assistant.lessons_available
        else []
    )

    # Knowledge is required when the assistant has a not_info_message and FAQ to answer from:
    # then a question that matches no FAQ item and no specific lesson gets that message verbatim.
    specific_lessons = [
        lesson
        for lesson in lessons
        if not retrieval.lesson_is_general(lesson.context_of_application)
    ]
    if (
        assistant.not_info_message
        and assistant.faq_available
        and len(knowledge.faq_index)
        and not hits
        and not specific_lessons
    ):
        return VerbatimAnswer(content=assistant.not_info_message, reason="not_info")

    system = _system_prompt(assistant, lessons, hits)
    messages = [PromptMessage("system", system)] if system else []
    # A blocked message and the answer that refused it never reach the model.
    refused = {m.msg_num for m in history if _blocked(m)}
    messages += trim_history(
        [
            PromptMessage(m.role, for_model(m))
            for m in history
            if m.role in ("user", "assistant")
            and m.msg_num not in refused
            and m.usr_msg_num not in refused
        ],
        assistant.strategy_to_optimize_tokens,
    )
    to_model = text
    if assistant.add_to_user_message:
        to_model = f"{text}\n\n{assistant.add_to_user_message}"
    messages.append(PromptMessage("user", to_model))

    lesson_hits = [
        KnowledgeHit("lesson", lesson.id, lesson.name, lesson.content, 0.0)
        for lesson in specific_lessons
    ]
    references = [
        {"reference_num": number, "source": f"faq:{hit.item_id} {hit.name}", "showed_num": number}
        for number, hit in enumerate(hits, start=1)
    ]
    return ModelCall(
        request=GenerationRequest(
            messages=messages,
            temperature=assistant.temperature,
            user_message=text,
            hits=hits + lesson_hits,
            not_info_message=assistant.not_info_message,
        ),
        generator=assistant.generation_config,
        references=references,
    )


def _system_prompt(
    assistant: Assistant, lessons: Sequence[Lesson], hits: Sequence[KnowledgeHit]
) -> str:
    parts = [assistant.system_prompt.strip()] if assistant.system_prompt.strip() else []
    if lessons:
        parts.append("Guidance:\n" + "\n".join(f"- {lesson.content}" for lesson in lessons))
    if hits:
        parts.append(
            "Relevant knowledge (cite as [n]):\n"
            + "\n".join(
                f"[{n}] Q: {hit.name}\nA: {hit.content}" for n, hit in enumerate(hits, start=1)
            )
        )
    return "\n\n".join(parts)


def trim_history(history: list[PromptMessage], strategy: str) -> list[PromptMessage]:
    """`none`: everything; `last_n[:N]`: the last N messages (10); `token_budget[:N]`: the newest
    messages whose estimated tokens (characters / 4) fit in N (2000)."""
    name, _, raw = strategy.partition(":")
    if name == "last_n":
        count = int(raw) if raw else DEFAULT_LAST_N
        return history[-count:] if count else []
    if name == "token_budget":
        budget = int(raw) if raw else DEFAULT_TOKEN_BUDGET
        kept: list[PromptMessage] = []
        for message in reversed(history):
            cost = max(1, len(message.content) // 4)
            if cost > budget:
                break
            budget -= cost
            kept.append(message)
        kept.reverse()
        return kept
    return history
