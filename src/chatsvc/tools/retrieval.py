"""Retrieval tools at run time: the JSON Schema a model is offered (the tool's parameters plus the
metadata filters of its backend), and the search itself, in the built-in backend (BM25 over the
workspace's FAQ and lessons) or in an HTTP backend. Also the rules of filter definitions."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.config import RetrievalBackend, Settings
from chatsvc.generation.retrieval import Bm25Index, Document
from chatsvc.kit.errors import FieldError, Invalid, NotFound, UpstreamError, UpstreamTimeout
from chatsvc.kit.fingerprint_cache import FingerprintCache
from chatsvc.kit.outbound import describe_url
from chatsvc.secrets.store import resolve_references
from chatsvc.tools import repository
from chatsvc.tools.models import MetadataFilter, Tool, ToolKind
from chatsvc.tools.runtime import ToolRuntime
from chatsvc.tools.schemas import parameters_schema

FILTER_TYPES: Final = ("string", "number", "integer", "boolean", "date", "enum")
ISO_DATE: Final = "%Y-%m-%d"
#: the date every date format must round-trip (day > 12, so a swapped day and month shows)
_SAMPLE: Final = date(2026, 11, 25)
_TOKENS: Final = {"YYYY": "%Y", "YY": "%y", "MM": "%m", "DD": "%d"}
_TOKEN: Final = re.compile("|".join(_TOKENS))
_TRUE: Final = frozenset({"true", "1", "yes"})
_FALSE: Final = frozenset({"false", "0", "no"})
#: offered to the model when a retrieval tool defines no parameters of its own
QUERY_PARAMETER: Final = {"type": "string", "description": "What to search for."}


@dataclass(frozen=True)
class RetrievalOutcome:
    #: the hits as numbered text: what the model reads, or the answer itself with `answer: true`
    content: str
    #: one per hit: {reference_num, source, showed_num} as for FAQ hits, plus tool_id, kind
    #: (faq, lesson, http), score and, for HTTP hits that have one, url
    references: list[dict[str, Any]]


# -- metadata filters -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """A filter definition, detached from its row."""

    name: str
    type: str
    possible_values: tuple[str, ...] = ()
    format: str = ""

    @classmethod
    def of(cls, row: MetadataFilter) -> FilterSpec:
        return cls(row.name, row.type, tuple(row.possible_values or ()), row.format)

    @property
    def directive(self) -> str:
        """The strptime format of a date filter."""
        return strptime_format(self.format)


def strptime_format(text: str) -> str:
    """A date format as strptime reads it: strftime directives (`%d/%m/%Y`) are taken as they
    are; the pattern notation (`DD/MM/YYYY`: YYYY, YY, MM, DD) is translated; empty is ISO."""
    if not text:
        return ISO_DATE
    if "%" in text:
        return text
    return _TOKEN.sub(lambda match: _TOKENS[match.group()], text)


def check_definition(
    kind: str, possible_values: Sequence[str], text_format: str
) -> tuple[list[str], str]:
    """The possible values and format to store for a filter of type `kind`, or Invalid naming
    each wrong field. A date filter without a format gets ISO (%Y-%m-%d)."""
    errors: list[FieldError] = []
    stored_format = text_format
    if kind == "date":
        stored_format = text_format or ISO_DATE
        directive = strptime_format(stored_format)
        try:
            round_trip = datetime.strptime(_SAMPLE.strftime(directive), directive).date()
        except ValueError:
            round_trip = None
        if round_trip != _SAMPLE:
            errors.append(
                FieldError(
                    "format",
                    f"{text_format!r} is not a date format naming year, month and day; use "
                    "strftime directives (%Y-%m-%d, %d/%m/%Y) or YYYY, MM, DD (DD/MM/YYYY)",
                )
            )
    elif text_format:
        errors.append(FieldError("format", f"applies to date filters only, not to {kind}"))
    if kind == "enum" and not possible_values:
        errors.append(FieldError("possible_values", "an enum filter needs at least one value"))
    if not errors:
        spec = FilterSpec("value", kind, (), stored_format)
        seen: set[Any] = set()
        for index, value in enumerate(possible_values):
            try:
                key = _key(spec, _parse(spec, value))
            except ValueError as exc:
                errors.append(FieldError(f"possible_values[{index}]", f"{value!r} {exc}"))
                continue
            if key in seen:
                errors.append(FieldError(f"possible_values[{index}]", f"{value!r} appears twice"))
            seen.add(key)
    if errors:
        raise Invalid("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)
    return list(possible_values), stored_format


def _parse(spec: FilterSpec, value: Any) -> Any:
    """The typed value of `value`: a JSON value the model sent, a text of knowledge metadata or
    a possible value. ValueError says what it should be."""
    kind = spec.type
    if kind in ("string", "enum"):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("must be a string")
        return value if isinstance(value, str) else str(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("must be true or false")
    if kind == "date":
        if isinstance(value, str):
            for directive in (spec.directive, ISO_DATE):
                try:
                    return datetime.strptime(value.strip(), directive).date()
                except ValueError:
                    continue
        example = _SAMPLE.strftime(spec.directive)
        raise ValueError(f"must be a date written as {spec.format or ISO_DATE}, e.g. {example}")
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,30}\s*", value):
            return int(value)
        raise ValueError("must be an integer")
    if kind == "number":
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and len(value) <= 100:
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is None or not math.isfinite(number):
            raise ValueError("must be a number")
        return number
    raise ValueError(f"has an unknown filter type {kind!r}")


def _key(spec: FilterSpec, typed: Any) -> Any:
    """What two typed values are compared by: text ignores case."""
    return typed.casefold() if isinstance(typed, str) else typed


def filter_value(spec: FilterSpec, value: Any) -> Any:
    """The typed value the model chose for a filter, checked against the definition (type,
    possible values), or ValueError saying why not."""
    typed = _parse(spec, value)
    if spec.possible_values:
        allowed = {_key(spec, _parse(spec, v)) for v in spec.possible_values}
        if _key(spec, typed) not in allowed:
            raise ValueError("must be one of: " + ", ".join(spec.possible_values))
    return typed


def wire_value(spec: FilterSpec, typed: Any) -> Any:
    """The JSON an HTTP backend receives: dates in the filter's format, the rest as typed."""
    return typed.strftime(spec.directive) if isinstance(typed, date) else typed


