"""The application factory: lifespan-built resources, middleware, faces and error handling.

`chatsvc.main:create_app` builds an app; `chatsvc.main:app` is the ASGI app for uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse, Response
from starlette.middleware.cors import CORSMiddleware

from chatsvc import __version__
from chatsvc.api import artifacts_v5, cognitive, messages_v1, openai_v1, ops, threads
from chatsvc.config import Settings, get_settings
from chatsvc.jobs.queue import InProcessQueue
from chatsvc.jobs.runner import load_handlers, run_sweeper
from chatsvc.kit.docs import mount_docs
from chatsvc.kit.logging import configure_logging
from chatsvc.kit.middleware import BodySizeLimitMiddleware, ObservabilityMiddleware
from chatsvc.kit.openapi import finish_document
from chatsvc.kit.web import (
    add_routes_of,
    document_errors,
    install_error_handlers,
    operation_id,
)
from chatsvc.services import Services
from chatsvc.ui import favicon, ui_app

DESCRIPTION = """
chatsvc is a self-hosted backend for chat assistants.

Authenticate every request (except /healthz, /readyz and /metrics) with an API key, as
`X-Api-Key: KEY` (security scheme `ApiKeyAuth`) or `Authorization: Bearer KEY` (`BearerAuth`;
the messages-v1 and artifacts-v5 faces also take the bare key, `Authorization: KEY`). When both
headers are sent, X-Api-Key is used and Authorization is not read. Errors share one body:
`{"detail", "code", "errors": [{"field", "message"}], "request_id"}`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Builds the process's services once (faces reach them through chatsvc.services' typed
    dependencies). In the embedded mode jobs run in this process, which then also sweeps."""
    settings: Settings = app.state.settings
    load_handlers()
    services = Services.build(settings)
    await services.start()
    app.state.services = services
    sweeper = (
        asyncio.create_task(run_sweeper(services.jobs), name="sweeper")
        if isinstance(services.queue, InProcessQueue)
        else None
    )
    # The app, its routes and schemas are ~300,000 objects that live as long as the process:
    # left to the collector, each full collection walks them all (~170 ms with the loop
    # stopped, the p99 of every request then). Frozen, a collection walks what requests made.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        await services.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title="chatsvc",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
        # Served by chatsvc.kit.docs with their assets from a package instead of a CDN.
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
        openapi_tags=[
            {"name": "assistants", "description": "Assistant configuration (cognitive face)."},
            {"name": "knowledge", "description": "Common questions, fixed responses, lessons."},
            {"name": "chats", "description": "Chats, turns and their SSE streams."},
            {"name": "messages", "description": "Single messages and their feedback."},
            {"name": "generators", "description": "The configured generator apps."},
            {"name": "reports", "description": "Structured feedback on chats and its metrics."},
            {"name": "jobs", "description": "Background jobs: state, progress, result."},
            {"name": "usage", "description": "Token usage of the workspace's answers."},
            {"name": "operations", "description": "Health, readiness and metrics."},
        ],
    )
    app.state.settings = settings
    install_error_handlers(app)
    document_errors(app)
    finish_document(app)
    for router in (ops.router, cognitive.router, threads.router, messages_v1.router):
        add_routes_of(app, router)
    artifacts_v5.mount(app)
    # Last: it reshapes the error handlers installed above on its own /v1/ paths.
    openai_v1.mount(app)
    app.mount("/ui", ui_app(), name="ui")
    mount_docs(app)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        """People who open the service in a browser land on the chat page."""
        return RedirectResponse("/ui/")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon_ico() -> Response:
        """Browsers ask for it on every site: the chat page's icon, not a 404 in the logs."""
        return favicon()

    # Added last = outermost: the request id exists before anything else runs.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            # Every header the docs tell a browser to read (X-Chat-Id, X-Thread-Uuid: the chat or
            # thread a stream or a failed turn is in).
            expose_headers=["X-Request-Id", "X-Total-Count", "Link", "X-Chat-Id", "X-Thread-Uuid"],
        )
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
    )
    app.add_middleware(ObservabilityMiddleware, access_log=settings.access_log)
    return app


def __getattr__(name: str) -> Any:
    # `chatsvc.main:app` is built on first access, so importing this module connects nothing
    # and reads no settings.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
