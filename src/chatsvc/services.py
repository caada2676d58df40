"""The process's long-lived resources (engine, Redis, HTTP client, stream broker, tool runtime, job
queue, generations, turn service, caches), built once by the API lifespan or the worker's start,
and the typed dependencies through which faces reach them. A test overrides one of them with
`app.dependency_overrides[get_x] = ...`; nothing outside this module reads `app.state`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

import aiohttp
import httpx
from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chatsvc.artifacts.cache import TagCache
from chatsvc.auth.keys import Authenticator
from chatsvc.chats.turns import TurnService
from chatsvc.config import Settings
from chatsvc.generation.registry import build_generators
from chatsvc.generation.runner import Generations
from chatsvc.jobs.queue import ArqQueue, InProcessQueue, JobQueue
from chatsvc.jobs.runner import (
    JobContext,
    Orphans,
    beat_once,
    execute,
    recover_orphans,
    run_heartbeat,
)
from chatsvc.kit.db import (
    create_engine,
    create_read_sessionmaker,
    create_sessionmaker,
    unit_of_work,
)
from chatsvc.kit.heartbeat import Heartbeat, new_owner_id
from chatsvc.secrets.store import SecretStore
from chatsvc.streaming.broker import StreamBroker
from chatsvc.streaming.factory import build_broker
from chatsvc.tools.runtime import ToolRuntime
from chatsvc.webhooks.events import WebhookEvents

T = TypeVar("T")
logger = logging.getLogger("chatsvc.services")


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    #: autocommit sessions for reads (no BEGIN/COMMIT round trips)
    read_sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis | None
    http: httpx.AsyncClient
    #: the generators' client (aiohttp: a C HTTP parser for the streams relayed token by token)
    upstream: aiohttp.ClientSession
    broker: StreamBroker
    tools: ToolRuntime
    generations: Generations
    queue: JobQueue
    turns: TurnService
    artifacts_cache: TagCache
    authenticator: Authenticator
    #: this process's heartbeat (with Redis; embedded: None, the process itself is its life)
    heartbeat: Heartbeat | None = None
    #: what job handlers use: some of these services (made from them, not passed in)
    jobs: JobContext = field(init=False)
    _beating: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.jobs = JobContext(
            self.sessionmaker, self.settings, self.queue, self.http, self.broker, self.generations
        )

    @classmethod
    def build(cls, settings: Settings, queue: JobQueue | None = None) -> Services:
        """Everything, connected lazily (nothing connects until first use). `queue`: the job
        queue to trigger jobs with (the worker passes arq's own); by default the one
        settings.job_queue names."""
        engine = create_engine(
            settings.database_url,
            echo=settings.database_echo,
            pool_size=settings.database_pool_size,
        )
        sessionmaker = create_sessionmaker(engine)
        reads = create_read_sessionmaker(engine)
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0),
            trust_env=False,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        )
        upstream = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1000, limit_per_host=0, ttl_dns_cache=300),
            trust_env=False,
            read_bufsize=1 << 20,  # a stream line (a tool call's arguments) may be long
        )
        broker = build_broker(redis)
        tools = ToolRuntime.build(settings, sessionmaker)
        owner = new_owner_id()
        generations = Generations(
            sessionmaker,
            broker,
            build_generators(settings, upstream),
            settings,
            tools,
            reads=reads,
            owner=owner,
        )
        if queue is None:
            use_arq = settings.job_queue == "arq" or (
                settings.job_queue == "auto" and settings.redis_url is not None
            )
            if use_arq:
                if not settings.redis_url:
                    raise ValueError("CHATSVC_JOB_QUEUE=arq needs CHATSVC_REDIS_URL")
                queue = ArqQueue.from_url(settings.redis_url, settings.arq_queue)
            else:
                # Jobs run in this process; the handler reads the context when a job runs.
                queue = InProcessQueue(lambda job_id: execute(services.jobs, job_id))
        # A turn's end is announced to the workspace's event webhooks through this queue.
        generations.store.events = WebhookEvents(sessionmaker, settings, queue, reads)
        services = cls(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            read_sessionmaker=reads,
            redis=redis,
            http=http,
            upstream=upstream,
            broker=broker,
            tools=tools,
            generations=generations,
            queue=queue,
            turns=TurnService(sessionmaker, settings, generations, queue, reads),
            artifacts_cache=TagCache.build(redis, settings.database_url),
            authenticator=Authenticator(
                reads, settings.auth_cache_seconds, writes=sessionmaker, redis=redis
            ),
            heartbeat=Heartbeat(
                redis,
                owner,
                ttl_seconds=settings.heartbeat_ttl_seconds,
                remember_seconds=settings.generation_lease_seconds + settings.heartbeat_ttl_seconds,
            )
            if redis is not None
            else None,
        )
        return services

    async def start(self) -> None:
        """Start what runs in the background for the whole process: the broker's listener and
        the heartbeat (its first beat before anything is served). Embedded (no Redis, one
        process per database): what an earlier run left running is dead, so it fails now."""
        await self.broker.start()
        if self.heartbeat is None:
            await recover_orphans(self.jobs, Orphans(all_but=self.generations.owner))
            return
        try:
            await beat_once(self.jobs, self.heartbeat)
        except Exception:
            logger.warning("first heartbeat failed; trying again", exc_info=True)
        self._beating = asyncio.create_task(
            run_heartbeat(self.jobs, self.heartbeat), name="heartbeat"
        )

    async def close(self) -> None:
        """Stop in dependency order: no new jobs, running generations finish (or are stopped),
        then the clients and the engine."""
        await self.queue.close()
        await self.generations.shutdown()
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
        if self.heartbeat is not None:
            with contextlib.suppress(Exception):
                await self.heartbeat.stop()
        await self.broker.close()
        await self.tools.close()
        await self.http.aclose()
        await self.upstream.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


# --- dependencies --------------------------------------------------------------------------------


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_sessionmaker(services: ServicesDep) -> async_sessionmaker[AsyncSession]:
    return services.sessionmaker


SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]


async def get_session(sessionmaker: SessionmakerDep) -> AsyncIterator[AsyncSession]:
    """One session per request, committed when the endpoint returns, before the response is sent."""
    async with unit_of_work(sessionmaker) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(
    services: ServicesDep, sessionmaker: SessionmakerDep
) -> AsyncIterator[AsyncSession]:
    """A session for a read-only request: its statements run without a transaction around
    them (one round trip each). On an overridden sessionmaker (tests), that one's sessions."""
    reads = services.read_sessionmaker if sessionmaker is services.sessionmaker else sessionmaker
    async with reads() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


async def get_authenticator(services: ServicesDep, sessionmaker: SessionmakerDep) -> Authenticator:
    """Key look-ups, cached per process; on an overridden sessionmaker (tests), uncached."""
    if sessionmaker is services.sessionmaker:
        return services.authenticator
    return services.authenticator.on(sessionmaker)


AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]


