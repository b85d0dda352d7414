"""An OpenAI-compatible server as the engine: vLLM, SGLang, TGI, llama.cpp's ``llama-server`` or llama-cpp-python's.

Every request is a ``POST /v1/chat/completions`` (the server applies the model's chat template). JSON output is
constrained by the server's own structured-output parameter; which one a server honours differs:

====================  ===============================================================  ===============================
``structured``        request field                                                     servers that document it
====================  ===============================================================  ===============================
``json_schema``       ``response_format={"type": "json_schema", "json_schema": {...}}``  OpenAI, vLLM, SGLang,
                                                                                        llama.cpp ``llama-server``
``structured_outputs`` ``structured_outputs={"json": schema}``                          vLLM >= 0.10.2
``guided_json``       ``guided_json=schema``                                            vLLM before 0.12 (legacy)
``json_object``       ``response_format={"type": "json_object", "schema": schema}``     llama-cpp-python's server
``tgi``               ``response_format={"type": "json_object", "value": schema}``      TGI (Messages API)
====================  ===============================================================  ===============================

``structured="auto"`` (default) probes them in that order with a schema no free text can satisfy (an enum of two
made-up strings) and keeps the first one the server honours; a server that honours none is an error, never a silent
fall back to free text. Every real output is validated as well: a reply that stopped normally (not cut by
``max_tokens``) but is not a JSON object means the server ignored the schema, and raises
:class:`~goalcover_hf.engines.base.EngineMisconfigured`.

Digit scoring asks for ``logprobs=true, top_logprobs=20`` on a one-token reply and renormalizes over the choices found
among those 20 (vLLM, SGLang, llama-server, llama-cpp-python and OpenAI return them); a server that caps the number
(TGI allows 5 unless started with more) is asked again with 5, and from then on.

Thinking models (Qwen3, DeepSeek-R1 and the like) would start their reply with a reasoning marker, not a digit: every
request carries ``chat_template_kwargs={"enable_thinking": false}`` (vLLM, SGLang and llama-server pass it to the
chat template; a server that refuses the field is asked again without it, and from then on), unless ``thinking=True``.
A logprobs reply that starts reasoning anyway (a ``<think>``-like first token, ``reasoning_content``, or no choice
among the top tokens while a ``<think>``-like token is) stops the map with
:class:`~goalcover_hf.engines.base.EngineMisconfigured` naming the fix. Generate mode reads the answer, never the
reasoning: ``reasoning_content`` is ignored and a ``<think>...</think>`` block before the JSON is dropped.

Requests run ``max_in_flight`` at a time from a thread pool opened in each process (so ``datasets`` ``num_proc``
workers and Ray actors each have their own). Timeouts, dropped connections, 408, 429 and 5xx are retried with
exponential backoff (:mod:`goalcover_hf.engines.openai_client`); after the last try the pair gets ``None`` (the scorer
turns it into a per-pair error). The API key is read from an environment variable at request time and never logged.

A hosted OpenAI-compatible API is one more server: ``base_url`` and the key's variable (``api_key_env``). A field it
refuses (``chat_template_kwargs``; string length bounds in a strict ``json_schema``, which OpenAI's strict mode does
not take: the reply is validated here anyway) is dropped, and the request sent again.
"""

from __future__ import annotations

import json
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, Sequence

from pydantic import BaseModel

from ..errors import GoalcoverError
from ..logging import get_logger
from .base import Chat, Engine, EngineMisconfigured, EngineOption
from .openai_client import (API_KEY_ENVS, Client, RequestFailed, api_key, model_identity,  # noqa: F401 (re-exported)
                            normalize_base_url, resolve_server_model, served_context)
from .openai_replies import THINK, answer_text, first_token, json_object, strip_lengths, top_logprobs
from .registry import register_engine

logger = get_logger(__name__)

