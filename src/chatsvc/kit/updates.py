"""PUT and PATCH served by one endpoint: a replacement and a partial update of a resource differ
only in their body (the full input model, or its PatchModel) and in the values that body sets,
so the PATCH route serves the PUT's endpoint with the partial body (add_patch_route)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi.routing import APIRoute, APIRouter
from pydantic import BaseModel

from chatsvc.kit.validation import PatchModel

R = TypeVar("R")


def update_values(body: BaseModel, *, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The values an update body sets (but `exclude`): only the fields sent of a partial body (a
    PatchModel, whose nested bodies stay models); every field of a full one, as plain data (PUT
    replaces: a field left out takes its default)."""
    if isinstance(body, PatchModel):
        return body.changes(exclude=exclude)
    return body.model_dump(exclude=set(exclude))


def with_body(
    endpoint: Callable[..., Awaitable[R]],
    body: type[BaseModel],
    name: str,
    *,
    doc: str | None = None,
) -> Callable[..., Awaitable[R]]:
    """`endpoint` (whose request body is its parameter `body`) taking a body of the model `body`,
    named `name`, with the docstring `doc` (a route's description when it gives none): the PATCH
    twin of a PUT endpoint. Its other parameters and its marks (invalid_is_400) are the
    endpoint's."""
    signature = inspect.signature(endpoint, eval_str=True)
    parameters = [
        parameter.replace(annotation=body) if parameter.name == "body" else parameter
        for parameter in signature.parameters.values()
    ]

    @functools.wraps(endpoint)
    async def twin(*args: Any, **kwargs: Any) -> R:
        return await endpoint(*args, **kwargs)

    twin.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    twin.__name__ = twin.__qualname__ = name
    twin.__doc__ = doc
    return twin


def add_patch_route(
    router: APIRouter,
    put: Callable[..., Awaitable[R]],
    body: type[BaseModel],
    *,
    summary: str,
    description: str | None = None,
) -> Callable[..., Awaitable[R]]:
    """Serve PATCH where the endpoint `put` serves PUT on `router`, with the partial `body`: the
    same path, response model, status and documented responses, named partial_<the PUT's name>.
    The endpoint that serves it (with_body) is returned."""
    route = next(
        r
        for r in router.routes
        if isinstance(r, APIRoute) and r.endpoint is put and "PUT" in (r.methods or ())
    )
    endpoint = with_body(put, body, f"partial_{route.name}")
    router.add_api_route(
        route.path.removeprefix(router.prefix),
        endpoint,
        methods=["PATCH"],
        response_model=route.response_model,
        status_code=route.status_code,
        summary=summary,
        description=description,
        responses=route.responses,
    )
    return endpoint
