"""The `chatsvc` command: serve, worker, migrate, openapi, create-workspace, create-api-key."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from chatsvc.auth import service as auth_service
from chatsvc.auth.bootstrap import bootstrap
from chatsvc.auth.models import Role
from chatsvc.config import Settings, get_settings
from chatsvc.kit.db import create_engine, create_sessionmaker, unit_of_work
from chatsvc.kit.errors import ChatsvcError

T = TypeVar("T")


def _in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from chatsvc.migrate import upgrade

    upgrade(settings.database_url, args.revision)
    print(f"database migrated to {args.revision}", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    result = _in_transaction(settings, lambda s: bootstrap(s, settings))
    host = args.host or settings.host
    port = args.port or settings.port
    default_workers = (os.cpu_count() or 1) if settings.redis_url else 1
    workers = args.workers or settings.workers or default_workers
    if workers > 1 and not settings.redis_url:
        print(
            f"error: --workers {workers} needs CHATSVC_REDIS_URL: the embedded stream broker and "
            "job queue live in one process. Serve with one worker, or configure Redis.",
            file=sys.stderr,
        )
        return 2
    if result is not None:
        _print_bootstrap(result.generated_key, result.demo_assistant_id, host, port)
    uvicorn.run(
        "chatsvc.main:create_app",
        factory=True,
        host=host,
        port=port,
        # Each worker is a full replica: the broker and the database make them agree.
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,  # chatsvc writes its own JSON access log
        proxy_headers=True,
    )
    return 0


def _print_bootstrap(key: str | None, demo_id: int | None, host: str, port: int) -> None:
    base = f"http://{host}:{port}"
    lines = ["", "chatsvc: first start, created workspace 'default' with admin user 'admin'."]
    if key:
        lines += [
            "Your admin API key (shown once; keep it):",
            "",
            f"    {key}",
            "",
        ]
    else:
        lines.append("The admin API key is the one in CHATSVC_BOOTSTRAP_API_KEY.")
    # Double quotes: the shell expands the variable when no key is shown.
    shown = key or "$CHATSVC_BOOTSTRAP_API_KEY"
    lines.append(f'Try:  curl -H "X-Api-Key: {shown}" {base}/assistants/')
    if demo_id is not None:
        lines.append(f"A demo assistant is ready: {base}/assistants/{demo_id}/")
    lines.append(f"Chat page: {base}/ui/ (paste the key there)")
    lines.append(f"API docs: {base}/docs")
    print("\n".join(lines) + "\n", flush=True)


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> int:
    from chatsvc.main import create_app

    document = json.dumps(create_app(settings).openapi(), indent=2)
    if args.output == "-":
        print(document)
    else:
        Path(args.output).write_text(document + "\n")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_create_workspace(args: argparse.Namespace, settings: Settings) -> int:
    workspace = _in_transaction(
        settings, lambda s: auth_service.create_workspace(s, args.slug, args.name)
    )
    print(f"created workspace {workspace.slug} (id {workspace.id})")
    return 0


def cmd_create_api_key(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> str:
        workspace = await auth_service.get_workspace_by_slug(session, args.workspace)
        _key, raw = await auth_service.create_api_key(
            session,
            workspace.id,
            Role(args.role),
            username=args.user,
            full_name=args.full_name or "",
            name=args.name or "",
        )
        return raw

    raw = _in_transaction(settings, work)
    print(raw)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.redis_url:
        print(
            "chatsvc worker: CHATSVC_REDIS_URL is not set. The worker takes its jobs from Redis; "
            "without Redis (the embedded default) `chatsvc serve` runs jobs in its own process "
            "and no worker is needed.",
            file=sys.stderr,
        )
        return 2
    from chatsvc import worker

    worker.run(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatsvc", description="chatsvc service and admin tool")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API (first start bootstraps an admin key)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--workers",
        type=int,
        help="processes serving the API (default CHATSVC_WORKERS; unset: 1 embedded, one per "
        "core with Redis)",
    )
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply the database migrations")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(func=cmd_migrate)

    openapi = sub.add_parser("openapi", help="write the OpenAPI document")
    openapi.add_argument("--output", "-o", default="openapi.json")
    openapi.set_defaults(func=cmd_openapi)

    workspace = sub.add_parser("create-workspace", help="create a workspace")
    workspace.add_argument("slug")
    workspace.add_argument("--name")
    workspace.set_defaults(func=cmd_create_workspace)

    key = sub.add_parser("create-api-key", help="create an API key and print it once")
    key.add_argument("--workspace", default="default")
    key.add_argument("--role", choices=[r.value for r in Role], default=Role.MEMBER.value)
    key.add_argument("--user", help="username the key acts as (created if missing)")
    key.add_argument("--full-name")
    key.add_argument("--name", help="a label for the key")
    key.set_defaults(func=cmd_create_api_key)

    worker = sub.add_parser(
        "worker", help="run the background job worker (needs CHATSVC_REDIS_URL)"
    )
    worker.set_defaults(func=cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValueError as exc:
        print(f"chatsvc: invalid configuration: {exc}", file=sys.stderr)
        return 2
    try:
        code: int = args.func(args, settings)
    except ChatsvcError as exc:
        print(f"chatsvc: {exc.message}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
