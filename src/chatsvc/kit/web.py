"""HTTP mechanisms every face shares: the settings, pagination parameters and envelopes, routes
served with and without the trailing slash (documenting 401 and 403), how a route documents its
error statuses, and the mapping of domain errors to one body (the one place where an error
becomes an HTTP status)."""

from __future__ import annotations

import email.message
import logging
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from functools import cache
from typing import Annotated, Any, Generic, NamedTuple, Self, TypeVar

from fastapi import Depends, FastAPI, Query, Request, Response, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, APIRouter
from pydantic import BaseModel, Field, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from chatsvc.config import Settings
from chatsvc.kit.db import is_lock_error
from chatsvc.kit.errors import (
    ChatsvcError,
    Conflict,
    FieldError,
    Forbidden,
    Gone,
    InternalError,
    Invalid,
    NotFound,
    Unauthenticated,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from chatsvc.kit.filtering import filter_schema
from chatsvc.kit.pagination import Page, PageParams

logger = logging.getLogger("chatsvc.errors")
T = TypeVar("T")
R = TypeVar("R")


# --- settings ------------------------------------------------------------------------------------


async def get_settings(request: Request) -> Settings:
    """The app's settings (set by create_app, before any request)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


# --- pagination ----------------------------------------------------------------------------------


async def page_params(
    request: Request,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")] = 1,
    page_size: Annotated[
        int | None,
        Query(ge=1, le=1_000_000, description="Results per page (capped by the server)."),
    ] = None,
) -> PageParams:
    settings: Settings = request.app.state.settings
    size = min(page_size or settings.page_size_default, settings.page_size_max)
    return PageParams(page=page, page_size=size)


PageDep = Annotated[PageParams, Depends(page_params)]


def _page_url(request: Request, page: int) -> str:
    return str(request.url.include_query_params(page=page))


def envelope(request: Request, page: Page[T], results: Iterable[Any]) -> dict[str, Any]:
    return {
        "count": page.total,
        "next": _page_url(request, page.params.page + 1) if page.has_next else None,
        "previous": _page_url(request, page.params.page - 1) if page.has_previous else None,
        "results": list(results),
    }


class PageOut(BaseModel, Generic[T]):
    """The `{count, next, previous, results}` envelope of a paginated list; a face names each
    list's page (`class AssistantPage(PageOut[AssistantOut])`) so the OpenAPI document does."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]

    @classmethod
    def of(cls, request: Request, page: Page[Any], results: Iterable[Any] | None = None) -> Self:
        """One page of a list: `results` (default: the page's items) validated as the page's
        item model, and the absolute URLs of the pages around it."""
        return cls.model_validate(
            envelope(request, page, page.items if results is None else results)
        )


def page_items(
    request: Request, response: Response, page: Page[T], out: Callable[[T], R]
) -> list[R]:
    """A plain-array list: the page's items as `out` makes them, its total and links set as
    headers on `response`."""
    set_list_headers(request, response, page)
    return [out(item) for item in page.items]


def list_response(request: Request, page: Page[Any], bodies: list[Any]) -> JSONResponse:
    """A plain-array list whose JSON a face builds itself on purpose (a sparse fieldset: each
    item keeps only the fields asked for, which no response model describes), with its page's
    headers."""
    response = JSONResponse(bodies)
    set_list_headers(request, response, page)
    return response


@cache
def sparse(model: type[BaseModel]) -> Any:
    """The response model of an operation that takes a sparse fieldset (`field=`): the whole
    `model`, or only the fields asked for (a `...Fieldset` schema: the same properties, none
    required), so the OpenAPI document allows what `field=` answers."""
    fields: dict[str, Any] = {
        name: (info.annotation, Field(default=None, description=info.description))
        for name, info in model.model_fields.items()
    }
    partial: type[BaseModel] = create_model(
        f"{model.__name__}Fieldset",
        __doc__=f"The fields of {model.__name__} a sparse fieldset (`field=`) asked for.",
        **fields,
    )
    return model | partial


def set_list_headers(request: Request, response: Response, page: Page[T]) -> None:
    """For plain-array lists: the total in X-Total-Count and RFC 8288 next/prev links."""
    response.headers["X-Total-Count"] = str(page.total)
    links = []
    if page.has_next:
        links.append(f'<{_page_url(request, page.params.page + 1)}>; rel="next"')
    if page.has_previous:
        links.append(f'<{_page_url(request, page.params.page - 1)}>; rel="prev"')
    if links:
        response.headers["Link"] = ", ".join(links)


# --- routes --------------------------------------------------------------------------------------


class ChatsvcRoute(APIRoute):
    """A route that knows which status its body validation errors get (the seeds say 400 on some
    endpoints; elsewhere 422), and that reads a JSON body only when it is sent as one
    (`check_json_body`)."""

    validation_status: int = 422
    #: the path as written in the seed, also on the alternate-slash twin (metrics, logs)
    canonical_path: str | None = None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        body = self.body_field
        if body is None or isinstance(body.field_info, params.Form):
            return handler

        async def json_only(request: Request) -> Response:
            await check_json_body(request)
            return await handler(request)

        return json_only


#: byte-order marks, and what a body that starts with one is encoded as
_BOMS = (
    (b"\xef\xbb\xbf", "UTF-8 with a byte-order mark"),
    (b"\xff\xfe", "UTF-16 or UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
)


async def check_json_body(request: Request) -> None:
    """A request body is read as JSON only when it is labelled JSON (`application/json` or a
    `+json` type, in UTF-8): anything else is 415, never guessed at. JSON on the wire is UTF-8
    without a byte-order mark (RFC 8259): a BOM or UTF-16/32 text is 400. An empty body is left
    to the route (a required body is then missing: 422)."""
    content = await request.body()
    if not content:
        return
    raw_type = request.headers.get("content-type")
    message = email.message.Message()
    message["content-type"] = raw_type or ""
    subtype = message.get_content_subtype()
    is_json = message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )
    if not raw_type or not is_json:
        got = f"Content-Type {raw_type!r}" if raw_type else "no Content-Type"
        raise StarletteHTTPException(
            415, f"The body must be JSON, sent with Content-Type: application/json ({got})."
        )
    charset = message.get_content_charset()
    if charset is not None and charset.replace("_", "-") not in ("utf-8", "utf8"):
        raise StarletteHTTPException(
            415, f"JSON bodies are UTF-8 (Content-Type: application/json; charset={charset})."
        )
    encoding = next((name for bom, name in _BOMS if content.startswith(bom)), None)
    if encoding is None and b"\x00" in content[:4]:
        encoding = "UTF-16 or UTF-32"
    if encoding is not None:
        message_text = f"The body is {encoding}; JSON bodies are UTF-8 without a byte-order mark."
        raise Invalid(message_text, code="invalid_encoding")


F = TypeVar("F", bound=Callable[..., Any])


def invalid_is_400(endpoint: F) -> F:
    """Mark an endpoint whose seed documents 400 (not 422) for an invalid body. Put it under the
    route decorator."""
    endpoint._validation_status = 400  # type: ignore[attr-defined]
    return endpoint


class RouteSpec(NamedTuple):
    """One route declared as data: of a route family (the routes a factory makes for each kind
    of a resource), or of a face whose routes read best as a table. Its description is
    `description`, else the endpoint's docstring."""

    method: str
    path: str
    endpoint: Callable[..., Any]
    response_model: Any
    status_code: int
    name: str
    summary: str
    responses: Responses | None = None
    description: str | None = None


def operation_id(route: APIRoute) -> str:
    """SDK method names: the endpoint's name (list_assistants, create_lesson, ...)."""
    return route.name


class SlashRouter(APIRouter):
    """Serves each path exactly as written and also with (or without) the trailing slash, never
    redirecting: a 307 makes many clients drop the body of a POST. Only the written form is in the
    OpenAPI document."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("route_class", ChatsvcRoute)
        kwargs.setdefault("generate_unique_id_function", operation_id)
        # Every route of the service authenticates, so every one may answer 401 and 403.
        kwargs.setdefault("responses", ERROR_RESPONSES)
        super().__init__(**kwargs)

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        validation_status: int = getattr(endpoint, "_validation_status", 422)
        if validation_status == 400:
            responses = dict(kwargs.get("responses") or {})
            responses.setdefault(400, {"model": ErrorBody, "description": "Invalid input."})
            kwargs["responses"] = responses
        super().add_api_route(path, endpoint, **kwargs)
        self._mark(validation_status, path)
        alternate = path[:-1] if path.endswith("/") else path + "/"
        if alternate and alternate != "/":
            alt = dict(kwargs, include_in_schema=False)
            alt["name"] = f"{kwargs.get('name') or endpoint.__name__}_alt"
            alt["operation_id"] = None
            super().add_api_route(alternate, endpoint, **alt)
            self._mark(validation_status, path)

    def add_routes(self, specs: Iterable[RouteSpec]) -> None:
        for spec in specs:
            self.add_api_route(
                spec.path,
                spec.endpoint,
                methods=[spec.method],
                response_model=spec.response_model,
                status_code=spec.status_code,
                name=spec.name,
                summary=spec.summary,
                responses=spec.responses,
                description=spec.description,
            )

    def _mark(self, validation_status: int, canonical: str) -> None:
        route = self.routes[-1]
        if isinstance(route, ChatsvcRoute):
            route.validation_status = validation_status
            route.canonical_path = self.prefix + canonical


def routes_of(router: APIRouter) -> Iterator[BaseRoute]:
    """A router's routes, those of the routers it includes in their place."""
    for route in router.routes:
        included = getattr(route, "original_router", None)
        if isinstance(included, APIRouter):
            yield from routes_of(included)
        else:
            yield route


def add_routes_of(app: FastAPI, router: APIRouter) -> None:
    """Add a face's routes to the app's own router. `include_router` keeps the face's router and
    walks the tree of included routers on every request (a fifth of a plain request's CPU with
    our ~230 routes); the faces' routers add nothing at inclusion (no prefix, tags or
    dependencies), so each route is made again on the app's router, as it was declared (and
    with the app's dependency overrides, which tests use)."""
    for route in routes_of(router):
        if not isinstance(route, APIRoute):
            app.router.routes.append(route)
            continue
        app.router.add_api_route(
            route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=route.tags,
            dependencies=route.dependencies,
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=route.responses,
            deprecated=route.deprecated,
            methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema,
            response_class=route.response_class,
            name=route.name,
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=route.generate_unique_id_function,
            route_class_override=type(route),
        )
        made = app.router.routes[-1]
        if isinstance(route, ChatsvcRoute) and isinstance(made, ChatsvcRoute):
            made.validation_status = route.validation_status
            made.canonical_path = route.canonical_path


# --- errors --------------------------------------------------------------------------------------


class FieldErrorBody(BaseModel):
    """One problem with the input: where (`field`) and what (`message`)."""

    field: str = Field(description="Where the problem is, e.g. body.temperature or query.page.")
    message: str


class ErrorBody(BaseModel):
    """The one error body of the service."""

    detail: str = Field(description="What went wrong and, where it helps, what to do next.")
    code: str = Field(description="A stable machine-readable code, e.g. not_found, invalid.")
    errors: list[FieldErrorBody] = Field(default_factory=list)
    request_id: str | None = None
    chat_id: int | None = Field(
        default=None,
        description="Only when a turn failed (502, 504, ...) after its chat and user message "
        "were stored: that chat, also in the X-Chat-Id header. Retry with "
        "GET /chats/{id}/?retry=true.",
    )


STATUS_BY_ERROR: dict[type[ChatsvcError], int] = {
    InternalError: 500,
    NotFound: 404,
    Gone: 410,
    Conflict: 409,
    Invalid: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    Unavailable: 503,
    UpstreamError: 502,
    UpstreamTimeout: 504,
}
#: what a route documents besides its success: status -> {"model": ..., "description": ...}
Responses = dict[int | str, dict[str, Any]]


def error_responses(descriptions: Mapping[int, str]) -> Responses:
    """How a route documents the error statuses it may answer: each with the one ErrorBody and
    what it means there, e.g. `error_responses({404: "No such assistant in this workspace."})`."""
    return {
        status: {"model": ErrorBody, "description": text} for status, text in descriptions.items()
    }


ERROR_RESPONSES = error_responses(
    {401: "Missing or unknown API key.", 403: "The key's role does not allow this."}
)
#: what any operation may answer before (or besides) what its route documents: the request as
#: a whole refused by the middleware (kit/middleware.py) or by the route's reading of it
WIRE_ERRORS = error_responses(
    {
        400: "Invalid input: a value the service refuses, or a body that is not UTF-8 JSON.",
        422: "Invalid path, query or body parameter.",
        431: "Request headers larger than CHATSVC_MAX_HEADER_BYTES.",
    }
)
#: ... and what an operation that takes a body may answer besides
BODY_ERRORS = error_responses(
    {
        413: "Request body larger than CHATSVC_MAX_BODY_BYTES.",
        415: "The body is not sent as JSON (Content-Type: application/json, UTF-8).",
    }
)


def error_response(
    request: Request,
    status: int,
    detail: str,
    code: str,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
    *,
    chat_id: int | None = None,
) -> JSONResponse:
    body = ErrorBody(
        detail=detail,
        code=code,
        errors=[FieldErrorBody(field=e.field, message=e.message) for e in errors],
        request_id=request.scope.get("state", {}).get("request_id"),
        chat_id=chat_id,
    )
    if chat_id is not None:
        headers = {**(headers or {}), "X-Chat-Id": str(chat_id)}
    # chat_id is left out where no chat is named (every error but a failed turn's).
    shown = body.model_dump(exclude={"chat_id"} if chat_id is None else None)
    return JSONResponse(shown, status_code=status, headers=headers)


def _location(loc: Sequence[int | str]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif parts:
            parts.append(f".{item}")
        else:
            parts.append(str(item))
    return "".join(parts)


def status_of(error: ChatsvcError) -> int:
    """The HTTP status of a domain error (400 for one no class below names)."""
    return next((s for t, s in STATUS_BY_ERROR.items() if isinstance(error, t)), 400)


def status_of_kind(kind: str) -> int:
    """The HTTP status of an error that crossed a process boundary by its `kind`."""
    return next((s for t, s in STATUS_BY_ERROR.items() if t.kind == kind), 400)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ChatsvcError)
    return domain_error_response(request, exc)


def domain_error_response(request: Request, exc: ChatsvcError) -> JSONResponse:
    """The response of a domain error: its status, the one body, the chat a failed turn names."""
    status = status_of(exc)
    headers = {"WWW-Authenticate": 'Bearer realm="chatsvc"'} if status == 401 else None
    # Services name the input field; on the wire it is a body field, as validation errors say.
    errors = [
        e
        if e.field.startswith(("query.", "path.", "header."))
        else FieldError(f"body.{e.field}", e.message)
        for e in exc.errors
    ]
    return error_response(
        request, status, exc.message, exc.code, errors, headers, chat_id=exc.chat_id
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    route = request.scope.get("route")
    errors = []
    in_body = True
    for error in exc.errors():
        in_body = in_body and bool(error.get("loc")) and error["loc"][0] == "body"
        loc = [p for p in error.get("loc", ()) if not str(p).startswith("function-after")]
        message = str(error.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        errors.append(FieldError(_location(loc), message))
    # The seeds' 400 is for an invalid body; a malformed path or query stays 422 everywhere.
    status = route.validation_status if isinstance(route, ChatsvcRoute) and in_body else 422
    summary = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    return error_response(request, status, f"Invalid input: {summary}", "invalid", errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
    }
    detail = str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No endpoint {request.url.path}; see /docs for the API."
    return error_response(
        request,
        exc.status_code,
        detail,
        codes.get(exc.status_code, "error"),
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    if is_lock_error(exc):
        # Embedded SQLite: writers held the database past the busy timeout and the retries of
        # the unit of work (kit/db.py). Nothing was kept; the request may be sent again.
        logger.warning("database locked: %s", exc)
        return error_response(
            request,
            503,
            "The database is busy with other writes; nothing was changed. Retry shortly.",
            "database_busy",
            headers={"Retry-After": "1"},
        )
    logger.exception("unhandled error", exc_info=exc)
    return error_response(
        request, 500, "Internal error; the request id identifies it in the logs.", "internal"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ChatsvcError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


# --- OpenAPI -------------------------------------------------------------------------------------


def document_errors(app: FastAPI) -> None:
    """Make the OpenAPI document show the real error body: validation errors (422) use ErrorBody
    instead of FastAPI's default shape, which this service never sends."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        components.setdefault(
            "FieldErrorBody",
            FieldErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"),
        )
        components.get("ErrorBody", {}).pop("$defs", None)
        ref = {"$ref": "#/components/schemas/ErrorBody"}
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                invalid = operation.get("responses", {}).get("422")
                if invalid is not None:
                    invalid["description"] = "Invalid path, query or body parameter."
                    invalid["content"] = {"application/json": {"schema": ref}}
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        document_wire_errors(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_wire_errors(schema: dict[str, Any]) -> None:
    """Every operation documents the statuses any request may get, once, here (WIRE_ERRORS, and
    BODY_ERRORS where it takes a body), besides those its route declares."""
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            errors = dict(WIRE_ERRORS)
            if "requestBody" in operation:
                errors.update(BODY_ERRORS)
            responses = operation["responses"]
            for status, spec in errors.items():
                responses.setdefault(
                    str(status),
                    {
                        "description": spec["description"],
                        "content": {"application/json": {"schema": ref}},
                    },
                )


def day_query(description: str, example: str) -> Any:
    """A YYYY-MM-DD query parameter, documented as a date (or empty: no filter) but read as text
    and parsed by parse_day, so a malformed one is a 400 naming the parameter, as the seeds
    document, rather than the 422 of other malformed query parameters."""
    return Query(
        description=f"{description} (YYYY-MM-DD; whole days in UTC, this day included).",
        examples=[example],
        json_schema_extra=filter_schema({"type": "string", "format": "date"}),
    )
