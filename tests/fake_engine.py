"""One configurable fake of the engine interface: the test sets what the judge answers and reads what it was asked.

Pass it to a scorer as it is (``Scorer(spec, engine=FakeEngine(...))``), to anything that takes an engine (gap naming,
synthesis through its scorer, decomposition), or, for the command line, through the ``install_engine`` fixture.

Example:
    >>> engine = FakeEngine(probs={"ibuprofen": 2}, default=5)  # score 2 where the chat names ibuprofen, else 5
    >>> Scorer(spec, engine=engine).judge_texts(["QUESTION: ibuprofen?\\n\\nANSWER: 200 mg."])
    >>> [call.method for call in engine.calls]
    ['choice_probs_shared', 'generate_json_shared']
"""

from __future__ import annotations

import json
import re
import threading
import typing
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from goalcover_hf.engines import register_engine
from goalcover_hf.engines.base import Engine
from goalcover_hf.truncation import CharCounter

Chat = list[dict]
SCORE_ASKED = re.compile(r"The score given was (\d)")  # the explanation prompt names the score it explains
SAMPLE_BLOCK = re.compile(r"<<<SAMPLE\n(.*?)\nSAMPLE>>>", re.S)
GATE_TIMEOUT_S = 300  # a gate no test opens fails the test instead of hanging the suite


def chat_text(chat: Chat) -> str:
    """Every message of a chat, in order: what a table of substrings is matched against."""
    return "\n".join(m["content"] for m in chat)


def sample_of(chat: Chat) -> str | None:
    """The sample a score prompt shows between its data markers (None: the chat shows none)."""
    found = SAMPLE_BLOCK.search(chat_text(chat))
    return found.group(1) if found else None


@dataclass
class Call:
    """One call to the engine: ``groups`` as the caller grouped its chats (one group for the flat methods)."""

    method: str  # "choice_probs", "choice_probs_shared", "generate_json" or "generate_json_shared"
    groups: list[list[Chat]]
    choices: tuple[str, ...] | None = None
    schema: type | None = None

    @property
    def chats(self) -> list[Chat]:
        return [chat for group in self.groups for chat in group]


