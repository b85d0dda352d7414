"""The engine interface: what the pipeline asks of any backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

from pydantic import BaseModel

Chat = list[dict]  # [{"role": ..., "content": ...}, ...]


class Engine(ABC):
    name: str
    identity: str  # model identity as the engine knows it: recorded in fingerprints and cards

    @abstractmethod
    def generate_json(self, chats: Sequence[Chat], schema: type[BaseModel], max_new_tokens: int) -> list[str]:
        """Schema-constrained generation, one raw string per chat (validated by the caller)."""

    @abstractmethod
    def choice_probs(self, chats: Sequence[Chat], choices: Sequence[str]) -> list[list[float]]:
        """Probability of each single-token choice as the assistant's first token, renormalized over ``choices``."""