def matches(spec: FilterSpec, typed: Any, metadata: Any) -> bool:
    """Whether a knowledge item's additional_metadata[name] (a list of texts, or one) holds the
    chosen value. Values that do not parse as the filter's type never match."""
    candidates = metadata if isinstance(metadata, list) else [metadata]
    wanted = _key(spec, typed)
    for candidate in candidates:
        try:
            if _key(spec, _parse(spec, candidate)) == wanted:
                return True
        except ValueError:
            continue
    return False


def filter_schema(spec: FilterSpec) -> dict[str, Any]:
    """The JSON Schema property a filter adds to a retrieval tool (always optional)."""
    description = f"Optional filter: only results whose {spec.name} is this value."
    schema: dict[str, Any]
    if spec.type in ("number", "integer", "boolean"):
        schema = {"type": spec.type}
    else:
        schema = {"type": "string"}
    if spec.type == "date":
        if spec.directive == ISO_DATE:
            schema["format"] = "date"
        example = _SAMPLE.strftime(spec.directive)
        description += f" A date written as {spec.format or ISO_DATE}, e.g. {example}."
    if spec.possible_values and spec.type != "boolean":
        schema["enum"] = [
            wire_value(spec, _parse(spec, value)) if spec.type != "date" else value
            for value in spec.possible_values
        ]
    schema["description"] = description
    return schema


async def _filters(session: AsyncSession, workspace_id: int, tool: Tool) -> list[FilterSpec]:
    """The filters a retrieval tool offers: those defined for its backend, minus any whose name
    a parameter of the tool already has (the tool's own parameter wins)."""
    taken = _own_properties(tool)
    rows = await repository.MetadataFilterRepository(session).list_for(
        workspace_id, _retrieval_id(tool)
    )
    return [FilterSpec.of(row) for row in rows if row.name not in taken]


def _own_properties(tool: Tool) -> set[str]:
    names = {parameter.name for parameter in tool.parameters}
    return names or {"query"}


def _retrieval_id(tool: Tool) -> int:
    return int(tool.config.get("retrieval_id", 0))


async def tool_schema(session: AsyncSession, workspace_id: int, tool: Tool) -> dict[str, Any]:
    """The tool's full JSON Schema (type object) as a generator is offered it: its parameters,
    and for a retrieval tool its backend's filters as optional properties (with their enum and
    format). A retrieval tool without parameters takes a required `query` string."""
    schema = parameters_schema(tool.parameters)
    if tool.kind != ToolKind.RETRIEVAL.value:
        return schema
    properties: dict[str, Any] = schema["properties"]
    if not properties:
        properties["query"] = dict(QUERY_PARAMETER)
        schema["required"] = ["query"]
    for spec in await _filters(session, workspace_id, tool):
        properties[spec.name] = filter_schema(spec)
    return schema


# -- running a retrieval tool -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Hit:
    kind: str  # faq, lesson, http
    title: str
    content: str
    score: float | None
    source: str
    url: str | None = None


