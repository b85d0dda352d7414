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


class DigitEngine(Engine):
    """Answers choice questions with distributions the test writes: ``probs(chat, choices)`` gets the whole chat
    (so a rule can read the prompt's layout, or the verdict an assistant turn gave). Explanations say which score
    they explain; ``judgements(chat, schema_name)`` answers generate mode."""

    name = "digits"
    identity = "digit-engine@test"

    def __init__(self, probs: Callable[[list, tuple], list], judgements: Callable[[list, str], dict] | None = None):
        self.probs, self.judgements = probs, judgements
        self.scored: list[list] = []  # every chat asked for choice probabilities
        self.generated: list[tuple[str, list]] = []  # (schema name, chat)

    def choice_probs(self, chats, choices):
        self.scored.extend(chats)
        return [list(self.probs(chat, tuple(choices))) for chat in chats]

    def generate_json(self, chats, schema, max_new_tokens):
        out = []
        for chat in chats:
            self.generated.append((schema.__name__, chat))
            if schema.__name__ == "ExplanationJSON":
                score = chat[-1]["content"].split("The score given was ")[1][0]
                out.append(json.dumps({"explanation": f"explains {score}"}))
            else:
                out.append(json.dumps(self.judgements(chat, schema.__name__)))
        return out
