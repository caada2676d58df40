"""The chat page at /ui/ in a real browser (Debian's Chromium, driven by Playwright) against a
real server on loopback with the offline generator: connect with a key, pick an assistant, see
an answer stream in, like it, stop one, reload one, come back after a page reload mid-answer,
and read errors in words. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from chatsvc.config import GeneratorApp
from tests.fakes.openai_server import running_openai_server
from tests.fixtures.app import Live, live_tenant, make_settings
from tests.fixtures.chats import app_for, closed_port, numbered

ARTIFACTS = Path(os.environ.get("CHATSVC_TEST_ARTIFACTS", "test-artifacts"))
QUESTION = "What is chatsvc?"
ANSWER = (
    "chatsvc is a self-hosted backend for chat assistants: teams configure them, users talk to "
    "them, operators review what was said."
)
WAIT_MS = 20_000


@pytest.fixture
async def site(live_pg_url: str) -> AsyncIterator[tuple[Live, int]]:
    # Slow words, so that a person (and this test) can stop or leave an answer halfway.
    settings = make_settings(
        live_pg_url,
        generator_apps={"offline": GeneratorApp(kind="offline", token_delay_seconds=0.12)},
    )
    async with live_tenant(settings) as live:
        response = await live.admin.post(
            "/assistants/",
            json={
                "description": "Product guide",
                "info": "Answers questions about chatsvc",
                "initial_message": "Hello! Ask me about chatsvc.",
                "max_msg_length": 200,
                "colors": {"primaryColor": "#0b7a53", "secondaryColor": "#444444"},
            },
        )
        assert response.status_code == 201, response.text
        assistant: int = response.json()["id"]
        response = await live.admin.post(
            f"/assistants/{assistant}/common_questions/",
            json={"name": QUESTION, "content": ANSWER},
        )
        assert response.status_code == 201, response.text
        yield live, assistant


async def open_chat(browser: Browser, live: Live, **context: Any) -> Page:
    page = await (await browser.new_context(**context)).new_page()
    await page.goto(f"{live.base_url}/ui/")
    await page.get_by_label("API key").fill(live.admin_key)
    await page.get_by_role("button", name="Connect").click()
    await page.get_by_role("button", name="Product guide").click()
    await expect(page.get_by_role("log")).to_contain_text("Hello! Ask me about chatsvc.")
    return page


async def ask(page: Page, text: str) -> None:
    box = page.get_by_label("Your message")
    await box.fill(text)
    await box.press("Enter")


def answers(page: Page) -> Any:
    return page.locator(".msg.assistant[data-message-id]")


async def stored_answers(live: Live, chat: int) -> list[dict[str, Any]]:
    response = await live.admin.get(f"/chats/{chat}/full/")
    assert response.status_code == 200, response.text
    # The greeting (initial_message) answers no user message.
    messages = response.json()["messages"]
    return [m for m in messages if m["role"] == "assistant" and m["usr_msg_num"] is not None]


async def chat_of(page: Page) -> int:
    saved = await page.evaluate("JSON.parse(sessionStorage.getItem('chatsvc.chat'))")
    return int(saved["id"])


async def test_a_person_chats_likes_stops_and_reloads_an_answer(
    browser: Browser, site: tuple[Live, int]
) -> None:
    live, _assistant = site
    page = await open_chat(browser, live)
    assert await page.evaluate("location.href.includes('key')") is False
    assert await page.evaluate("sessionStorage.getItem('chatsvc.key')") == live.admin_key

    # The answer streams in: first part of it, then all of it, with its source.
    await ask(page, QUESTION)
    streaming = page.locator(".msg.assistant.streaming .text")
    await expect(streaming).to_contain_text("chatsvc is", timeout=WAIT_MS)
    await expect(answers(page).last.locator(".text")).to_have_text(ANSWER, timeout=WAIT_MS)
    await expect(answers(page).last.locator(".refs li")).to_have_text([QUESTION])
    chat = await chat_of(page)

    # Like it: the API has it.
    await answers(page).last.get_by_role("button", name="Like this answer", exact=True).click()
    await expect(
        answers(page).last.get_by_role("button", name="Like this answer", exact=True)
    ).to_have_attribute("aria-pressed", "true")
    assert (await stored_answers(live, chat))[-1]["like"] is True

    # Stop one halfway: the partial answer stays, marked stopped, stored as cancelled.
    await ask(page, QUESTION)
    await expect(streaming).to_contain_text("self-hosted", timeout=WAIT_MS)
    await page.get_by_role("button", name="Stop").click()
    await expect(answers(page).last).to_contain_text("Stopped", timeout=WAIT_MS)
    stopped = (await stored_answers(live, chat))[-1]
    assert stopped["status"] == "cancelled"
    assert ANSWER.startswith(stopped["content"]) and stopped["content"] != ANSWER

    # Reload it: written again in full, the stopped one replaced.
    await answers(page).last.get_by_role("button", name="Write this answer again").click()
    await expect(answers(page).last.locator(".text")).to_have_text(ANSWER, timeout=WAIT_MS)
    await expect(answers(page)).to_have_count(2)
    visible = [m for m in await stored_answers(live, chat) if m["visible"]]
    assert [m["content"] for m in visible] == [ANSWER, ANSWER]

    await page.screenshot(path=str(ARTIFACTS / "ui-chat.png"), full_page=True)


async def test_after_a_page_reload_the_running_answer_resumes_where_it_was(
    browser: Browser, site: tuple[Live, int]
) -> None:
    live, _assistant = site
    page = await open_chat(browser, live)
    await ask(page, QUESTION)
    await expect(page.locator(".msg.assistant.streaming .text")).to_contain_text(
        "backend", timeout=WAIT_MS
    )

    await page.reload()

    # Back on the same chat, the answer completes once, without a gap or a repeat.
    await expect(answers(page)).to_have_count(1, timeout=WAIT_MS)
    await expect(answers(page).last.locator(".text")).to_have_text(ANSWER, timeout=WAIT_MS)
    await expect(page.locator(".msg.user")).to_have_count(1)
    assert [m["content"] for m in await stored_answers(live, await chat_of(page))] == [ANSWER]


async def test_the_page_enforces_the_length_limit_and_explains_errors_in_words(
    browser: Browser, site: tuple[Live, int]
) -> None:
    live, _assistant = site
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{live.base_url}/ui/")
    await page.get_by_label("API key").fill("not-a-key")
    await page.get_by_role("button", name="Connect").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "The API key was not accepted. Check it and connect again."
    )

    page = await open_chat(browser, live)
    box = page.get_by_label("Your message")
    await box.fill("x" * 250)
    assert len(await box.input_value()) == 200
    await expect(page.locator("#counter")).to_have_text("200 / 200")


async def test_the_page_fits_a_narrow_screen_and_is_served_with_strict_headers(
    browser: Browser, site: tuple[Live, int]
) -> None:
    live, _assistant = site
    page = await open_chat(browser, live, viewport={"width": 360, "height": 740})
    await ask(page, QUESTION)
    await expect(answers(page).last.locator(".text")).to_have_text(ANSWER, timeout=WAIT_MS)
    width = await page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 360
    await page.screenshot(path=str(ARTIFACTS / "ui-narrow.png"), full_page=True)

    async with httpx.AsyncClient(base_url=live.base_url) as anonymous:
        response = await anonymous.get("/ui/")
        assert response.status_code == 200
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert '<label for="api-key">API key</label>' in response.text
        assert (await anonymous.get("/")).headers["location"] == "/ui/"


async def test_tool_calls_show_with_their_arguments_and_results(
    browser: Browser, site: tuple[Live, int]
) -> None:
    live, _assistant = site
    response = await live.admin.post(
        "/tools/scripts/",
        json={
            "name": "adder",
            "description": "Adds two numbers",
            "code": "function main(args) { return {sum: args.a + args.b}; }",
            "parameters": [
                {"name": "a", "description": "a", "type": "number", "required": True},
                {"name": "b", "description": "b", "type": "number", "required": True},
            ],
        },
    )
    assert response.status_code == 201, response.text
    response = await live.admin.post(
        "/assistants/",
        json={"description": "Calculator", "tools": [response.json()["id"]]},
    )
    assert response.status_code == 201, response.text

    page = await (await browser.new_context()).new_page()
    await page.goto(f"{live.base_url}/ui/")
    await page.get_by_label("API key").fill(live.admin_key)
    await page.get_by_role("button", name="Connect").click()
    await page.get_by_role("button", name="Calculator").click()
    await ask(page, 'use adder {"a": 40, "b": 2}')

    tool = page.locator(".msg.tool")
    await expect(tool.locator("summary")).to_have_text("Tool adder answered", timeout=WAIT_MS)
    await tool.locator("summary").click()
    await expect(tool).to_contain_text('arguments: {"a":40,"b":2}')
    await expect(tool).to_contain_text('{"sum": 42}')
    await expect(answers(page).last).to_contain_text('{"sum": 42}', timeout=WAIT_MS)
    await page.screenshot(path=str(ARTIFACTS / "ui-tools.png"), full_page=True)


async def test_a_failed_answer_shows_once_in_words_without_internal_names(
    browser: Browser, live_pg_url: str
) -> None:
    """The generator is down: the person reads one sentence, in the answer's place, naming
    neither the generator app nor its address; the page's own icon is served."""
    port = closed_port()
    down = GeneratorApp.model_validate(
        {"kind": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": "m"}
    )
    settings = make_settings(
        live_pg_url, generator_apps={"offline": GeneratorApp(kind="offline"), "internal-gpt": down}
    )
    async with live_tenant(settings) as live:
        response = await live.admin.post(
            "/assistants/",
            json={"description": "Product guide", "generation_config": "internal-gpt"},
        )
        assert response.status_code == 201, response.text
        page = await (await browser.new_context()).new_page()
        icons: list[int] = []
        page.on(
            "response",
            lambda r: icons.append(r.status) if "favicon" in r.url else None,
        )
        await page.goto(f"{live.base_url}/ui/")
        await page.get_by_label("API key").fill(live.admin_key)
        await page.get_by_role("button", name="Connect").click()
        await page.get_by_role("button", name="Product guide").click()
        await ask(page, "Anyone there?")

        failed = page.locator(".msg.assistant.error .text")
        await expect(failed).to_have_text(
            "The assistant could not answer just now. Send your message again.", timeout=WAIT_MS
        )
        await expect(page.locator("#send")).to_be_enabled()
        assert await page.locator("#alert").is_hidden()  # once: not in the banner too
        shown = await page.locator("body").inner_text()
        assert "internal-gpt" not in shown and str(port) not in shown and "127.0.0.1" not in shown
        assert (await chat_of(page)) > 0
        await page.screenshot(path=str(ARTIFACTS / "ui-error.png"), full_page=True)

        assert icons and set(icons) == {200}
        async with httpx.AsyncClient(base_url=live.base_url) as anonymous:
            icon = await anonymous.get("/favicon.ico")
            assert icon.status_code == 200
            assert icon.headers["content-type"].startswith("image/svg+xml")
            assert icon.content.startswith(b"<svg")


async def test_sources_stay_with_an_answer_resumed_after_a_page_reload(
    browser: Browser, live_pg_url: str
) -> None:
    """The upstream holds the answer after 3 words, so the page is certainly reloaded mid-answer:
    the resumed answer keeps its sources, by name, until it ends (here: stopped)."""
    async with running_openai_server(tokens=numbered(12), hang_after=3) as fake:
        settings = make_settings(
            live_pg_url,
            generator_apps={"offline": GeneratorApp(kind="offline"), "gpt": app_for(fake)},
        )
        async with live_tenant(settings) as live:
            response = await live.admin.post(
                "/assistants/", json={"description": "Product guide", "generation_config": "gpt"}
            )
            assert response.status_code == 201, response.text
            faq = {"name": QUESTION, "content": ANSWER}
            url = f"/assistants/{response.json()['id']}/common_questions/"
            assert (await live.admin.post(url, json=faq)).status_code == 201
            page = await (await browser.new_context()).new_page()
            await page.goto(f"{live.base_url}/ui/")
            await page.get_by_label("API key").fill(live.admin_key)
            await page.get_by_role("button", name="Connect").click()
            await page.get_by_role("button", name="Product guide").click()
            await ask(page, QUESTION)
            streaming = page.locator(".msg.assistant.streaming")
            await expect(streaming.locator(".text")).to_have_text("w0 w1 w2 ", timeout=WAIT_MS)
            await expect(streaming.locator(".refs li")).to_have_text([QUESTION])

            await page.reload()

            await expect(streaming.locator(".text")).to_have_text("w0 w1 w2 ", timeout=WAIT_MS)
            await expect(streaming.locator(".refs li")).to_have_text([QUESTION])
            await page.get_by_role("button", name="Stop").click()
            await expect(answers(page).last).to_contain_text("Stopped", timeout=WAIT_MS)
            await expect(answers(page).last.locator(".refs li")).to_have_text([QUESTION])