async def get_turns(services: ServicesDep, sessionmaker: SessionmakerDep) -> TurnService:
    """The turn service, on the request's sessionmaker (so overriding `get_sessionmaker` moves
    a request's turn work too; generations keep the process's own)."""
    if sessionmaker is services.sessionmaker:
        return services.turns
    return services.turns.on(sessionmaker)


TurnsDep = Annotated[TurnService, Depends(get_turns)]


def _part(pick: Callable[[Services], T]) -> Callable[[Services], Awaitable[T]]:
    """A dependency on one part of the services (async: a plain `def` dependency would run in
    a worker thread on every request)."""

    async def dependency(services: ServicesDep) -> T:
        return pick(services)

    return dependency


QueueDep = Annotated[JobQueue, Depends(_part(lambda s: s.queue))]
JobsDep = Annotated[JobContext, Depends(_part(lambda s: s.jobs))]
ToolsDep = Annotated[ToolRuntime, Depends(_part(lambda s: s.tools))]
SecretStoreDep = Annotated[SecretStore, Depends(_part(lambda s: s.tools.secrets))]
ArtifactsCacheDep = Annotated[TagCache, Depends(_part(lambda s: s.artifacts_cache))]
EngineDep = Annotated[AsyncEngine, Depends(_part(lambda s: s.engine))]
RedisDep = Annotated[Redis | None, Depends(_part(lambda s: s.redis))]
