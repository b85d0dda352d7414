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
    """A backend that computes tokens.

    Two required methods work on independent chats. The two ``*_shared`` methods take chats in groups whose members
    share a long common beginning (the system instructions and one sample, followed by one subgoal each): an engine
    may compute that beginning once per group and reuse it. Their defaults here just flatten the groups, so a backend
    only overrides them when it can share work.
    """

    name: str
    identity: str  # model identity as the engine knows it: recorded in fingerprints and cards

    def token_counter(self):
        """How many tokens a prompt takes and the context it may fill (default: unknown; nothing is cut)."""
        from ..truncation import CharCounter

        return CharCounter(None)

    @abstractmethod
    def generate_json(self, chats: Sequence[Chat], schema: type[BaseModel], max_new_tokens: int) -> list[str]:
        """Schema-constrained generation, one raw string per chat (validated by the caller); ``None`` where one failed."""

    @abstractmethod
    def choice_probs(self, chats: Sequence[Chat], choices: Sequence[str]) -> list[list[float]]:
        """Probability of each single-token choice as the assistant's first token, renormalized over ``choices``.

        An engine whose requests can fail one by one (a server) returns ``None`` for a chat it could not score.
        """

    def choice_probs_shared(self, groups: Sequence[Sequence[Chat]], choices: Sequence[str]) -> list[list[list[float]]]:
        """:meth:`choice_probs` for groups of chats with a shared beginning; returns ``[group][chat][choice]``.

        Example:
            >>> engine.choice_probs_shared([[chat_s1_g1, chat_s1_g2], [chat_s2_g1]], ["1", "2", "3", "4", "5"])
        """
        flat = self.choice_probs([c for g in groups for c in g], choices)
        return _regroup(flat, groups)

    def generate_json_shared(
        self, groups: Sequence[Sequence[Chat]], schema: type[BaseModel], max_new_tokens: int
    ) -> list[list[str]]:
        """:meth:`generate_json` for groups of chats with a shared beginning; returns ``[group][chat]``."""
        flat = self.generate_json([c for g in groups for c in g], schema, max_new_tokens)
        return _regroup(flat, groups)


def _regroup(flat: list, groups: Sequence[Sequence]) -> list[list]:
    out, pos = [], 0
    for g in groups:
        out.append(flat[pos : pos + len(g)])
        pos += len(g)
    return out