STRUCTURED = ("json_schema", "structured_outputs", "guided_json", "json_object", "tgi")
TOP_LOGPROBS = 20
TOP_LOGPROBS_FALLBACK = 5  # TGI's default --max-top-n-tokens
NO_THINKING = {"enable_thinking": False}
_PROBE_VALUES = ["gc-probe-7f3a", "gc-probe-c21e"]
_PROBE_SCHEMA = {
    "type": "object",
    "properties": {"probe": {"type": "string", "enum": _PROBE_VALUES}},
    "required": ["probe"],
    "additionalProperties": False,
}
_PROBE_CHAT = [{"role": "user", "content": "Reply with a JSON object."}]


def structured_fields(kind: str, schema: dict, name: str = "judgement") -> dict[str, Any]:
    """The request fields that ask server ``kind`` for output matching ``schema``."""
    if kind == "json_schema":
        return {"response_format": {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}}
    if kind == "structured_outputs":
        return {"structured_outputs": {"json": schema}}
    if kind == "guided_json":
        return {"guided_json": schema}
    if kind == "json_object":
        return {"response_format": {"type": "json_object", "schema": schema}}
    if kind == "tgi":
        return {"response_format": {"type": "json_object", "value": schema}}
    raise GoalcoverError(f"structured must be 'auto' or one of {STRUCTURED}, got {kind!r}")


@lru_cache(maxsize=16)
def strict_schema(schema: type[BaseModel]) -> dict:
    # OpenAI's strict mode wants every object closed; other servers accept the extra key.
    """The JSON schema of ``schema`` in the strict form OpenAI-style servers take (no extra properties)."""
    out = schema.model_json_schema()
    out["additionalProperties"] = False
    return out


