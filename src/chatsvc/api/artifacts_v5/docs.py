"""POST /docs of the artifacts-v5 face, composed from what the code declares: the domain catalog
(model docstrings and columns, the kind registry) for entities and kinds, and the app's own
OpenAPI document and route dependencies for operations and permissions. Nothing here is written
by hand, so it cannot drift from the code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

import chatsvc.artifacts
from chatsvc.api.artifacts_v5.deps import face_admin
from chatsvc.api.artifacts_v5.schemas import (
    ChatDocsResponse,
    DocsApiResponse,
    DocsField,
    DocsResponse,
    OperationInfo,
)
from chatsvc.artifacts import catalog
from chatsvc.artifacts.catalog import EntityDoc

PREFIX = "/api/v5/artifacts/chat"
ALL_ROLES = ["admin", "member"]


def _needs_admin(dependant: Dependant) -> bool:
    return any(
        dependency.call is face_admin or _needs_admin(dependency)
        for dependency in dependant.dependencies
    )


def _roles(routes: Sequence[BaseRoute]) -> dict[str, list[str]]:
    """Per operation id (the route's name), the roles its dependencies admit."""
    return {
        route.name: ["admin"] if _needs_admin(route.dependant) else ALL_ROLES
        for route in routes
        if isinstance(route, APIRoute) and route.include_in_schema
    }


def operations(app: FastAPI, routes: Sequence[BaseRoute]) -> list[OperationInfo]:
    """The face's operations as the OpenAPI document declares them, with the roles of the
    face's `routes`."""
    roles = _roles(routes)
    found = []
    document = app.openapi()
    schemes = document.get("components", {}).get("securitySchemes", {})
    for path, item in document.get("paths", {}).items():
        if not path.startswith(PREFIX):
            continue
        for method, operation in item.items():
            statuses = sorted(operation.get("responses", {}))
            found.append(
                OperationInfo(
                    operation_id=operation.get("operationId", ""),
                    method=method.upper(),
                    path=path,
                    summary=operation.get("summary", ""),
                    description=operation.get("description", ""),
                    roles=roles.get(operation.get("operationId", ""), ALL_ROLES),
                    success_status=next((s for s in statuses if s.startswith("2")), ""),
                    statuses=statuses,
                    headers=[
                        *_security_headers(schemes, operation),
                        *(
                            p["name"]
                            for p in operation.get("parameters", [])
                            if p.get("in") == "header"
                        ),
                    ],
                )
            )
    return found


def _security_headers(schemes: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    """The headers an operation's security schemes read (X-Api-Key, Authorization)."""
    names = [name for requirement in operation.get("security", []) for name in requirement]
    headers = []
    for name in names:
        scheme = schemes.get(name, {})
        if scheme.get("type") == "apiKey" and scheme.get("in") == "header":
            headers.append(str(scheme["name"]))
        elif scheme.get("type") == "http":
            headers.append("Authorization")
    return headers


def permissions(app: FastAPI, ops: list[OperationInfo]) -> list[OperationInfo]:
    """Who may call what: each operation's roles, and the rules its body states (a field that
    needs a role says so in its description)."""
    schemas = app.openapi().get("components", {}).get("schemas", {})
    found = []
    for op in ops:
        rules = [f"{' or '.join(op.roles)} keys"]
        body = _request_schema(app, op)
        for name, prop in schemas.get(body, {}).get("properties", {}).items():
            text = str(prop.get("description", ""))
            if "admin keys only" in text:
                rules.append(f"`{name}`: admin keys only")
        found.append(op.model_copy(update={"description": "; ".join(rules) + "."}))
    return found


def _request_schema(app: FastAPI, op: OperationInfo) -> str:
    operation = app.openapi()["paths"][op.path][op.method.lower()]
    ref: str = (
        operation.get("requestBody", {})
        .get("content", {})
        .get("application/json", {})
        .get("schema", {})
        .get("$ref", "")
    )
    return ref.rsplit("/", 1)[-1]


def _doc(entity: EntityDoc) -> DocsResponse:
    return DocsResponse(
        id=entity.id,
        name=entity.name,
        type=entity.type,
        description=entity.description,
        fields=[
            DocsField(name=f.name, type=f.type, required=f.required, description=f.description)
            for f in entity.fields
        ],
    )


def compose(app: FastAPI, routes: Sequence[BaseRoute]) -> ChatDocsResponse:
    entries = [_doc(entity) for entity in catalog.entities()]
    resources = [_doc(kind) for kind in catalog.kinds()]
    ops = operations(app, routes)
    info: dict[str, Any] = app.openapi().get("info", {})
    return ChatDocsResponse(
        name="chat artifacts",
        type="api face artifacts-v5",
        description=" ".join((chatsvc.artifacts.__doc__ or "").split()),
        entries=entries,
        resources=resources,
        permissions=permissions(app, ops),
        api_operations=ops,
        page_metadata=DocsApiResponse(
            title=str(info.get("title", "")),
            version=str(info.get("version", "")),
            openapi=str(app.openapi().get("openapi", "")),
            operation_count=len(ops),
            entity_count=len(entries),
            kind_count=len(resources),
        ),
    )


def find(docs: ChatDocsResponse, entity_id: str) -> DocsResponse | None:
    """The entity or kind named `entity_id`, if there is one."""
    return next((d for d in [*docs.entries, *docs.resources] if d.id == entity_id), None)
