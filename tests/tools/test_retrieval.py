"""Retrieval tools at run time, on PostgreSQL and SQLite: the built-in backend (BM25 over the
workspace's FAQ and lessons), metadata filters (offered in the tool's schema, validated, applied),
and an HTTP backend that is a real server on loopback (results, errors, timeouts, secret
headers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from chatsvc.assistants import service as assistant_service
from chatsvc.assistants.schemas import AssistantIn
from chatsvc.auth.service import create_workspace
from chatsvc.config import RetrievalBackend, Settings
from chatsvc.kit.errors import Invalid, UpstreamError, UpstreamTimeout
from chatsvc.kit.outbound import OutboundBlocked
from chatsvc.knowledge.models import CommonQuestion, Lesson
from chatsvc.tools import service as tool_service
from chatsvc.tools.models import Tool, ToolKind
from chatsvc.tools.retrieval import run_retrieval, tool_schema
from chatsvc.tools.runtime import ToolRuntime
from chatsvc.tools.schemas import ParameterIn
from tests.fakes.retrieval_server import RetrievalServer, running_retrieval_server
from tests.fixtures.app import make_settings
from tests.fixtures.db import sessionmaker_on

KNOWLEDGE = 1
HTTP = 2
SECRET_VALUE = "s3cr3t-token-value-0123456789"


def settings_for(server: RetrievalServer | None = None, **overrides: Any) -> Settings:
    backends: dict[int, RetrievalBackend] = {
        KNOWLEDGE: RetrievalBackend(kind="knowledge", name="Knowledge", top_k=3)
    }
    values: dict[str, Any] = {}
    if server is not None:
        backends[HTTP] = RetrievalBackend(
            kind="http",
            name="Docs",
            url=server.url,
            headers={"X-Index": "docs"},
            top_k=2,
        )
        # The guard admits this loopback server only: http, its port, its address.
        values = {
            "outbound_allowed_schemes": ["http"],
            "outbound_allowed_ports": [server.port],
            "outbound_allow_list": ["127.0.0.1/32"],
            "outbound_timeout_seconds": 1.0,
        }
    values["retrieval_backends"] = backends
    values.update(overrides)
    return make_settings("sqlite+aiosqlite://", **values)


@pytest.fixture
async def server() -> AsyncIterator[RetrievalServer]:
    async with running_retrieval_server() as fake:
        yield fake


@pytest.fixture
async def runtime(session: AsyncSession, server: RetrievalServer) -> AsyncIterator[ToolRuntime]:
    built = ToolRuntime.build(settings_for(server), sessionmaker_on(session_connection(session)))
    yield built
    await built.close()


def session_connection(session: AsyncSession) -> AsyncConnection:
    bind = session.bind
    assert isinstance(bind, AsyncConnection)
    return bind


@pytest.fixture
async def workspace_id(session: AsyncSession) -> int:
    return (await create_workspace(session, "ws")).id


async def new_assistant(session: AsyncSession, workspace_id: int, settings: Settings) -> int:
    data = AssistantIn(description="Help desk")
    return (await assistant_service.create_assistant(session, workspace_id, data, settings)).id


async def add_faq(
    session: AsyncSession, assistant_id: int, name: str, content: str, **metadata: list[str]
) -> CommonQuestion:
    item = CommonQuestion(
        assistant_id=assistant_id, name=name, content=content, additional_metadata=metadata
    )
    session.add(item)
    await session.flush()
    return item


async def add_lesson(
    session: AsyncSession, assistant_id: int, name: str, content: str, **metadata: list[str]
) -> Lesson:
    item = Lesson(
        assistant_id=assistant_id, name=name, content=content, additional_metadata=metadata
    )
    session.add(item)
    await session.flush()
    return item


async def new_tool(
    session: AsyncSession,
    runtime: ToolRuntime,
    workspace_id: int,
    *,
    retrieval_id: int = KNOWLEDGE,
    answer: bool = False,
    parameters: list[dict[str, Any]] | None = None,
) -> Tool:
    return await tool_service.create_tool(
        session,
        runtime,
        workspace_id,
        ToolKind.RETRIEVAL,
        {"name": "Search", "retrieval_id": retrieval_id, "answer": answer},
        [
            ParameterIn.model_validate(p)
            for p in ([{"name": "query"}] if parameters is None else parameters)
        ],
    )


async def define(
    session: AsyncSession,
    runtime: ToolRuntime,
    workspace_id: int,
    name: str,
    kind: str,
    possible_values: list[str] | None = None,
    format: str = "",
    metadata_config_id: int = KNOWLEDGE,
) -> None:
    await tool_service.update_filter(
        session,
        runtime.settings,
        workspace_id,
        metadata_config_id=metadata_config_id,
        name=name,
        type=kind,
        possible_values=possible_values or [],
        format=format,
    )


# --- the built-in backend ----------------------------------------------------------------------


async def test_knowledge_backend_searches_the_workspaces_faq_and_lessons(
    session: AsyncSession, runtime: ToolRuntime, workspace_id: int, settings: Settings
) -> None:
    first = await new_assistant(session, workspace_id, settings)
    second = await new_assistant(session, workspace_id, settings)
    faq = await add_faq(
        session, first, "How do I reset my password?", "Use the link on the sign-in page."
    )
    lesson = await add_lesson(
        session, second, "Password rules", "Passwords need 12 characters; reset them yearly."
    )
    await add_faq(session, first, "Opening hours", "We open at nine.")
    # Neither a deleted assistant's knowledge nor another workspace's is searched.
    gone = await new_assistant(session, workspace_id, settings)
    await add_faq(session, gone, "Reset password (old)", "Call the reset password hotline.")
    await assistant_service.delete_assistant(session, workspace_id, gone)
    other = (await create_workspace(session, "other")).id
    await add_faq(
        session,
        await new_assistant(session, other, settings),
        "Password reset",
        "Other tenant's reset password secret.",
    )
    tool = await new_tool(session, runtime, workspace_id)

    outcome = await run_retrieval(
        runtime, session, workspace_id, tool, {"query": "how to reset my password"}
    )

    assert outcome.content == (
        "[1] How do I reset my password?\nUse the link on the sign-in page.\n\n"
        "[2] Password rules\nPasswords need 12 characters; reset them yearly."
    )
    assert [
        {k: r[k] for k in ("reference_num", "source", "showed_num", "tool_id", "kind")}
        for r in outcome.references
    ] == [
        {
            "reference_num": 1,
            "source": f"faq:{faq.id} How do I reset my password?",
            "showed_num": 1,
            "tool_id": tool.id,
            "kind": "faq",
        },
        {
            "reference_num": 2,
            "source": f"lesson:{lesson.id} Password rules",
            "showed_num": 2,
            "tool_id": tool.id,
            "kind": "lesson",
        },
    ]
    scores = [r["score"] for r in outcome.references]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0


async def test_top_k_of_the_backend_bounds_the_hits(
    session: AsyncSession, runtime: ToolRuntime, workspace_id: int, settings: Settings
) -> None:
    assistant = await new_assistant(session, workspace_id, settings)
    for n in range(6):
        await add_faq(session, assistant, f"Invoice question {n}", f"Invoices answer {n}.")
    tool = await new_tool(session, runtime, workspace_id)
    outcome = await run_retrieval(runtime, session, workspace_id, tool, {"query": "invoice"})
    assert len(outcome.references) == 3  # the backend's top_k
    assert outcome.content.count("\n\n") == 2


async def test_without_a_query_argument_the_text_arguments_are_the_query(
    session: AsyncSession, runtime: ToolRuntime, workspace_id: int, settings: Settings
) -> None:
    assistant = await new_assistant(session, workspace_id, settings)
    await add_faq(session, assistant, "Shipping to Spain", "Five days.")
    tool = await new_tool(
        session,
        runtime,
        workspace_id,
        parameters=[{"name": "topic"}, {"name": "country"}, {"name": "limit", "type": "integer"}],
    )
    outcome = await run_retrieval(
        runtime, session, workspace_id, tool, {"topic": "shipping", "country": "Spain", "limit": 3}
    )
    assert outcome.content == "[1] Shipping to Spain\nFive days."

    with pytest.raises(Invalid, match="Nothing to search for"):
        await run_retrieval(runtime, session, workspace_id, tool, {"limit": 3, "topic": "  "})


async def test_no_match_is_said_plainly(
    session: AsyncSession, runtime: ToolRuntime, workspace_id: int, settings: Settings
) -> None:
    await add_faq(session, await new_assistant(session, workspace_id, settings), "Refunds", "Yes.")
    tool = await new_tool(session, runtime, workspace_id)
    outcome = await run_retrieval(runtime, session, workspace_id, tool, {"query": "volcanoes"})
    assert (outcome.content, outcome.references) == ("No results found.", [])


async def test_changed_knowledge_is_searched_at_once(
    session: AsyncSession, runtime: ToolRuntime, workspace_id: int, settings: Settings
) -> None:
    assistant = await new_assistant(session, workspace_id, settings)
    await add_faq(session, assistant, "Parking", "Level -2.")
    tool = await new_tool(session, runtime, workspace_id)
    arguments = {"query": "parking garage"}
    assert (await run_retrieval(runtime, session, workspace_id, tool, arguments)).content == (
        "[1] Parking\nLevel -2."
    )

    added = await add_faq(session, assistant, "Garage", "Behind the building.")
    outcome = await run_retrieval(runtime, session, workspace_id, tool, arguments)
    assert "Behind the building." in outcome.content

    added.content = "Closed for works."  # updated_at moves with it
    await session.flush()
    outcome = await run_retrieval(runtime, session, workspace_id, tool, arguments)
    assert "Closed for works." in outcome.content and "Behind" not in outcome.content

    await assistant_service.delete_assistant(session, workspace_id, assistant)
    outcome = await run_retrieval(runtime, session, workspace_id, tool, arguments)
    assert outcome.references == []


async def test_the_answer_flag_is_kept_and_the_content_reads_as_an_answer(
    session: AsyncSession, runtime: ToolRuntime, workspace_id: int, settings: Settings
) -> None:
    await add_faq(
        session,
        await new_assistant(session, workspace_id, settings),
        "Office address",
        "Calle Mayor 1, Madrid.",
    )
    tool = await new_tool(session, runtime, workspace_id, answer=True)
    session.expunge_all()
    stored = await tool_service.get_tool(session, workspace_id, ToolKind.RETRIEVAL, tool.id)
    assert stored.config == {"retrieval_id": KNOWLEDGE, "answer": True}
    outcome = await run_retrieval(runtime, session, workspace_id, stored, {"query": "address"})
    assert outcome.content == "[1] Office address\nCalle Mayor 1, Madrid."


async def test_a_backend_no_longer_configured_is_a_clear_error(
    session: AsyncSession, runtime: ToolRuntime, workspace_id: int
) -> None:
    tool = await new_tool(session, runtime, workspace_id)
    tool.config = {"retrieval_id": 42, "answer": False}
    with pytest.raises(Invalid, match=r"retrieval_id 42 .*configured: 1, 2"):
        await run_retrieval(runtime, session, workspace_id, tool, {"query": "x"})


# --- metadata filters ------------------------------------------------------------------------


async def test_filters_are_offered_in_the_tool_schema(
    session: AsyncSession, runtime: ToolRuntime, workspace_id: int
) -> None:
    await define(session, runtime, workspace_id, "year", "integer", ["2024", "2025"])
    await define(session, runtime, workspace_id, "lang", "enum", ["en", "es"])
    await define(session, runtime, workspace_id, "published", "date", format="DD/MM/YYYY")
    await define(session, runtime, workspace_id, "day", "date")
    await define(session, runtime, workspace_id, "draft", "boolean")
    await define(session, runtime, workspace_id, "score", "number", ["0.5", "1"])
    await define(session, runtime, workspace_id, "topic", "string")  # the tool's own wins
    await define(session, runtime, workspace_id, "elsewhere", "string", metadata_config_id=HTTP)
    other = (await create_workspace(session, "other")).id
    await define(session, runtime, other, "team", "string")
    tool = await new_tool(
        session,
        runtime,
        workspace_id,
        parameters=[{"name": "query", "description": "Search text"}, {"name": "topic"}],
    )

    schema = await tool_schema(session, workspace_id, tool)

    assert schema["type"] == "object"
    assert schema["required"] == ["query", "topic"]  # filters are optional
    properties = schema["properties"]
    assert list(properties) == [
        "query",
        "topic",
        "day",
        "draft",
        "lang",
        "published",
        "score",
        "year",
    ]
    assert properties["query"] == {"type": "string", "description": "Search text"}
    assert properties["topic"] == {"type": "string"}
    assert properties["year"]["type"] == "integer" and properties["year"]["enum"] == [2024, 2025]
    assert properties["lang"]["type"] == "string" and properties["lang"]["enum"] == ["en", "es"]
    assert properties["score"]["enum"] == [0.5, 1.0]
    assert properties["draft"]["type"] == "boolean" and "enum" not in properties["draft"]
    assert properties["day"]["format"] == "date"
    assert properties["published"]["type"] == "string" and "format" not in properties["published"]
    assert "DD/MM/YYYY, e.g. 25/11/2026" in properties["published"]["description"]
    assert all("Optional filter" in properties[n]["description"] for n in ("year", "lang"))


async def test_a_retrieval_tool_without_parameters_takes_a_query(
    session: AsyncSession, runtime: ToolRuntime, workspace_id: int
) -> None:
    tool = await new_tool(session, runtime, workspace_id, parameters=[])
    schema = await tool_schema(session, workspace_id, tool)
    assert schema["properties"] == {
        "query": {"type": "string", "description": "What to search for."}
    }
    assert schema["required"] == ["query"]


async def test_a_script_tool_schema_is_its_parameters(
    session: AsyncSession, workspace_id: int, runtime: ToolRuntime
) -> None:
    await define(session, runtime, workspace_id, "year", "integer")
    tool = Tool(workspace_id=workspace_id, kind=ToolKind.SCRIPT.value, name="s", config={})
    tool.parameters = []
    session.add(tool)
    await session.flush()
    assert await tool_schema(session, workspace_id, tool) == {
        "type": "object",
        "properties": {},
        "required": [],
    }


async def test_filters_narrow_the_builtin_search(
    session: AsyncSession, runtime: ToolRuntime, workspace_id: int, settings: Settings
) -> None:
    assistant = await new_assistant(session, workspace_id, settings)
    await add_faq(session, assistant, "Tax rules 2024", "Old rules.", year=["2024"], lang=["es"])
    await add_faq(session, assistant, "Tax rules 2025", "New rules.", year=["2025"], lang=["en"])
    await add_lesson(
        session, assistant, "Tax lesson", "Check the year.", year=["2025", "2026"], day=["x"]
    )
    await add_faq(session, assistant, "Tax rules, dated", "Dated.", day=["25/11/2026"])
    await define(session, runtime, workspace_id, "year", "integer")
    await define(session, runtime, workspace_id, "lang", "enum", ["en", "es"])
    await define(session, runtime, workspace_id, "day", "date", format="%d/%m/%Y")
    tool = await new_tool(session, runtime, workspace_id)

    async def titles(**filters: Any) -> list[str]:
        arguments = {"query": "tax rules", **filters}
        outcome = await run_retrieval(runtime, session, workspace_id, tool, arguments)
        return [r["source"].split(" ", 1)[1] for r in outcome.references]

    assert len(await titles()) == 3  # top_k
    assert await titles(year=2025) == ["Tax rules 2025", "Tax lesson"]
    assert await titles(year="2026") == ["Tax lesson"]
    assert await titles(year=2025, lang="EN") == ["Tax rules 2025"]  # enum ignores case
    assert await titles(lang="es") == ["Tax rules 2024"]
    assert await titles(day="25/11/2026") == ["Tax rules, dated"]
    assert await titles(day="2026-11-25") == ["Tax rules, dated"]  # ISO is always understood
    assert await titles(year=1999) == []
    assert len(await titles(year=None)) == 3  # null: the filter is not applied


async def test_filters_find_matches_ranked_far_down(
    session: AsyncSession, runtime: ToolRuntime, workspace_id: int, settings: Settings
) -> None:
    assistant = await new_assistant(session, workspace_id, settings)
    for n in range(60):
        await add_faq(session, assistant, f"Tax rules {n}", "Tax rules.", year=["2024"])
    padding = " ".join(f"word{n}" for n in range(200))
    last = await add_faq(session, assistant, "Other", f"tax {padding}", year=["2025"])
    await define(session, runtime, workspace_id, "year", "integer")
    tool = await new_tool(session, runtime, workspace_id)
    unfiltered = await run_retrieval(runtime, session, workspace_id, tool, {"query": "tax rules"})
    assert all("Tax rules" in r["source"] for r in unfiltered.references)
    outcome = await run_retrieval(
        runtime, session, workspace_id, tool, {"query": "tax rules", "year": 2025}
    )
    assert [r["source"] for r in outcome.references] == [f"faq:{last.id} Other"]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"year": "soon"}, "Filter 'year' must be an integer (got 'soon')"),
        ({"year": True}, "Filter 'year' must be an integer"),
        ({"lang": "fr"}, "Filter 'lang' must be one of: en, es"),
        ({"day": "tomorrow"}, "Filter 'day' must be a date written as %d/%m/%Y, e.g. 25/11/2026"),
        ({"draft": "perhaps"}, "Filter 'draft' must be true or false"),
        ({"score": "high"}, "Filter 'score' must be a number"),
    ],
)
async def test_filter_values_are_checked_against_the_definition(
    session: AsyncSession,
    runtime: ToolRuntime,
    workspace_id: int,
    filters: dict[str, Any],
    message: str,
) -> None:
    await define(session, runtime, workspace_id, "year", "integer")
    await define(session, runtime, workspace_id, "lang", "enum", ["en", "es"])
    await define(session, runtime, workspace_id, "day", "date", format="%d/%m/%Y")
    await define(session, runtime, workspace_id, "draft", "boolean")
    await define(session, runtime, workspace_id, "score", "number")
    tool = await new_tool(session, runtime, workspace_id)
    with pytest.raises(Invalid) as raised:
        await run_retrieval(runtime, session, workspace_id, tool, {"query": "x", **filters})
    assert str(raised.value).startswith(message)


# --- an HTTP backend ---------------------------------------------------------------------------


async def test_http_backend_gets_query_filters_and_top_k_and_its_results_become_references(
    session: AsyncSession, runtime: ToolRuntime, workspace_id: int, server: RetrievalServer
) -> None:
    server.configure(
        results=[
            {"title": "Refund policy", "content": "30 days.", "score": 0.91, "url": "https://d/1"},
            {"title": "Returns", "content": "Use the form."},
            {"title": "Cut by top_k", "content": "Never shown."},
        ]
    )
    await define(session, runtime, workspace_id, "year", "integer", metadata_config_id=HTTP)
    await define(
        session, runtime, workspace_id, "day", "date", format="DD/MM/YYYY", metadata_config_id=HTTP
    )
    await define(session, runtime, workspace_id, "draft", "boolean", metadata_config_id=HTTP)
    tool = await new_tool(session, runtime, workspace_id, retrieval_id=HTTP)

    outcome = await run_retrieval(
        runtime,
        session,
        workspace_id,
        tool,
        {"query": "refunds", "year": "2025", "day": "2026-11-25", "draft": False},
    )

    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/search")
    assert request.body == {
        "query": "refunds",
        "filters": {"year": 2025, "day": "25/11/2026", "draft": False},
        "top_k": 2,
    }
    assert request.headers["x-index"] == "docs"
    assert request.headers["content-type"] == "application/json"
    assert outcome.content == (
        "[1] Refund policy\n30 days.\nSource: https://d/1\n\n[2] Returns\nUse the form."
    )
    assert outcome.references == [
        {
            "reference_num": 1,
            "source": "Refund policy",
            "showed_num": 1,
            "tool_id": tool.id,
            "kind": "http",
            "score": 0.91,
            "url": "https://d/1",
        },
        {
            "reference_num": 2,
            "source": "Returns",
            "showed_num": 2,
            "tool_id": tool.id,
            "kind": "http",
            "score": None,
        },
    ]


async def test_http_backend_with_no_results(
    session: AsyncSession, runtime: ToolRuntime, workspace_id: int, server: RetrievalServer
) -> None:
    tool = await new_tool(session, runtime, workspace_id, retrieval_id=HTTP)
    outcome = await run_retrieval(runtime, session, workspace_id, tool, {"query": "x"})
    assert (outcome.content, outcome.references) == ("No results found.", [])
    assert server.requests[0].body["filters"] == {}


@pytest.mark.parametrize(
    ("behaviour", "error", "message"),
    [
        ({"status": 500}, UpstreamError, "answered HTTP 500"),
        ({"status": 404}, UpstreamError, "answered HTTP 404"),
        ({"raw_body": b"<html>oops</html>"}, UpstreamError, "a body that is not JSON"),
        ({"raw_body": b'{"hits": []}'}, UpstreamError, "results must be a list"),
        (
            {"results": [{"title": "t", "content": 5}]},
            UpstreamError,
            "results[0].content must be a string",
        ),
        ({"results": [{"title": "t", "content": "c", "score": "hi"}]}, UpstreamError, "score"),
        ({"results": ["x"]}, UpstreamError, "results[0] must be an object"),
        ({"drop": True}, UpstreamError, "could not be reached"),
        ({"delay": 3.0}, UpstreamTimeout, "did not answer within 1 s"),
    ],
)
async def test_http_backend_failures_are_upstream_errors_that_hide_the_url_path(
    session: AsyncSession,
    runtime: ToolRuntime,
    workspace_id: int,
    server: RetrievalServer,
    behaviour: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    server.configure(**behaviour)
    tool = await new_tool(session, runtime, workspace_id, retrieval_id=HTTP)
    with pytest.raises(error) as raised:
        await run_retrieval(runtime, session, workspace_id, tool, {"query": "x"})
    text = str(raised.value)
    assert message in text
    assert text.startswith(f"Retrieval backend 2 (Docs) at http://127.0.0.1:{server.port}")
    assert "search" not in text and "index=docs" not in text


async def test_http_backend_the_guard_refuses_is_blocked(
    session: AsyncSession, workspace_id: int, server: RetrievalServer
) -> None:
    # Default outbound policy: public https only; the loopback server is refused before a call.
    settings = settings_for(server)
    strict = settings.model_copy(
        update={
            "outbound_allowed_schemes": ["https"],
            "outbound_allowed_ports": None,
            "outbound_allow_list": [],
        }
    )
    runtime = ToolRuntime.build(strict, sessionmaker_on(session_connection(session)))
    try:
        tool = await new_tool(session, runtime, workspace_id, retrieval_id=HTTP)
        with pytest.raises(OutboundBlocked, match="scheme 'http' is not allowed"):
            await run_retrieval(runtime, session, workspace_id, tool, {"query": "x"})
    finally:
        await runtime.close()
    assert server.requests == []


# --- secret headers (PostgreSQL: the secret store commits in units of work of its own) -------


@pytest.fixture
async def pg_runtime(
    pg_connection: AsyncConnection, server: RetrievalServer
) -> AsyncIterator[tuple[ToolRuntime, AsyncSession, int]]:
    settings = settings_for(
        server,
        retrieval_backends={
            HTTP: RetrievalBackend(
                kind="http",
                name="Docs",
                url=server.url,
                headers={"Authorization": "Bearer {{secret:SEARCH-TOKEN}}", "X-Index": "docs"},
            )
        },
    )
    sessionmaker = sessionmaker_on(pg_connection)
    built = ToolRuntime.build(settings, sessionmaker)
    async with sessionmaker() as session:
        workspace_id = (await create_workspace(session, "secrets")).id
        await session.commit()
        yield built, session, workspace_id
    await built.close()


async def test_header_secrets_are_resolved_and_never_shown(
    pg_runtime: tuple[ToolRuntime, AsyncSession, int], server: RetrievalServer
) -> None:
    runtime, session, workspace_id = pg_runtime
    tool = await new_tool(session, runtime, workspace_id, retrieval_id=HTTP)

    with pytest.raises(Invalid, match="SEARCH-TOKEN") as raised:
        await run_retrieval(runtime, session, workspace_id, tool, {"query": "x"})
    assert "header Authorization references a secret" in str(raised.value)
    assert server.requests == []

    await runtime.secrets.create(workspace_id, "SEARCH-TOKEN", SECRET_VALUE)
    server.configure(results=[{"title": "T", "content": "C"}])
    outcome = await run_retrieval(runtime, session, workspace_id, tool, {"query": "x"})
    assert outcome.content == "[1] T\nC"
    assert server.requests[-1].headers["authorization"] == f"Bearer {SECRET_VALUE}"

    server.configure(status=500)
    with pytest.raises(UpstreamError) as failed:
        await run_retrieval(runtime, session, workspace_id, tool, {"query": "x"})
    assert SECRET_VALUE not in str(failed.value)


async def test_a_header_secret_goes_only_to_its_allowed_origins(
    pg_runtime: tuple[ToolRuntime, AsyncSession, int], server: RetrievalServer
) -> None:
    runtime, session, workspace_id = pg_runtime
    tool = await new_tool(session, runtime, workspace_id, retrieval_id=HTTP)
    await runtime.secrets.create(
        workspace_id, "SEARCH-TOKEN", SECRET_VALUE, ("https://search.example.com",)
    )
    server.configure(results=[{"title": "T", "content": "C"}])
    with pytest.raises(Invalid) as refused:
        await run_retrieval(runtime, session, workspace_id, tool, {"query": "x"})
    assert refused.value.code == "secret_origin_not_allowed"
    assert "may not be sent to http://127.0.0.1:" in refused.value.message
    assert SECRET_VALUE not in refused.value.message
    assert server.requests == []  # never sent
    origin = server.url.split("/", 3)
    await runtime.secrets.update(
        workspace_id, "SEARCH-TOKEN", SECRET_VALUE, (f"{origin[0]}//{origin[2]}",)
    )
    outcome = await run_retrieval(runtime, session, workspace_id, tool, {"query": "x"})
    assert outcome.content == "[1] T\nC"
    assert server.requests[-1].headers["authorization"] == f"Bearer {SECRET_VALUE}"
