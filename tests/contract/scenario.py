"""One user's path through chatsvc with the Python client generated from its OpenAPI document:
create an assistant, start a chat with a message (answered before the response returns), read
the chat, like the answer, report the chat and read the report back.

Run by tests/contract/test_sdk_contract.py as `python scenario.py BASE_URL API_KEY`, with the
generated package `chatsvc_client` on PYTHONPATH; the same check type-checks this file with
`mypy --strict` together with the package, so a change of the document that breaks what a client
writes here fails there too. (`make typecheck` sees `chatsvc_client` as missing: see the mypy
overrides in pyproject.toml.)
"""

from __future__ import annotations

import sys
from typing import TypeVar

import httpx
from chatsvc_client import AuthenticatedClient
from chatsvc_client.api.assistants import create_assistant
from chatsvc_client.api.chats import create_chat, get_chat, like_message
from chatsvc_client.api.reports import create_report, get_report
from chatsvc_client.models import (
    AssistantIn,
    AssistantOut,
    ChatOut,
    MessageLikeIn,
    MessageOut,
    OptionalUserMessageIn,
    ReportCategory,
    ReportIn,
    ReportOut,
    ReportReason,
    ReportSeverity,
    ReportStatus,
)
from chatsvc_client.types import Response

R = TypeVar("R")
T = TypeVar("T")


def expect(step: str, response: Response[R], status: int, kind: type[T]) -> T:
    """The parsed body of a response that has the status and type the document promises."""
    parsed = response.parsed
    if response.status_code != status or not isinstance(parsed, kind):
        raise SystemExit(
            f"{step}: expected {status} {kind.__name__}, got {int(response.status_code)} "
            f"{type(parsed).__name__}: {response.content.decode(errors='replace')[:500]}"
        )
    print(f"{step}: {int(response.status_code)} {kind.__name__}")
    return parsed


def run(base_url: str, api_key: str) -> None:
    with AuthenticatedClient(
        base_url=base_url,
        token=api_key,
        raise_on_unexpected_status=True,
        timeout=httpx.Timeout(30.0),
    ) as client:
        assistant = expect(
            "create assistant",
            create_assistant.sync_detailed(
                client=client,
                body=AssistantIn(
                    description="SDK contract check",
                    system_prompt="You answer questions about chatsvc.",
                ),
            ),
            201,
            AssistantOut,
        )

        created = expect(
            "create chat with a message",
            create_chat.sync_detailed(
                assistant.id,
                client=client,
                body=OptionalUserMessageIn(message="What is chatsvc?"),
            ),
            201,
            ChatOut,
        )
        assert created.assistant == assistant.id, created

        chat = expect("read chat", get_chat.sync_detailed(created.id, client=client), 200, ChatOut)
        roles = [message.role.value for message in chat.messages]
        assert "user" in roles and roles[-1] == "assistant", roles
        asked = next(m for m in chat.messages if m.role.value == "user")
        assert asked.content == "What is chatsvc?", asked
        answer = chat.messages[-1]
        assert answer.content, answer

        liked = expect(
            "like answer",
            like_message.sync_detailed(answer.id, client=client, body=MessageLikeIn(like=True)),
            200,
            MessageOut,
        )
        assert liked.id == answer.id and liked.like is True, liked

        report = expect(
            "report chat",
            create_report.sync_detailed(
                client=client,
                body=ReportIn(
                    category=ReportCategory.INCOMPLETE,
                    reason=ReportReason.NOT_IN_DOCS,
                    severity=ReportSeverity.LOW,
                    status=ReportStatus.OPEN,
                    chat=chat.id,
                    comments="The answer could say more.",
                ),
            ),
            200,
            ReportOut,
        )
        read = expect(
            "read report", get_report.sync_detailed(report.id, client=client), 200, ReportOut
        )
        assert read.chat == chat.id and read.category == ReportCategory.INCOMPLETE, read
        assert read.comments == "The answer could say more.", read
    print("scenario passed")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: scenario.py BASE_URL API_KEY")
    run(sys.argv[1], sys.argv[2])