def backend_of(settings: Settings, retrieval_id: int) -> RetrievalBackend:
    """The configured backend `retrieval_id` names, or Invalid listing the configured ids."""
    backend = settings.retrieval_backends.get(retrieval_id)
    if backend is None:
        configured = ", ".join(str(key) for key in sorted(settings.retrieval_backends)) or "none"
        raise Invalid(
            f"retrieval_id {retrieval_id} names no configured retrieval backend "
            f"(configured: {configured})",
            code="unknown_retrieval_backend",
            errors=[FieldError("retrieval_id", f"must be one of the configured ids: {configured}")],
        )
    return backend


async def run_retrieval(
    runtime: ToolRuntime,
    session: AsyncSession,
    workspace_id: int,
    tool: Tool,
    arguments: dict[str, Any],
) -> RetrievalOutcome:
    """Search the tool's backend with the model's arguments. Raises Invalid for arguments that
    break a filter definition or hold no query, UpstreamError / UpstreamTimeout /
    OutboundBlocked for an HTTP backend that fails."""
    retrieval_id = _retrieval_id(tool)
    backend = backend_of(runtime.settings, retrieval_id)
    specs = await _filters(session, workspace_id, tool)
    chosen: list[tuple[FilterSpec, Any]] = []
    for spec in specs:
        value = arguments.get(spec.name)
        if value is None:
            continue
        try:
            chosen.append((spec, filter_value(spec, value)))
        except ValueError as exc:
            shown = repr(value)[:100]
            raise Invalid(
                f"Filter {spec.name!r} {exc} (got {shown}).",
                errors=[FieldError(spec.name, str(exc))],
            ) from None
    query = _query(arguments, {spec.name for spec in specs})
    if backend.kind == "knowledge":
        hits = await _search_knowledge(session, workspace_id, query, chosen, backend.top_k)
    else:
        hits = await _search_http(runtime, workspace_id, retrieval_id, backend, query, chosen)
    return _outcome(tool, hits)


def _query(arguments: dict[str, Any], filter_names: set[str]) -> str:
    given = arguments.get("query")
    if given is not None and "query" not in filter_names and str(given).strip():
        return str(given).strip()
    parts = [
        value.strip()
        for name, value in arguments.items()
        if name not in filter_names and isinstance(value, str) and value.strip()
    ]
    if not parts:
        raise Invalid(
            "Nothing to search for: pass a 'query' argument (or text arguments).",
            code="empty_query",
        )
    return " ".join(parts)


def _outcome(tool: Tool, hits: Sequence[_Hit]) -> RetrievalOutcome:
    if not hits:
        return RetrievalOutcome(content="No results found.", references=[])
    blocks: list[str] = []
    references: list[dict[str, Any]] = []
    for number, hit in enumerate(hits, start=1):
        block = f"[{number}] {hit.title}\n{hit.content}"
        if hit.url:
            block += f"\nSource: {hit.url}"
        blocks.append(block)
        reference: dict[str, Any] = {
            "reference_num": number,
            "source": hit.source,
            "showed_num": number,
            "tool_id": tool.id,
            "kind": hit.kind,
            "score": None if hit.score is None else round(hit.score, 4),
        }
        if hit.url:
            reference["url"] = hit.url
        references.append(reference)
    return RetrievalOutcome(content="\n\n".join(blocks), references=references)


# -- the built-in backend: the workspace's knowledge --------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: str  # faq | lesson
    item_id: int
    name: str
    content: str
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _WorkspaceIndex:
    entries: list[_Entry]
    index: Bm25Index


def _build(items: Sequence[tuple[str, Any]]) -> _WorkspaceIndex:
    entries = [
        _Entry(kind, item.id, item.name, item.content, dict(item.additional_metadata or {}))
        for kind, item in items
    ]
    # Document ids are positions: FAQ and lesson ids overlap.
    documents = [Document(position, e.name, e.content) for position, e in enumerate(entries)]
    return _WorkspaceIndex(entries, Bm25Index(documents))


#: built BM25 indexes of workspaces' knowledge, kept while it is unchanged (see
#: repository.knowledge_fingerprint), keyed by database and workspace
KNOWLEDGE_INDEXES: FingerprintCache[tuple[str, int], _WorkspaceIndex] = FingerprintCache(64)


async def _knowledge_index(session: AsyncSession, workspace_id: int) -> _WorkspaceIndex:
    key = (str(session.get_bind().engine.url), workspace_id)
    fingerprint = await repository.knowledge_fingerprint(session, workspace_id)
    return await KNOWLEDGE_INDEXES.get(
        key, fingerprint, lambda: repository.knowledge_items(session, workspace_id), _build
    )


