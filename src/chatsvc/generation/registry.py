"""The generator registry: one generator per configured generator app, and the public
description of those apps (GET /apps-generator/), which never shows a URL or a credential."""

from __future__ import annotations

from typing import Any

import aiohttp

from chatsvc.config import Settings
from chatsvc.generation.offline import OfflineGenerator
from chatsvc.generation.openai_compat import OpenAICompatGenerator
from chatsvc.generation.types import Generator


def build_generators(settings: Settings, client: aiohttp.ClientSession) -> dict[str, Generator]:
    """Build every configured app once, at startup; a misconfigured app fails the start with a
    ValueError naming it rather than the first generation that uses it."""
    generators: dict[str, Generator] = {}
    for name, app in settings.generator_apps.items():
        if app.kind == "offline":
            generators[name] = OfflineGenerator(app)
            continue
        try:
            generators[name] = OpenAICompatGenerator(app, client, name=name)
        except ValueError as exc:
            raise ValueError(f"CHATSVC_GENERATOR_APPS[{name!r}]: {exc}") from None
    return generators


def describe_apps(settings: Settings) -> list[dict[str, Any]]:
    """One object per app, by name. base_url is left out: it may hold userinfo or a key."""
    return [
        {
            "name": name,
            "kind": app.kind,
            "model": app.model,
            "description": app.description,
            "default": name == settings.default_generator,
        }
        for name, app in sorted(settings.generator_apps.items())
    ]
