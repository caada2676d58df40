"""A real HTTP retrieval backend on loopback, for tests: it answers `POST /search` (any path,
in fact) with the configured results, records what it received (headers and JSON body), and
fails on demand (an HTTP status, a body that is not JSON or not the expected shape, a slow
answer, a dropped connection).

In a test::

    async with running_retrieval_server(results=[{"title": "T", "content": "C"}]) as fake:
        backend = RetrievalBackend(kind="http", url=fake.url, headers={"X-Key": "k"})
        fake.configure(status=503)                      # change behaviour between calls
        assert fake.requests[0].body["query"] == "refunds"
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Self

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from tests.fakes._threaded import RunsInThread, ThreadedServer


@dataclass
class SearchBehaviour:
    #: the results answered, as {"results": results}
    results: list[dict[str, Any]] = field(default_factory=list)
    #: answer this status (with a JSON error body) instead of results
    status: int = 200
    #: answer these bytes as they are (e.g. not JSON), with `status`
    raw_body: bytes | None = None
    #: seconds to wait before answering
    delay: float = 0.0
    #: close the connection in the middle of the answer
    drop: bool = False


@dataclass(frozen=True)
class SearchRequest:
    method: str
    path: str
    #: lower-case header names
    headers: dict[str, str]
    body: Any


class _Drop(Exception):
    """Raised after the response started: uvicorn then closes the socket mid-body."""


class _QuietDrops(logging.Filter):
    """uvicorn logs every exception an app raises; a drop made on purpose is not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.exc_info[0] is _Drop)


_QUIET = _QuietDrops()


class RetrievalServer(RunsInThread):
    def __init__(
        self,
        behaviour: SearchBehaviour | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.behaviour = behaviour or SearchBehaviour()
        self.requests: list[SearchRequest] = []
        self._host = host
        self._port = port
        self._server: ThreadedServer | None = None
        self._stopping = False

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}/search?index=docs"

    def configure(self, **changes: Any) -> None:
        self.behaviour = dataclasses.replace(self.behaviour, **changes)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        logging.getLogger("uvicorn.error").addFilter(_QUIET)
        server = ThreadedServer(
            self, host=self._host, port=self._port, name="fake retrieval server", log_level="error"
        )
        self._port = server.port
        self._server, self._stopping = server, False
        server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._stopping = True
            self._server.stop()
            self._server = None

    # -- the protocol ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        self.requests.append(
            SearchRequest(request.method, request.url.path, dict(request.headers), body)
        )
        behaviour = self.behaviour
        await self._pause(behaviour.delay)
        if behaviour.drop:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"100"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b'{"results": [', "more_body": True})
            raise _Drop
        response: Response
        if behaviour.raw_body is not None:
            response = Response(behaviour.raw_body, status_code=behaviour.status)
        elif behaviour.status != 200:
            response = JSONResponse({"error": "failed on purpose"}, status_code=behaviour.status)
        else:
            response = JSONResponse({"results": behaviour.results})
        await response(scope, receive, send)

    async def _pause(self, seconds: float) -> None:
        # In small steps so that stopping the server ends the wait.
        deadline = time.monotonic() + seconds
        while not self._stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.05))


def running_retrieval_server(**behaviour: Any) -> RetrievalServer:
    """`async with running_retrieval_server(results=[...]) as fake:`"""
    return RetrievalServer(SearchBehaviour(**behaviour))