@register_engine("openai")
class OpenAIEngine(Engine):
    """Scores through an OpenAI-compatible server.

    Args:
        model: the served model name (``GET /v1/models``); omit when the server serves one model.
        base_url: e.g. ``http://127.0.0.1:8000/v1`` (``/v1`` is added when missing).
        api_key_env: environment variable holding the API key (default: GOALCOVER_API_KEY, then OPENAI_API_KEY).
        max_in_flight: requests sent at once by this process.
        timeout, retries, backoff: per request: seconds to wait, retries after the first try, first backoff in
            seconds (doubling each retry).
        structured: ``"auto"`` or one of :data:`STRUCTURED` (see the module docstring).
        thinking: let a thinking model reason before it answers (default False: every request asks the chat template
            for ``enable_thinking=false``). Logprobs mode cannot score a reply that starts by reasoning.

    Example:
        >>> engine = OpenAIEngine("Qwen/Qwen2.5-7B-Instruct", "http://127.0.0.1:8000/v1", max_in_flight=32)
        >>> engine.choice_probs([[{"role": "user", "content": "Score 1-5?"}]], ["1", "2", "3", "4", "5"])
    """

    options = (
        EngineOption("base_url", str, "the server, e.g. http://127.0.0.1:8000/v1 (required)"),
        EngineOption("api_key_env", str, "environment variable holding the API key (default "
                     "GOALCOVER_API_KEY, then OPENAI_API_KEY)"),
        EngineOption("max_in_flight", int, "requests in flight per process (default 8)", default=8),
        EngineOption("timeout", float, "seconds to wait for one reply (default 120)", default=120.0),
        EngineOption("retries", int, "retries of a request after a timeout, a dropped connection, 408, 429 "
                     "or 5xx (default 4)", default=4),
        EngineOption("backoff", float, "seconds before the first retry, doubling at each (default 0.5)",
                     default=0.5),
        EngineOption("structured", str, "the server's structured-output parameter (default auto: probe)",
                     default="auto", choices=("auto",) + STRUCTURED),
        EngineOption("thinking", bool, "let a thinking model (Qwen3, DeepSeek-R1, ...) behind a server reason before "
                     "it answers; off by default: requests carry chat_template_kwargs enable_thinking=false "
                     "(logprobs mode cannot score a reply that starts by reasoning)", default=False),
    )

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Check and normalize the options: ``base_url`` is required and written one way."""
        options = super().normalize_options(options)
        if not options.get("base_url"):
            raise GoalcoverError("engine 'openai' needs base_url (--base-url http://HOST:PORT/v1)")
        options["base_url"] = normalize_base_url(options["base_url"])  # one server, one fingerprint
        for name, least in (("max_in_flight", 1), ("retries", 0), ("timeout", 1e-3), ("backoff", 0)):
            if options.get(name, least) < least:
                raise GoalcoverError(f"engine 'openai': {name} must be at least {least}, got {options[name]}")
        return options

    @classmethod
    def resolve(cls, model: str | None, options: dict[str, Any]) -> tuple[str, str]:
        """Asks the server (``GET /v1/models``, once per process) which model ``model`` is."""
        return resolve_server_model(options["base_url"], model, options.get("api_key_env"))

    @classmethod
    def counter(cls, model: str | None, options: dict[str, Any]):
        """An estimate (:class:`~goalcover_hf.truncation.CharCounter`); context from ``max_context_tokens``, else
        the server's ``max_model_len`` in ``GET /v1/models`` (vLLM reports it), else unknown: nothing is cut, and a
        prompt the server refuses becomes that pair's error."""
        from ..truncation import CharCounter

        limit = options.get("max_context_tokens")
        if limit is None:
            limit = served_context(options["base_url"], model, options.get("api_key_env"))
        return CharCounter(int(limit) if limit else None)

    def token_counter(self):
        """An estimate (the server's tokenizer is not visible) with the context it reports."""
        return self.counter(self.model, {"base_url": self.client.base_url, "api_key_env": self.client.api_key_env,
                                         "max_context_tokens": self.max_context_tokens})

    def __init__(self, model: str | None, base_url: str, api_key_env: str | None = None, max_in_flight: int = 8,
                 timeout: float = 120.0, retries: int = 4, backoff: float = 0.5, structured: str = "auto",
                 thinking: bool = False):
        if structured != "auto":
            structured_fields(structured, {})  # reject an unknown kind now, not at the first request
        self.normalize_options({"base_url": base_url, "max_in_flight": max_in_flight, "timeout": timeout,
                                "retries": retries, "backoff": backoff})  # built directly, not through get_engine
        self.client = Client(base_url, api_key_env, timeout=timeout, retries=retries, backoff=backoff)
        self.model, self.identity = resolve_server_model(base_url, model, api_key_env)
        self.max_in_flight = int(max_in_flight)
        self.structured = structured
        self.thinking = bool(thinking)
        # What this server takes, learnt from its refusals (see _adapt): shared by the request threads.
        self.top_logprobs = TOP_LOGPROBS
        self.template_kwargs = not self.thinking  # send chat_template_kwargs={"enable_thinking": false}
        self.template_kwargs_refused = False
        self.schema_lengths = True
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid: int | None = None
        self._logprobs_checked = False

    @property
    def pool(self) -> ThreadPoolExecutor:
        # Threads do not survive a fork: a datasets worker that inherited this engine opens its own pool.
        """The thread pool that keeps at most ``max_in_flight`` requests in flight."""
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="goalcover-http")
            self._pool_pid = os.getpid()
        return self._pool

    def describe(self) -> dict[str, Any]:
        """The server and what was learnt of it: ``base_url``, ``structured`` (the parameter in use, or ``auto``
        before the first generation), ``top_logprobs``, ``thinking``, whether ``chat_template_kwargs`` is sent, and
        ``max_in_flight``."""
        return {"base_url": self.client.base_url, "structured": self.structured, "top_logprobs": self.top_logprobs,
                "thinking": self.thinking, "chat_template_kwargs": NO_THINKING if self.template_kwargs else None,
                "max_in_flight": self.max_in_flight}

    def _chat(self, chat: Chat, retries: int | None = None, **fields) -> dict:
        """One chat completion; a field the server refuses (4xx) that can be done without is dropped or lowered, and
        the request sent again (see :meth:`_adapt`)."""
        while True:
            body = {"model": self.model, "messages": list(chat), "temperature": 0.0, **fields}
            if self.template_kwargs:
                body["chat_template_kwargs"] = NO_THINKING
            try:
                return self.client.request("chat/completions", body, retries=retries)
            except RequestFailed as err:
                if err.transient or not self._adapt(str(err).lower(), body, fields):
                    raise

    def _adapt(self, message: str, body: dict, fields: dict) -> bool:
        """Learn from the refusal of ``body`` what this server does not take (for every later request too); True
        when the request may be sent again, ``fields`` changed."""
        with self._lock:
            if "chat_template_kwargs" in body and "chat_template_kwargs" in message:
                self.template_kwargs, self.template_kwargs_refused = False, True
                logger.info("%s refuses chat_template_kwargs: thinking models cannot be told not to think",
                            self.client.base_url)
                return True
            if "top_logprobs" in fields and ("top_logprobs" in message or "top_n_tokens" in message):
                if fields["top_logprobs"] <= TOP_LOGPROBS_FALLBACK:
                    raise EngineMisconfigured(
                        f"the server at {self.client.base_url} refuses top_logprobs={fields['top_logprobs']} "
                        f"({message[:200]}); it cannot score in logprobs mode: use mode='generate'")
                self.top_logprobs = fields["top_logprobs"] = TOP_LOGPROBS_FALLBACK
                logger.info("%s caps top_logprobs: asking for %d", self.client.base_url, TOP_LOGPROBS_FALLBACK)
                return True
            if "response_format" in fields and ("maxlength" in message or "minlength" in message):
                self.schema_lengths = False
                fields["response_format"] = strip_lengths(fields["response_format"])
                return True
        return False

    def _each(self, fn, items: Sequence) -> list:
        """``fn`` over ``items``, ``max_in_flight`` at a time, in order; a request that failed for good gives None."""

        def guarded(item):
            try:
                return fn(item)
            except RequestFailed as err:
                logger.warning("request failed: %s", err)
                return None
            except (KeyError, IndexError, TypeError, AttributeError) as err:
                logger.warning("unexpected reply from %s: %s: %s", self.client.base_url, type(err).__name__, err)
                return None

        return list(self.pool.map(guarded, items))

    # ---- structured output ---------------------------------------------------------------------------------------
    def _structured_kind(self) -> str:
        with self._lock:  # probe once, even when the first batch arrives from several threads
            if self.structured == "auto":
                self.structured = self._probe()
            return self.structured

    def _probe(self) -> str:
        tried = []
        for kind in STRUCTURED:
            try:
                reply = self._chat(_PROBE_CHAT, retries=min(self.client.retries, 1), max_tokens=32,
                                   **structured_fields(kind, _PROBE_SCHEMA, "probe"))
                text = answer_text(reply["choices"][0]["message"].get("content"))
            except RequestFailed as err:
                # Down or overloaded says nothing about the parameter. A 500 does: some servers (llama-cpp-python)
                # answer an unknown response_format type with a 500 rather than a 4xx.
                if err.transient and err.status != 500:
                    raise
                tried.append(f"{kind}: rejected ({err})")
                continue
            except (KeyError, IndexError, TypeError, AttributeError) as err:
                tried.append(f"{kind}: unreadable reply ({type(err).__name__}: {err})")
                continue
            if (json_object(text) or {}).get("probe") in _PROBE_VALUES:
                logger.info("%s honours structured output through %s", self.client.base_url, kind)
                return kind
            tried.append(f"{kind}: ignored (replied {str(text)[:60]!r})")
        raise EngineMisconfigured(
            f"the server at {self.client.base_url} honoured none of the structured-output parameters goalcover knows, "
            "so JSON output cannot be constrained: " + "; ".join(tried)
        )

    def generate_json(self, chats: Sequence[Chat], schema: type[BaseModel], max_new_tokens: int) -> list[str | None]:
        """Schema-constrained generation through the server's structured-output parameter, one request per chat."""
        kind = self._structured_kind()

        def one(chat):
            wanted = strict_schema(schema) if self.schema_lengths else strip_lengths(strict_schema(schema))
            fields = structured_fields(kind, wanted, schema.__name__)
            choice = self._chat(chat, max_tokens=max_new_tokens, **fields)["choices"][0]
            text = answer_text(choice["message"].get("content"))  # never the reasoning (reasoning_content)
            value = json_object(text)
            if value is not None:
                return json.dumps(value, ensure_ascii=False)  # re-encoded: control characters escaped
            if choice.get("finish_reason") != "length":
                # A constrained decoder cannot stop on anything but complete JSON: the schema was not applied.
                raise EngineMisconfigured(
                    f"the server at {self.client.base_url} ignored the JSON schema sent as {kind!r} and returned free "
                    f"text ({str(text)[:60]!r}); pass structured= one of {STRUCTURED} that this server honours"
                )
            return text  # cut by max_tokens: the scorer reports it as invalid output for this pair

        return self._each(one, chats)

    # ---- digit probabilities -------------------------------------------------------------------------------------
    def choice_probs(self, chats: Sequence[Chat], choices: Sequence[str], renormalize: bool = True
                     ) -> list[list[float] | None]:
        """Probabilities of ``choices`` among the reply's top first tokens, renormalized over them; with
        ``renormalize=False`` the mass each choice has among the top tokens (a lower bound of its probability: a
        choice outside them counts 0). ``None`` where a request failed."""

        def one(chat):
            reply = self._chat(chat, max_tokens=1, logprobs=True, top_logprobs=self.top_logprobs)
            top = top_logprobs(reply)
            self._refuse_reasoning(reply, top, choices)
            if top is None:
                raise EngineMisconfigured(
                    f"the server at {self.client.base_url} returned no top logprobs for logprobs=true, "
                    f"top_logprobs={self.top_logprobs}; it cannot score in logprobs mode: use mode='generate'"
                )
            mass = [0.0] * len(choices)
            for token, logprob in top:
                token = token.strip()
                if token in choices:
                    mass[choices.index(token)] += math.exp(logprob)
            total = sum(mass)
            if total <= 0:
                logger.warning("no choice among the top %d tokens (%s)", len(top), [t for t, _ in top][:8])
            if not renormalize:
                return mass
            return [m / total for m in mass] if total > 0 else None

        return self._each(one, chats)

    def _refuse_reasoning(self, reply: dict, top: list[tuple[str, float]] | None, choices: Sequence[str]) -> None:
        """Raise :class:`EngineMisconfigured` when a one-token reply starts reasoning instead of answering."""
        message = reply["choices"][0].get("message") or {}
        first = first_token(reply)
        tokens = [t.strip() for t, _ in top or []]
        if message.get("reasoning_content") or message.get("reasoning"):
            sign = "the reply carries reasoning_content"
        elif first is not None and THINK.match(first.strip()):
            sign = f"its first token is {first.strip()!r}"
        elif not any(t in choices for t in tokens) and any(THINK.match(t) for t in tokens):
            sign = f"no choice among its top tokens, but {next(t for t in tokens if THINK.match(t))!r} is"
        else:
            return
        if self.thinking:
            fix = "leave thinking off (drop thinking=True / --thinking) so requests ask for enable_thinking=false"
        elif self.template_kwargs_refused:
            fix = ("this server refuses chat_template_kwargs, so thinking cannot be switched off per request: serve "
                   "the model with thinking off (a chat template without it, or a non-thinking variant)")
        else:
            fix = ("the server ignored chat_template_kwargs enable_thinking=false: serve the model with a chat "
                   "template that honours it (vLLM and SGLang pass it on; e.g. Qwen3's own) or a non-thinking "
                   "variant")
        raise EngineMisconfigured(
            f"{self.model} at {self.client.base_url} starts its reply by reasoning ({sign}): logprobs mode reads the "
            f"reply's first token, so it cannot score. Fix: {fix}; or use mode='generate' (--mode generate), which "
            "reads the answer after the reasoning")
