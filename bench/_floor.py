"""The floor of bench/reads.py: a bare FastAPI + asyncpg app doing what chatsvc's reads must do at
the least (check the API key by its hash, read the row, answer JSON), served like chatsvc (one
uvicorn process). Run by bench/reads.py: `python bench/_floor.py <database dsn> <port>`."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import uvicorn
from fastapi import FastAPI, Header, HTTPException

KEY = "SELECT workspace_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
ASSISTANT = "SELECT * FROM assistants WHERE id = $1 AND workspace_id = $2"
CHAT = "SELECT * FROM chats WHERE id = $1 AND workspace_id = $2"
MESSAGES = "SELECT * FROM messages WHERE chat_id = $1 ORDER BY msg_num"


def app_for(dsn: str) -> FastAPI:
    pool: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pool["db"] = await asyncpg.create_pool(dsn, min_size=10, max_size=20)
        yield
        await pool["db"].close()

    app = FastAPI(lifespan=lifespan)

    async def workspace_of(key: str) -> int:
        digest = hashlib.sha256(key.encode()).hexdigest()
        found = await pool["db"].fetchval(KEY, digest)
        if found is None:
            raise HTTPException(401)
        return int(found)

    def jsonable(row: Any) -> dict[str, Any]:
        return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(row).items()}

    @app.get("/assistants/{assistant_id}/")
    async def assistant(assistant_id: int, x_api_key: str = Header()) -> dict[str, Any]:
        row = await pool["db"].fetchrow(ASSISTANT, assistant_id, await workspace_of(x_api_key))
        if row is None:
            raise HTTPException(404)
        return jsonable(row)

    @app.get("/chats/{chat_id}/")
    async def chat(chat_id: int, x_api_key: str = Header()) -> dict[str, Any]:
        row = await pool["db"].fetchrow(CHAT, chat_id, await workspace_of(x_api_key))
        if row is None:
            raise HTTPException(404)
        body = jsonable(row)
        body["messages"] = [jsonable(m) for m in await pool["db"].fetch(MESSAGES, chat_id)]
        return body

    return app


if __name__ == "__main__":
    dsn, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(app_for(dsn), host="127.0.0.1", port=port, log_level="warning", access_log=False)
