"""Settings: every knob of the service, read from CHATSVC_* environment variables."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "changethis", "secret", "dev-secret"})
DEV_SECRET_KEY = "dev-secret"  # noqa: S105 - the documented local default, refused in production


class Environment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    PRODUCTION = "production"


class GeneratorApp(BaseModel):
    """A generator app that assistants name in `generation_config`."""

    kind: Literal["offline", "openai"] = "offline"
    description: str = ""
    base_url: AnyHttpUrl | None = None
    model: str | None = None
    api_key: SecretStr | None = None
    #: seconds to connect / to wait for the first byte, and between two streamed chunks
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    timeout_seconds: float = Field(default=60.0, gt=0)
    #: offline generator only: pause between streamed words (0 = as fast as possible)
    token_delay_seconds: float = Field(default=0.0, ge=0)
    #: extra request headers (e.g. api-version for Azure OpenAI deployments)
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> GeneratorApp:
        if self.kind == "openai" and (self.base_url is None or not self.model):
            raise ValueError("an openai generator app needs base_url and model")
        return self


def _default_generator_apps() -> dict[str, GeneratorApp]:
    # A small pause between words so that a stream looks like one in a first try.
    return {
        "offline": GeneratorApp(
            kind="offline", description="Built-in offline generator", token_delay_seconds=0.02
        )
    }


class RetrievalBackend(BaseModel):
    """Where a retrieval tool searches: `knowledge` (built in: the workspace's FAQ and lessons,
    BM25) or `http` (POST {query, filters, top_k} to `url`, through the guarded client)."""

    kind: Literal["knowledge", "http"] = "knowledge"
    name: str = ""
    url: AnyHttpUrl | None = None
    #: header values may reference workspace secrets: {{secret:NAME}}
    headers: dict[str, str] = Field(default_factory=dict)
    top_k: int = Field(default=3, ge=1, le=50)

    @model_validator(mode="after")
    def _complete(self) -> RetrievalBackend:
        if self.kind == "http" and self.url is None:
            raise ValueError("an http retrieval backend needs url")
        return self


def _default_retrieval_backends() -> dict[int, RetrievalBackend]:
    return {1: RetrievalBackend(kind="knowledge", name="Workspace knowledge")}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHATSVC_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Environment = Environment.LOCAL
    database_url: str = "sqlite+aiosqlite:///./chatsvc.db"
    #: connections kept open per process (as many again may open under bursts, then close)
    database_pool_size: int = Field(default=20, ge=1)
    database_echo: bool = False
    redis_url: str | None = None

    generator_apps: dict[str, GeneratorApp] = Field(default_factory=_default_generator_apps)
    default_generator: str = "offline"

    secret_backend: Literal["local", "azure"] = "local"  # noqa: S105 - a backend name
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    azure_key_vault_url: AnyHttpUrl | None = None

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    page_size_default: int = Field(default=20, ge=1)
    page_size_max: int = Field(default=100, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_header_bytes: int = Field(default=65_536, ge=1024)
    knowledge_max_chars: int = Field(default=20_000, ge=1)
    #: how long stream events stay replayable (Last-Event-ID) after a generation ends
    stream_ttl_seconds: int = Field(default=3600, ge=10)
    #: how long a process trusts an API key it looked up (a revoked key stops working within it)
    auth_cache_seconds: float = Field(default=10.0, ge=0, le=3600)
    #: the most messages of a chat's history one prompt may carry (the newest; the assistant's
    #: strategy_to_optimize_tokens trims further); a turn costs the same on a chat of any length
    history_max_messages: int = Field(default=200, ge=1, le=10_000)
    #: a PROCESSING chat whose lease expired (its process died) may be taken over
    generation_lease_seconds: int = Field(default=120, ge=5)
    #: every process (API and worker) with Redis renews a heartbeat this often and looks for
    #: processes whose heartbeat stopped: their running generations fail at once (chat FAILED,
    #: an `error` event ends their streams); so a dead process's chats are failed within about
    #: heartbeat_ttl_seconds + heartbeat_seconds (defaults: 8 + 2 s). A process stalled for
    #: longer than the time to live is taken for dead (its generations stop as if cancelled).
    heartbeat_seconds: float = Field(default=2.0, gt=0, le=60)
    heartbeat_ttl_seconds: float = Field(default=8.0, gt=0, le=600)
    #: background jobs: a running job's lease (renewed while it runs; a worker that dies lets it
    #: expire and the sweeper hands the job to another), attempts before a job fails for good,
    #: how often the sweeper looks, and where jobs write the files they produce
    job_lease_seconds: int = Field(default=300, ge=2)
    job_max_attempts: int = Field(default=5, ge=1)
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    #: who runs background jobs: `arq` (`chatsvc worker` processes, through Redis), `in-process`
    #: (this API process, which then also sweeps), or `auto`: arq when redis_url is set
    job_queue: Literal["auto", "arq", "in-process"] = "auto"
    #: the arq queue (a Redis key) the API enqueues to and the workers read: deployments (or
    #: test runs) sharing one Redis database keep their jobs apart by giving it different names
    arq_queue: str = Field(default="arq:queue", min_length=1, max_length=200)
    artifact_dir: str = "./artifacts"
    #: SSE heartbeat comment interval
    sse_ping_seconds: float = Field(default=15.0, gt=0)
    log_level: str = "INFO"
    access_log: bool = True

    # -- Outbound calls made for a workspace (MCP servers, HTTP retrieval, export callbacks) ----
    # Read by chatsvc.kit.outbound.OutboundPolicy.from_settings. Lists are JSON in the
    # environment, e.g. CHATSVC_OUTBOUND_ALLOW_LIST='["10.20.0.0/16", "mcp.corp.example"]'.
    #: schemes a workspace URL may use ("https", "http")
    outbound_allowed_schemes: list[Literal["http", "https"]] = Field(
        default=["https"], min_length=1
    )
    #: ports a workspace URL may use; unset: 443, plus 80 when http is allowed
    outbound_allowed_ports: list[Annotated[int, Field(ge=1, le=65535)]] | None = None
    #: admit private, loopback, CGNAT and unique-local addresses (never link-local/metadata)
    outbound_allow_private: bool = False
    #: CIDRs or exact hostnames admitted even though they are not public
    outbound_allow_list: list[str] = Field(default_factory=list)
    outbound_max_response_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    #: the whole exchange: resolution, connect, request and every byte of the answer
    outbound_timeout_seconds: float = Field(default=10.0, gt=0)
    #: 0 refuses redirects; N follows up to N hops, each checked like the first
    outbound_max_redirects: int = Field(default=0, ge=0, le=10)
    # Webhook callbacks (chatsvc.webhooks.delivery.deliver): attempts per delivery and backoff.
    webhook_attempts: int = Field(default=5, ge=1, le=20)
    webhook_base_delay_seconds: float = Field(default=1.0, ge=0)
    webhook_max_delay_seconds: float = Field(default=30.0, ge=0)
    #: an export file up to this size is POSTed to its callback; a larger one is announced by a
    #: JSON notice naming its download path (GET /jobs/{id}/artifact/)
    webhook_max_file_bytes: int = Field(default=20 * 1024 * 1024, ge=0)

    # -- Tools (docs/tool-calling.md) ---------------------------------------------------------
    #: deadline of one tool call in the tool-calling loop (script, MCP, retrieval); a late or
    #: failing tool gives the model an error result, the chat does not fail
    tool_timeout_seconds: float = Field(default=20.0, gt=0)
    #: a tool result is cut to this many characters before the model sees it
    tool_result_max_chars: int = Field(default=20_000, ge=100)
    #: retrieval backends that retrieval tools name by `retrieval_id` (JSON in the environment)
    retrieval_backends: dict[int, RetrievalBackend] = Field(
        default_factory=_default_retrieval_backends
    )
    #: script tools: worker processes, and each run's limits
    script_workers: int = Field(default=2, ge=1, le=64)
    script_memory_mb: int = Field(default=64, ge=8)
    script_timeout_seconds: float = Field(default=2.0, gt=0)
    script_stack_kb: int = Field(default=256, ge=16)
    #: a call waits this long for a free worker, then fails clearly
    script_queue_wait_seconds: float = Field(default=2.0, ge=0)
    #: console.log output kept per run, and the largest JSON result accepted
    script_max_output_bytes: int = Field(default=64 * 1024, ge=1024)
    #: MCP servers: deadlines and how long a server's remote tool list is reused
    mcp_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    mcp_call_timeout_seconds: float = Field(default=20.0, gt=0)
    mcp_tools_cache_seconds: float = Field(default=300.0, ge=0)

    bootstrap_api_key: SecretStr | None = None
    demo_assistant: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    #: API processes of `chatsvc serve` (unset: 1 embedded, one per core with Redis)
    workers: int | None = Field(default=None, ge=1, le=64)

    @model_validator(mode="before")
    @classmethod
    def _split_cors(cls, data: object) -> object:
        if isinstance(data, dict):
            raw = data.get("cors_origins")
            if isinstance(raw, str):
                data["cors_origins"] = [o.strip() for o in raw.split(",") if o.strip()]
        return data

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.default_generator not in self.generator_apps:
            raise ValueError(
                f"CHATSVC_DEFAULT_GENERATOR={self.default_generator!r} is not one of "
                f"CHATSVC_GENERATOR_APPS ({', '.join(sorted(self.generator_apps))})"
            )
        if self.heartbeat_ttl_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                "CHATSVC_HEARTBEAT_TTL_SECONDS must be at least twice CHATSVC_HEARTBEAT_SECONDS "
                "(a live process renews its heartbeat before it expires)"
            )
        if self.page_size_default > self.page_size_max:
            raise ValueError("CHATSVC_PAGE_SIZE_DEFAULT must not exceed CHATSVC_PAGE_SIZE_MAX")
        if self.env is Environment.PRODUCTION:
            if self.secret_key.get_secret_value().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    "CHATSVC_SECRET_KEY is a placeholder; set a random value of at least "
                    "32 characters before running with CHATSVC_ENV=production"
                )
            if len(self.secret_key.get_secret_value()) < 32:
                raise ValueError("CHATSVC_SECRET_KEY must be at least 32 characters in production")
            key = self.bootstrap_api_key
            if key is not None and (
                key.get_secret_value().lower() in PLACEHOLDER_SECRETS
                or len(key.get_secret_value()) < 24
            ):
                raise ValueError(
                    "CHATSVC_BOOTSTRAP_API_KEY is a placeholder or shorter than 24 characters"
                )
            if self.secret_backend == "azure" and self.azure_key_vault_url is None:  # noqa: S105
                raise ValueError(
                    "CHATSVC_AZURE_KEY_VAULT_URL is required with secret_backend=azure"
                )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class SettingsInvalid(ValueError):
    """The environment does not make valid settings. Its message names each variable and what
    is wrong with it, never a value given (any of them may hold a secret, or a part of one)."""


def describe_settings_error(error: ValidationError) -> str:
    """What is wrong, one line per problem: the CHATSVC_ variable (and the path inside a JSON
    value) and the reason; the values given are left out."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False, include_context=False):
        loc = [str(part) for part in problem["loc"]]
        message = str(problem["msg"]).removeprefix("Value error, ")
        if loc:
            name = f"CHATSVC_{loc[0].upper()}" + "".join(f"[{part}]" for part in loc[1:])
            message = f"{name}: {message}"
        lines.append(message)
    return "; ".join(lines)


def load_settings() -> Settings:
    """Settings from the environment; SettingsInvalid (no value given shown) when they are not."""
    try:
        return Settings()
    except ValidationError as exc:
        # `from None`: the validation error's own text shows the values given.
        raise SettingsInvalid(describe_settings_error(exc)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
