"""The engine interface: what the pipeline asks of any backend, and what a backend declares about itself.

A backend is one subclass of :class:`Engine` registered under a name (:func:`goalcover_hf.engines.register_engine`).
Besides computing tokens it owns, as class attributes and classmethods, the options it takes (:class:`EngineOption`,
shown by ``goalcover score --help``), how a ``model=`` argument resolves to a stable identity, and how prompts are
counted without loading weights.
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from pydantic import BaseModel

from ..errors import GoalcoverError

if TYPE_CHECKING:
    from ..truncation import TokenCounter

Chat = list[dict]  # [{"role": ..., "content": ...}, ...]


class EngineMisconfigured(GoalcoverError, RuntimeError):
    """The engine cannot do what was asked at all (e.g. a server ignores the JSON schema or gives no logprobs).

    Unlike a failure of one request, this ends a map: every pair would fail the same way.
    """


_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


@dataclass(frozen=True)
class EngineOption:
    """One setting an engine takes: ``Scorer(engine_options={name: value})``, or ``--NAME`` on the command line.

    Args:
        name: the Python name, e.g. ``"base_url"``; the command-line flag is ``--base-url``.
        type: ``int``, ``float``, ``str`` or ``bool``; values are checked against it (an ``int`` is taken for a
            ``float``).
        help: one line for ``goalcover score --help``.
        default: the value the engine uses when none is given, for the help text (None: the engine decides).
        choices: the only values allowed, if any.
    """

    name: str
    type: type
    help: str
    default: Any = None
    choices: tuple | None = None

    @property
    def flag(self) -> str:
        """The option's command-line flag, e.g. ``--base-url``."""
        return "--" + self.name.replace("_", "-")

    def check(self, engine: str, value: Any) -> Any:
        """``value`` checked against the option's type and choices (an int widened to float); raises otherwise."""
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        # bool is an int subclass: True is no thread count, and 1 is no yes/no answer.
        if not isinstance(value, self.type) or (self.type is not bool and isinstance(value, bool)):
            kind = _KINDS.get(self.type, self.type.__name__)
            raise GoalcoverError(f"engine {engine!r}: option {self.name} takes {kind}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise GoalcoverError(f"engine {engine!r}: option {self.name} must be one of "
                                 f"{', '.join(map(str, self.choices))}, got {value!r}")
        return value


COMMON_OPTIONS = (
    EngineOption("max_context_tokens", int,
                 "tokens a prompt and its reply may take, below the judge's own context (memory, speed; for a server "
                 "that does not report its context, what it accepts)"),
)

THREADS = EngineOption("threads", int, "CPU threads of a local engine (default: $GOALCOVER_THREADS, else the cores "
                       "this process may run on)")


def default_threads() -> int:
    """Threads for a local engine: ``$GOALCOVER_THREADS``, else the cores this process may run on."""
    if os.environ.get("GOALCOVER_THREADS"):
        return max(1, int(os.environ["GOALCOVER_THREADS"]))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Engine(ABC):
    """A backend that computes tokens.

    Two required methods work on independent chats. The two ``*_shared`` methods take chats in groups whose members
    share a long common beginning (the system instructions and one sample, followed by one subgoal each): an engine
    may compute that beginning once per group and reuse it. Their defaults here just flatten the groups, so a backend
    only overrides them when it can share work.

    A registered backend is built as ``cls(model, **options)`` with the options of its own :attr:`options` that were
    given (the common ones, :data:`COMMON_OPTIONS`, are applied around it).

    Example:
        >>> @register_engine("echo")
        ... class EchoEngine(Engine):
        ...     options = (EngineOption("seed", int, "random seed", default=0),)
        ...     def __init__(self, model, seed=0):
        ...         self.identity = model
        ...     ...
    """

    name: ClassVar[str]  # set by register_engine
    options: ClassVar[tuple[EngineOption, ...]] = ()  # the backend's own options, beside COMMON_OPTIONS
    identity: str  # model identity as the engine knows it: recorded in fingerprints and cards
    max_context_tokens: int | None = None  # the common option, set by get_engine: caps token_counter's context

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Check the given options together and bring them to one canonical form (the same settings, one
        fingerprint). ``options`` holds only the options given, each already of its declared type."""
        limit = options.get("max_context_tokens")
        if limit is not None and limit < 1:
            raise GoalcoverError(f"max_context_tokens must be at least 1, got {limit}")
        return options

    @classmethod
    def resolve(cls, model: str, options: dict[str, Any]) -> tuple[str, str]:
        """``(model, identity)`` without loading weights: the name to load, and what identifies its weights in
        fingerprints and cards (default: the name as given)."""
        return model, model

    @classmethod
    def counter(cls, model: str, options: dict[str, Any]) -> TokenCounter:
        """How many tokens a prompt takes and the context it may fill, without loading weights (default: an
        estimate, and the context of ``max_context_tokens`` if given, else unknown: nothing is cut)."""
        from ..truncation import CharCounter

        return CharCounter(options.get("max_context_tokens"))

    def token_counter(self) -> TokenCounter:
        """The counter of this loaded engine (default: an estimate; context from ``max_context_tokens``, if given)."""
        from ..truncation import CharCounter

        return CharCounter(self.max_context_tokens)

    def describe(self) -> dict[str, Any]:
        """How this loaded engine runs, beside what it runs: settings that do not change its identity (and so no
        cache key), for the record (e.g. ``{"device": "cuda:0", "dtype": "bfloat16", ...}``). Default: nothing."""
        return {}

    @abstractmethod
    def generate_json(self, chats: Sequence[Chat], schema: type[BaseModel], max_new_tokens: int) -> list[str]:
        """Schema-constrained generation, one raw string per chat (validated by the caller); ``None`` where one failed."""

    @abstractmethod
    def choice_probs(self, chats: Sequence[Chat], choices: Sequence[str], renormalize: bool = True
                     ) -> list[list[float]]:
        """Probability of each single-token choice as the assistant's first token.

        Args:
            chats: the chats, each ending where the assistant's reply starts.
            choices: single-token strings, e.g. ``["1", "2", "3", "4", "5"]``.
            renormalize: True (default): renormalized over ``choices`` (they sum to 1). False: each choice's
                probability under the full next-token distribution (their sum says how much of the model's answer
                the choices are). A backend that cannot give these may leave the argument out of its signature.

        An engine whose requests can fail one by one (a server) returns ``None`` for a chat it could not score.
        """

    def choice_probs_shared(self, groups: Sequence[Sequence[Chat]], choices: Sequence[str], renormalize: bool = True
                            ) -> list[list[list[float]]]:
        """:meth:`choice_probs` for groups of chats with a shared beginning; returns ``[group][chat][choice]``.

        Example:
            >>> engine.choice_probs_shared([[chat_s1_g1, chat_s1_g2], [chat_s2_g1]], ["1", "2", "3", "4", "5"])
        """
        flat = [c for g in groups for c in g]
        if renormalize:  # as every backend takes it, renormalize or not in its signature
            return _regroup(self.choice_probs(flat, choices), groups)
        if "renormalize" not in inspect.signature(self.choice_probs).parameters:
            raise GoalcoverError(f"engine {getattr(self, 'name', type(self).__name__)!r} gives no probabilities "
                                 "under the full next-token distribution (its choice_probs takes no renormalize)")
        return _regroup(self.choice_probs(flat, choices, renormalize=False), groups)

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
