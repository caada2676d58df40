"""Cognitive face: tools endpoints (seed 003). Translation only: rules live in the domain."""

from __future__ import annotations

from chatsvc.kit.web import ERROR_RESPONSES, SlashRouter

router = SlashRouter(tags=["tools"], responses=ERROR_RESPONSES)
