"""Validated MCP input (servers, MCP tools, tool selections) and the header rules every server
shares: names and values HTTP can carry, `{{secret:NAME}}` references, and the masking of
literal credentials in what the API returns."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import Field, StringConstraints, field_validator

from chatsvc.kit.validation import MAX_ID, InputModel, PatchModel
from chatsvc.tools.mcp_client import PROTOCOL_VERSIONS

#: a reference to a workspace secret inside a header value (Key Vault's name rules)
SECRET_REFERENCE: Final = re.compile(r"\{\{secret:([A-Za-z0-9-]{1,127})\}\}")
_ANY_REFERENCE: Final = re.compile(r"\{\{\s*secret\s*:")
#: header names whose literal values are credentials: masked in responses
_SENSITIVE: Final = re.compile(
    r"auth|token|secret|key|password|passwd|cookie|session|credential|signature", re.IGNORECASE
)
_SCHEME: Final = re.compile(r"^(?:Bearer|Basic|Token|Digest|ApiKey|Api-Key)[ \t]+", re.IGNORECASE)
MASK: Final = "****"
#: set by the client, the transport or the MCP protocol itself
RESERVED_HEADERS: Final = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "accept",
        "accept-encoding",
        "last-event-id",
        "mcp-session-id",
        "mcp-protocol-version",
    }
)

Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
HeaderName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
]
HeaderValue = Annotated[str, StringConstraints(max_length=8192)]
Headers = Annotated[dict[HeaderName, HeaderValue], Field(max_length=50)]
ProtocolVersion = Annotated[str, StringConstraints(max_length=32)]
ServerId = Annotated[int, Field(ge=1, le=MAX_ID)]
RemoteName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Selection = Annotated[list[RemoteName], Field(max_length=200)]


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """Header names unique (ignoring case) and not managed by the client; values on one line;
    secret references well formed."""
    seen: set[str] = set()
    for name, value in headers.items():
        key = name.lower()
        if key in seen:
            raise ValueError(f"header {name!r} appears twice (names ignore case)")
        seen.add(key)
        if key in RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by the MCP client and may not be configured")
        if any(c in value for c in "\r\n\x00"):
            raise ValueError(f"header {name!r}: a value may not contain a line break or NUL")
        stripped = SECRET_REFERENCE.sub("", value)
        if _ANY_REFERENCE.search(stripped):
            raise ValueError(
                f"header {name!r}: malformed secret reference; write {{{{secret:NAME}}}} with a "
                "name of 1-127 letters, digits and dashes"
            )
    return headers


def check_protocol_version(value: str) -> str:
    if value and value not in PROTOCOL_VERSIONS:
        known = ", ".join(PROTOCOL_VERSIONS)
        raise ValueError(f"unknown MCP protocol version {value!r}; leave it empty or use: {known}")
    return value


def is_sensitive(name: str) -> bool:
    return name.lower() in {"authorization", "proxy-authorization"} or bool(_SENSITIVE.search(name))


def mask_value(name: str, value: str) -> str:
    """What the API shows of a stored header value: secret references as they are; in a
    sensitive header every literal run becomes ****, an auth scheme word excepted."""
    if not is_sensitive(name) or not value:
        return value
    scheme = _SCHEME.match(value)
    prefix = scheme.group(0) if scheme else ""
    shown: list[str] = [prefix]
    position = len(prefix)
    for reference in SECRET_REFERENCE.finditer(value, position):
        if reference.start() > position:
            shown.append(MASK)
        shown.append(reference.group(0))
        position = reference.end()
    if position < len(value):
        shown.append(MASK)
    return "".join(shown)


def mask_headers(headers: dict[str, Any]) -> dict[str, str]:
    return {name: mask_value(name, str(value)) for name, value in headers.items()}


def unmask_headers(sent: dict[str, str], stored: dict[str, Any]) -> dict[str, str]:
    """Headers to store from what a client sent back: a value equal to the masked form of the
    stored value of the same header keeps the stored value (clients PUT back what they GET)."""
    by_name = {name.lower(): str(value) for name, value in stored.items()}
    kept: dict[str, str] = {}
    for name, value in sent.items():
        old = by_name.get(name.lower())
        if old is not None and value != old and value == mask_value(name, old):
            value = old
        kept[name] = value
    return kept


class McpServerIn(InputModel):
    """A remote MCP server (a replace on PUT: omitted fields take their defaults)."""

    name: Name
    description: Description = ""
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    headers: Headers = Field(default_factory=dict)
    protocol_version: ProtocolVersion = ""
    client_name: Annotated[str, StringConstraints(max_length=255)] = ""
    client_version: Annotated[str, StringConstraints(max_length=64)] = ""
    active: bool = True

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return check_headers(value)

    @field_validator("protocol_version")
    @classmethod
    def _version(cls, value: str) -> str:
        return check_protocol_version(value)


class McpServerPatch(PatchModel, McpServerIn):
    """A partial update: only the fields sent change (`headers` is replaced as a whole)."""

    name: Name | None = None  # type: ignore[assignment]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = None  # type: ignore[assignment]


class ToolSelectionIn(InputModel):
    """Remote tool names of one server, as its tools/ endpoints take them."""

    selected_tools: Selection = Field(default_factory=list)

    @field_validator("selected_tools")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a remote tool may be selected only once")
        return value


class McpToolIn(InputModel):
    """An MCP tool: display settings, the server (`server_id`; else `server` creates one) and
    the remote tool(s) it calls (`selected_tools`)."""

    name: Name | None = None
    description: Description | None = None
    show_tool_message: bool = True
    show_assistant_message: bool = True
    edit_available: bool = True
    portal_available: bool = True
    server: McpServerIn | None = None
    server_id: ServerId | None = None
    selected_tools: Selection | None = None

    @field_validator("selected_tools")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("a remote tool may be selected only once")
        return value


class McpToolPatch(PatchModel, McpToolIn):
    """A partial update of an MCP tool: only the fields sent change."""

    # null: the remote tool's name / description
    nullable = frozenset({"name", "description"})
