"""A page of another origin (a web app that embeds chatsvc) calling the API from headless
Chromium, with the origin allowed by CHATSVC_CORS_ORIGINS: the headers the docs tell browsers to
read (X-Chat-Id, X-Thread-Uuid) are readable by its script, on a stream and on a failed turn."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.async_api import Browser
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from chatsvc.config import GeneratorApp
from tests.fakes._threaded import ThreadedServer
from tests.fixtures.app import live_tenant, make_settings
from tests.fixtures.chats import closed_port

PAGE = "<!doctype html><html><head><title>Another app</title></head><body>app</body></html>"

#: what the other origin's script does: a fetch with the key, then the headers it can read
FETCH = """async ({url, key, body, accept}) => {
  const response = await fetch(url, {
    method: "POST",
    headers: {"X-Api-Key": key, "Content-Type": "application/json", "Accept": accept},
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    chatId: response.headers.get("X-Chat-Id"),
    threadUuid: response.headers.get("X-Thread-Uuid"),
    buffering: response.headers.get("X-Accel-Buffering"),
    text,
  };
}"""


@contextmanager
def other_origin() -> Iterator[str]:
    """A plain page served from another loopback origin (another port)."""

    async def page(_request: Any) -> HTMLResponse:
        return HTMLResponse(PAGE)

    server = ThreadedServer(
        Starlette(routes=[Route("/", page)]), host="127.0.0.1", port=0, name="other origin"
    )
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


async def test_a_page_of_another_origin_reads_the_chat_id_headers(
    browser: Browser, live_pg_url: str
) -> None:
    with other_origin() as origin:
        down = GeneratorApp.model_validate(
            {"kind": "openai", "base_url": f"http://127.0.0.1:{closed_port()}/v1", "model": "m"}
        )
        settings = make_settings(
            live_pg_url,
            cors_origins=[origin],
            generator_apps={"offline": GeneratorApp(kind="offline"), "down": down},
        )
        async with live_tenant(settings) as live:
            made = await live.admin.post("/assistants/", json={"description": "Guide"})
            broken = await live.admin.post(
                "/assistants/", json={"description": "Broken", "generation_config": "down"}
            )
            assert made.status_code == broken.status_code == 201, (made.text, broken.text)
            page = await (await browser.new_context()).new_page()
            await page.goto(f"{origin}/")
            assert await page.title() == "Another app"

            def call(path: str, body: dict[str, Any], accept: str) -> dict[str, Any]:
                return {
                    "url": f"{live.base_url}{path}",
                    "key": live.admin_key,
                    "body": body,
                    "accept": accept,
                }

            # A streamed new chat: the script reads which chat the stream is in.
            streamed = await page.evaluate(
                FETCH,
                call(
                    f"/assistants/{made.json()['id']}/chats_stream/",
                    {"message": "hello"},
                    "text/event-stream",
                ),
            )
            assert streamed["status"] == 201, streamed
            assert streamed["chatId"] and "event: message.completed" in streamed["text"]
            assert f'"chat_id":{streamed["chatId"]}' in streamed["text"]
            # A header the docs do not send browsers to is not exposed.
            assert streamed["buffering"] is None

            # A failed blocking turn: the script reads the chat it left, to retry it.
            failed = await page.evaluate(
                FETCH,
                call(f"/assistants/{broken.json()['id']}/", {"message": "hi"}, "application/json"),
            )
            assert failed["status"] == 502, failed
            assert failed["chatId"] and f'"chat_id":{failed["chatId"]}' in failed["text"]

            # The threads face names its thread the same way.
            thread = await page.evaluate(
                FETCH, call("/api/chat/stream/", {"input": "hello"}, "text/event-stream")
            )
            assert thread["status"] == 200, thread
            assert thread["threadUuid"] and thread["threadUuid"] in thread["text"]
