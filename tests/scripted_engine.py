"""Decomposition's scripted engine: answers keyed by the name of the schema asked for, so a test writes the model's
side of a whole decompose/check conversation (proposals, reviews) without trusting a model's judgement."""

from __future__ import annotations

import json
from typing import Callable

from fake_engine import FakeEngine


def _no_choices(chat, choices):
    raise AssertionError("decomposition never asks for choice probabilities")


class ScriptedEngine(FakeEngine):
    """A :class:`~fake_engine.FakeEngine` that answers by schema: ``answers`` maps a schema class name to a JSON-able
    value, or to a function of the user message text (a test may change it between calls). ``calls`` lists
    ``(schema name, user message)`` of every chat asked to generate."""

    def __init__(self, answers: dict[str, object | Callable[[str], object]]):
        super().__init__(_no_choices, generate=self._answer, name="scripted", identity="scripted-engine@test")
        self.answers = answers

    def _answer(self, chat, schema) -> str:
        answer = self.answers[schema.__name__]
        answer = answer(chat[-1]["content"]) if callable(answer) else answer
        return answer if isinstance(answer, str) else json.dumps(answer)

    @property
    def calls(self) -> list[tuple[str, str]]:
        return [(name, chat[-1]["content"]) for name, chat in self.generated]
