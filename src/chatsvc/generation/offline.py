"""The built-in offline generator: answers from the assistant's own knowledge, with no model and
no network, streamed word by word like a model would."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator

from chatsvc.config import GeneratorApp
from chatsvc.generation.types import Finished, GenerationRequest, GeneratorEvent, TextDelta

NO_KNOWLEDGE_ANSWER = (
    "I am the offline generator and I have no knowledge that matches your question. "
    "An assistant gets answers here when you add common questions, fixed responses or lessons "
    "to it."
)

# A word with the whitespace around it, so that the pieces join back to the exact text; a text
# made only of whitespace is one piece.
_WORD = re.compile(r"\s*\S+\s*|\s+")


class OfflineGenerator:
    """Answers with the best knowledge hit, else the assistant's not-info message, else a fixed
    sentence explaining how to give the assistant knowledge."""

    def __init__(self, app: GeneratorApp) -> None:
        self._delay = app.token_delay_seconds

    @staticmethod
    def answer_for(request: GenerationRequest) -> str:
        # Hits arrive ranked by the pipeline, best first; an empty one answers nothing.
        for hit in request.hits:
            if hit.content.strip():
                return hit.content
        if request.not_info_message:
            return request.not_info_message
        return NO_KNOWLEDGE_ANSWER

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[GeneratorEvent, None]:
        words = 0
        # finditer is lazy: each word costs O(its length), the answer is never rebuilt.
        for match in _WORD.finditer(self.answer_for(request)):
            if words and self._delay > 0:
                await asyncio.sleep(self._delay)
            words += 1
            yield TextDelta(match.group())
        yield Finished("stop", usage={"completion_tokens": words})