async def _search_knowledge(
    session: AsyncSession,
    workspace_id: int,
    query: str,
    chosen: Sequence[tuple[FilterSpec, Any]],
    top_k: int,
) -> list[_Hit]:
    built = await _knowledge_index(session, workspace_id)
    # Ranking every match costs a sort of them all: without filters only top_k are ranked; with
    # filters a generous first page, and everything only when that page held too few matches.
    limit = top_k if not chosen else max(10 * top_k, 50)
    while True:
        ranked = built.index.search(query, limit=limit)
        hits: list[_Hit] = []
        for scored in ranked:
            entry = built.entries[scored.document.item_id]
            if all(matches(spec, typed, entry.metadata.get(spec.name)) for spec, typed in chosen):
                source = f"{entry.kind}:{entry.item_id} {entry.name}"
                hits.append(_Hit(entry.kind, entry.name, entry.content, scored.score, source))
                if len(hits) == top_k:
                    return hits
        if len(ranked) < limit or limit >= len(built.index):
            return hits
        limit = len(built.index)


# -- HTTP backends -----------------------------------------------------------------------------


async def _search_http(
    runtime: ToolRuntime,
    workspace_id: int,
    retrieval_id: int,
    backend: RetrievalBackend,
    query: str,
    chosen: Sequence[tuple[FilterSpec, Any]],
) -> list[_Hit]:
    assert backend.url is not None  # the settings refuse an http backend without one
    url = str(backend.url)
    named = f" ({backend.name})" if backend.name else ""
    # Never the path or query of the URL: they may carry credentials.
    origin = f"Retrieval backend {retrieval_id}{named} at {describe_url(url)}"
    headers = {
        name: await _header(runtime, workspace_id, origin, name, value, destination=url)
        for name, value in backend.headers.items()
    }
    payload = {
        "query": query,
        "filters": {spec.name: wire_value(spec, typed) for spec, typed in chosen},
        "top_k": backend.top_k,
    }
    try:
        response = await runtime.outbound.post(url, json=payload, headers=headers)
    except httpx.TimeoutException:
        raise UpstreamTimeout(
            f"{origin} did not answer within {runtime.policy.timeout_seconds:g} s."
        ) from None
    except httpx.HTTPError as exc:
        raise UpstreamError(f"{origin} could not be reached ({type(exc).__name__}).") from None
    if not response.is_success:
        raise UpstreamError(f"{origin} answered HTTP {response.status_code}.")
    try:
        body = response.json()
    except ValueError:
        raise UpstreamError(f"{origin} answered with a body that is not JSON.") from None
    return _http_hits(body, origin)[: backend.top_k]


async def _header(
    runtime: ToolRuntime, workspace_id: int, origin: str, name: str, value: str, *, destination: str
) -> str:
    """A header's value with its secrets filled in for a request to `destination`; a secret
    whose allowed origins exclude it is refused (never sent)."""
    if "{{secret:" not in value:
        return value
    try:
        return await resolve_references(
            runtime.secrets, workspace_id, value, destination=destination
        )
    except NotFound as exc:
        raise Invalid(
            f"{origin}: header {name} references a secret this workspace does not have "
            f"({exc.message})",
            code="missing_secret",
        ) from None
    except Invalid as exc:
        raise Invalid(f"{origin}: header {name}: {exc.message}", code=exc.code) from None


def _http_hits(body: Any, origin: str) -> list[_Hit]:
    def wrong(where: str, what: str) -> UpstreamError:
        return UpstreamError(
            f"{origin} answered an unexpected body: {where} must be {what} "
            '(expected {"results": [{"title", "content", "score"?, "url"?}]}).'
        )

    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise wrong("results", "a list")
    hits: list[_Hit] = []
    for index, result in enumerate(results):
        where = f"results[{index}]"
        if not isinstance(result, dict):
            raise wrong(where, "an object")
        title, content = result.get("title"), result.get("content")
        score, url = result.get("score"), result.get("url")
        if not isinstance(title, str):
            raise wrong(f"{where}.title", "a string")
        if not isinstance(content, str):
            raise wrong(f"{where}.content", "a string")
        if score is not None and (
            isinstance(score, bool)
            or not isinstance(score, int | float)
            or not math.isfinite(score)
        ):
            raise wrong(f"{where}.score", "a number")
        if url is not None and not isinstance(url, str):
            raise wrong(f"{where}.url", "a string")
        hits.append(
            _Hit(
                "http",
                title,
                content,
                None if score is None else float(score),
                source=title,
                url=url or None,
            )
        )
    return hits