@register_engine("fake")  # so a run folder can name it, as runs name their engine
class FakeEngine(Engine):
    """An engine whose answers the test writes.

    Args:
        probs: what a choice question gets, per chat. An answer is a choice (``"Yes"``, ``"4"`` or ``4``: all mass
            on it), a list of probabilities (one per choice), or ``None`` (this chat could not be scored, as a
            server request that failed). ``probs`` is one answer for every chat, a table ``{substring: answer}``
            matched in order against the chat's text (first hit wins, else ``default``), or a function
            ``(chat, choices) -> answer``. Default: ``default`` everywhere.
        default: the answer where a table has no match (default ``3``).
        generate: what generation returns, per chat: a string returned as is (invalid JSON included), a dict (dumped),
            ``None`` (this chat failed), or a function ``(chat, schema) -> any of those``. Default: a valid instance
            of the schema whose explanation says which score it explains (``"explains 2"``).
        fail_on_call: the 1-based number (or a set of numbers) of the calls that raise ``error``.
        fail_on: raise ``error`` in any call one of whose chats contains this text.
        error: what a failing call raises, a class or an instance (default ``RuntimeError("fake engine failure")``).
        gate: a ``threading.Event`` a call waits for before it answers; ``entered`` is set once a call waits.
        gate_on_call: the 1-based number (or a set of numbers) of the calls that wait for ``gate`` (default: all).
        context: tokens the judge reads (its token counter's context; ``None``: unknown, nothing is cut).
        counter: the token counter to give instead (e.g. ``engines.get_counter(model)``, a real tokenizer's).
        wraps: a real engine that answers instead (its counter, name and identity too): the fake then only records
            the calls, and still fails and waits as told.
        name, identity: what a scorer records as its engine and model (default ``"fake"``, ``"fake-judge@1"``).

    Every call is recorded in ``calls`` (:class:`Call`), whether it answers or fails.
    """

    def __init__(
        self,
        probs: Any = None,
        *,
        default: Any = 3,
        generate: str | Mapping | Callable[[Chat, type], Any] | None = None,
        fail_on_call: int | set[int] | None = None,
        fail_on: str | None = None,
        error: BaseException | type[BaseException] | None = None,
        gate: threading.Event | None = None,
        gate_on_call: int | set[int] | None = None,
        context: int | None = None,
        counter: Any = None,
        wraps: Engine | None = None,
        name: str | None = None,
        identity: str | None = None,
    ):
        self.probs, self.default, self.generate = probs, default, generate
        self.fail_on_call = {fail_on_call} if isinstance(fail_on_call, int) else set(fail_on_call or ())
        self.fail_on, self.error = fail_on, error or RuntimeError("fake engine failure")
        self.gate, self.entered = gate, threading.Event()
        self.gate_on_call = {gate_on_call} if isinstance(gate_on_call, int) else gate_on_call
        self.context, self.counter, self.wraps = context, counter, wraps
        self.name = name or (wraps.name if wraps else "fake")
        self.identity = identity or (wraps.identity if wraps else "fake-judge@1")
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    # ---- what the test reads -----------------------------------------------------------------------------------
    @property
    def calls(self) -> list[Call]:
        """Every call so far, in order."""
        return self._calls

    @property
    def scored(self) -> list[Chat]:
        """Every chat asked for choice probabilities, in order."""
        return [chat for call in self._calls if call.choices is not None for chat in call.chats]

    @property
    def generated(self) -> list[tuple[str, Chat]]:
        """``(schema name, chat)`` of every chat asked to generate, in order."""
        return [(call.schema.__name__, chat) for call in self._calls if call.schema is not None for chat in call.chats]

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self._calls if call.method == method]

    def reset(self) -> None:
        """Forget the calls recorded so far (numbering for ``fail_on_call`` starts again too)."""
        with self._lock:
            self._calls.clear()

    # ---- the engine interface ----------------------------------------------------------------------------------
    def token_counter(self):
        if self.counter is not None:
            return self.counter
        return self.wraps.token_counter() if self.wraps else CharCounter(self.context)

    def choice_probs(self, chats: Sequence[Chat], choices: Sequence[str]) -> list[list[float] | None]:
        self._record("choice_probs", [list(chats)], choices=tuple(choices))
        if self.wraps:
            return self.wraps.choice_probs(chats, choices)
        return [self._probs(chat, tuple(choices)) for chat in chats]

    def choice_probs_shared(self, groups, choices):
        self._record("choice_probs_shared", [list(g) for g in groups], choices=tuple(choices))
        if self.wraps:
            return self.wraps.choice_probs_shared(groups, choices)
        return [[self._probs(chat, tuple(choices)) for chat in g] for g in groups]

    def generate_json(self, chats, schema, max_new_tokens):
        self._record("generate_json", [list(chats)], schema=schema)
        if self.wraps:
            return self.wraps.generate_json(chats, schema, max_new_tokens)
        return [self._generated(chat, schema) for chat in chats]

    def generate_json_shared(self, groups, schema, max_new_tokens):
        self._record("generate_json_shared", [list(g) for g in groups], schema=schema)
        if self.wraps:
            return self.wraps.generate_json_shared(groups, schema, max_new_tokens)
        return [[self._generated(chat, schema) for chat in g] for g in groups]

    # ---- answers -----------------------------------------------------------------------------------------------
    def _record(self, method: str, groups: list[list[Chat]], **what) -> None:
        with self._lock:
            self._calls.append(Call(method, groups, **what))
            number = len(self._calls)
        if self.gate is not None and (self.gate_on_call is None or number in self.gate_on_call):
            self.entered.set()
            if not self.gate.wait(GATE_TIMEOUT_S):
                raise AssertionError(f"the fake engine's gate stayed closed for {GATE_TIMEOUT_S} s")
        failing = self.fail_on is not None and any(self.fail_on in chat_text(c) for g in groups for c in g)
        if number in self.fail_on_call or failing:
            raise self.error

    def _probs(self, chat: Chat, choices: tuple[str, ...]) -> list[float] | None:
        rule = self.probs
        if callable(rule):
            answer = rule(chat, choices)
        elif isinstance(rule, Mapping):
            text = chat_text(chat)
            answer = next((v for key, v in rule.items() if key in text), self.default)
        else:
            answer = self.default if rule is None else rule
        return _distribution(answer, choices)

    def _generated(self, chat: Chat, schema: type) -> str | None:
        out = self.generate(chat, schema) if callable(self.generate) else self.generate
        if out is None and self.generate is None:
            out = valid_instance(chat, schema)
        return json.dumps(out) if isinstance(out, Mapping) else out


def _distribution(answer: Any, choices: tuple[str, ...]) -> list[float] | None:
    if answer is None:
        return None
    if isinstance(answer, (str, int)):
        if str(answer) not in choices:
            raise ValueError(f"the fake engine was told to answer {answer!r}; the choices are {choices}")
        return [1.0 if c == str(answer) else 0.0 for c in choices]
    answer = [float(p) for p in answer]
    if len(answer) != len(choices):
        raise ValueError(f"{len(answer)} probabilities for {len(choices)} choices {choices}")
    return answer


def valid_instance(chat: Chat, schema: type) -> dict:
    """A value every field of ``schema`` accepts: strings, the middle option of a ``Literal``, an explanation that
    names the score it was asked to explain."""
    values = {}
    for name, info in schema.model_fields.items():
        if name == "explanation":
            asked = SCORE_ASKED.search(chat_text(chat))
            values[name] = f"explains {asked.group(1)}" if asked else "generated"
        elif typing.get_origin(info.annotation) is typing.Literal:
            options = typing.get_args(info.annotation)
            values[name] = options[len(options) // 2]
        elif info.annotation is str:
            values[name] = f"generated {name}"
        else:
            raise TypeError(f"the fake engine cannot fill field {name!r} of {schema.__name__}: pass generate=")
    return values
