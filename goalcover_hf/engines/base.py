"""The engine interface: what the pipeline asks of any backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

from pydantic import BaseModel

Chat = list[dict]  # [{"role": ..., "content": ...}, ...]


class EngineMisconfigured(RuntimeError):
    """The engine cannot do what was asked at all (e.g. a server ignores the JSON schema or gives no logprobs).

    Unlike a failure of one request, this ends a map: every pair would fail the same way.
    """


class Engine(ABC):
    name: str
    identity: str  # model identity as the engine knows it: recorded in fingerprints and cards

    @abstractmethod
    def generate_json(self, chats: Sequence[Chat], schema: type[BaseModel], max_new_tokens: int) -> list[str]:
        """Schema-constrained generation, one raw string per chat (validated by the caller); ``None`` where one failed."""

    @abstractmethod
    def choice_probs(self, chats: Sequence[Chat], choices: Sequence[str]) -> list[list[float]]:
        """Probability of each single-token choice as the assistant's first token, renormalized over ``choices``.

        An engine whose requests can fail one by one (a server) returns ``None`` for a chat it could not score.
        """
