"""The pipeline's decisions, without I/O: retrieval ranking, fixed matches, lessons, history
trimming, not_info_message and prompt assembly."""

from __future__ import annotations

from typing import Any

import pytest

from chatsvc.assistants.models import Assistant
from chatsvc.chats.repository import WindowMessage
from chatsvc.generation import retrieval
from chatsvc.generation.pipeline import (
    Knowledge,
    ModelCall,
    VerbatimAnswer,
    plan_answer,
    trim_history,
)
from chatsvc.generation.types import PromptMessage
from chatsvc.knowledge.models import CommonQuestion, FixedResponse, Lesson


def assistant(**fields: Any) -> Assistant:
    values: dict[str, Any] = {
        "id": 1,
        "description": "d",
        "system_prompt": "",
        "generation_config": "offline",
        "temperature": 0.5,
        "max_responses": 10,
        "max_msg_length": 100,
        "max_consecutive_tool_calls": 3,
        "strategy_to_optimize_tokens": "none",
        "faq_available": True,
        "fixed_available": True,
        "lessons_available": True,
        "not_info_message": None,
        "add_to_user_message": None,
    }
    values.update(fields)
    return Assistant(**values)


FAQS = [
    CommonQuestion(id=1, name="How do I reset my password?", content="Use the reset link."),
    CommonQuestion(id=2, name="What are your prices?", content="Plans start at 10 euros."),
    CommonQuestion(id=3, name="Do you ship abroad?", content="We ship to the EU."),
]


def test_bm25_ranks_the_matching_question_first() -> None:
    documents = [retrieval.Document(q.id, q.name, q.content) for q in FAQS]
    ranked = retrieval.bm25("I forgot my password, how to reset it?", documents)
    assert ranked[0].document.item_id == 1
    assert all(s.score > 0 for s in ranked)
    assert retrieval.bm25("completely unrelated words", documents) == []
    assert retrieval.bm25("the and of", documents) == []  # stopwords only


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("When are you open?", True),
        ("when are you OPEN", True),
        ("Cuándo abren", True),  # matches the topic, accents ignored
        ("are you open when", True),  # same words, other order
        ("when is the shop closed", False),
        ("", False),
    ],
)
def test_fixed_match(message: str, expected: bool) -> None:
    fixed = [(retrieval.Document(1, "When are you open?", "9 to 5"), "cuando abren")]
    assert (retrieval.fixed_match(message, fixed) is not None) is expected


def test_lessons_apply_by_context() -> None:
    assert retrieval.lesson_applies("", "anything")
    assert retrieval.lesson_applies("always", "anything")
    assert retrieval.lesson_applies("refund requests", "I want a refund please")
    assert not retrieval.lesson_applies("refund requests", "what are your prices")


def test_trim_history_strategies() -> None:
    history = [PromptMessage("user" if i % 2 == 0 else "assistant", "x" * 40) for i in range(6)]
    assert trim_history(history, "none") == history
    assert trim_history(history, "last_n:2") == history[-2:]
    assert trim_history(history, "last_n") == history  # default 10 keeps all 6
    assert trim_history(history, "token_budget:25") == history[-2:]  # 10 tokens each
    assert trim_history(history, "token_budget:5") == []


def test_fixed_response_wins_over_the_model() -> None:
    plan = plan_answer(
        assistant(),
        [],
        "when are you open",
        Knowledge.of(
            fixed=[FixedResponse(id=4, name="When are you open?", topic="", content="9-5")]
        ),
    )
    assert plan == VerbatimAnswer(content="9-5", fixed="When are you open?")
    disabled = plan_answer(
        assistant(fixed_available=False),
        [],
        "when are you open",
        Knowledge.of(
            fixed=[FixedResponse(id=4, name="When are you open?", topic="", content="9-5")]
        ),
    )
    assert isinstance(disabled, ModelCall)


def test_not_info_only_when_knowledge_is_required_and_missing() -> None:
    strict = assistant(not_info_message="I only know the FAQ.")
    plan = plan_answer(strict, [], "tell me a joke", Knowledge.of(faqs=FAQS))
    assert plan == VerbatimAnswer(content="I only know the FAQ.", reason="not_info")
    # a matching FAQ, no FAQ at all, or no not_info_message: the model answers
    assert isinstance(plan_answer(strict, [], "reset password", Knowledge.of(faqs=FAQS)), ModelCall)
    assert isinstance(plan_answer(strict, [], "tell me a joke", Knowledge()), ModelCall)
    assert isinstance(
        plan_answer(assistant(), [], "tell me a joke", Knowledge.of(faqs=FAQS)), ModelCall
    )


def test_prompt_assembly() -> None:
    history = [
        WindowMessage(role="user", content="hi", msg_num=1),
        WindowMessage(role="assistant", content="hello", msg_num=2),
    ]
    plan = plan_answer(
        assistant(system_prompt="You are Bob.", add_to_user_message="Be short."),
        history,
        "how do I reset my password",
        Knowledge.of(
            faqs=FAQS,
            lessons=[
                Lesson(
                    id=7, name="l", content="Mention security.", context_of_application="password"
                ),
                Lesson(
                    id=8, name="m", content="Talk about shipping.", context_of_application="ship"
                ),
            ],
        ),
    )
    assert isinstance(plan, ModelCall)
    system, *middle, user = plan.request.messages
    assert system.role == "system"
    assert system.content.startswith("You are Bob.")
    assert "Mention security." in system.content
    assert "Talk about shipping." not in system.content
    assert "[1] Q: How do I reset my password?" in system.content
    assert [m.content for m in middle] == ["hi", "hello"]
    assert user == PromptMessage("user", "how do I reset my password\n\nBe short.")
    assert plan.request.user_message == "how do I reset my password"
    assert plan.request.temperature == 0.5
    assert plan.references[0]["reference_num"] == 1
    assert plan.references[0]["source"] == "faq:1 How do I reset my password?"
    assert plan.prompt_record()["messages"][0]["role"] == "system"
