"""An engine whose answers the test writes: proves the decompose/check logic without trusting a model's judgement."""

from __future__ import annotations

import json
from typing import Callable

from goalcover_hf.engines.base import Engine


class ScriptedEngine(Engine):
    """``answers`` maps a schema class name to a JSON-able value, or to a function of the user message text."""

    name = "scripted"
    identity = "scripted-engine@test"

    def __init__(self, answers: dict[str, object | Callable[[str], object]]):
        self.answers = answers
        self.calls: list[tuple[str, str]] = []  # (schema name, user message)

    def generate_json(self, chats, schema, max_new_tokens):
        out = []
        for chat in chats:
            user = chat[-1]["content"]
            self.calls.append((schema.__name__, user))
            answer = self.answers[schema.__name__]
            answer = answer(user) if callable(answer) else answer
            out.append(answer if isinstance(answer, str) else json.dumps(answer))
        return out

    def choice_probs(self, chats, choices):
        raise NotImplementedError("decompose never asks for choice probabilities")
