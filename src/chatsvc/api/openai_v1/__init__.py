"""The OpenAI-compatible face (issue 16, docs/openai-compatible.md): `/v1/models` and
`/v1/chat/completions` over the workspace's assistants, errors in OpenAI's shape on `/v1/` paths.
`mount(app)` adds its routes, its error shape and its OpenAPI tag."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from chatsvc.api.openai_v1.router import router
from chatsvc.api.openai_v1.schemas import error_body
from chatsvc.kit.web import add_routes_of

__all__ = ["PREFIX", "mount", "router"]

PREFIX = "/v1/"
Handler = Callable[[Request, Exception], Awaitable[Response]]


def _openai_shaped(handler: Handler) -> Handler:
    """The app's handler, its answer reshaped to OpenAI's error body on `/v1/` paths (the same
    status, but 400 for an invalid request; the headers kept: X-Chat-Id, WWW-Authenticate)."""

    async def handle(request: Request, exc: Exception) -> Response:
        response = await handler(request, exc)
        if not request.url.path.startswith(PREFIX) or not isinstance(response, JSONResponse):
            return response
        shown: dict[str, Any] = json.loads(bytes(response.body))
        status = 400 if response.status_code == 422 else response.status_code
        errors = shown.get("errors") or []
        param = None
        if errors:
            field = str(errors[0].get("field", ""))
            param = field.split(".", 1)[1] if field.startswith("body.") else field
        body = error_body(status, str(shown.get("detail", "")), shown.get("code"), param)
        headers = {
            k: v for k, v in response.headers.items() if k.lower() not in ("content-length",)
        }
        headers.pop("content-type", None)
        return JSONResponse(body, status_code=status, headers=headers)

    return handle


#: statuses the body-size middleware answers before any route runs, in chatsvc's own body
_BEFORE_ROUTING = frozenset({"413", "431"})


def _document(app: FastAPI) -> None:
    """The `/v1/` operations document OpenAI's error body for every error the app's handlers
    answer (the body-size middleware's 413 and 431 keep chatsvc's body: they are refused before
    any route runs); their 422 (FastAPI's default for an invalid request) is answered as 400,
    so it is left out."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        ref = {"$ref": "#/components/schemas/OpenAIErrorBody"}
        for path, item in schema.get("paths", {}).items():
            if path.startswith(PREFIX):
                for operation in item.values():
                    responses = operation.get("responses", {})
                    responses.pop("422", None)
                    for status, response in responses.items():
                        if status[:1] in "45" and status not in _BEFORE_ROUTING:
                            response["content"] = {"application/json": {"schema": ref}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def mount(app: FastAPI) -> None:
    add_routes_of(app, router)
    for kind, handler in list(app.exception_handlers.items()):
        app.exception_handlers[kind] = _openai_shaped(handler)  # type: ignore[arg-type]
    _document(app)
    tags = app.openapi_tags or []
    tags.append({"name": "openai", "description": "The OpenAI-compatible face (/v1/)."})
    app.openapi_tags = tags
