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
among those 20 (vLLM, SGLang, llama-server, llama-cpp-python and OpenAI return them; TGI does not).

Requests run ``max_in_flight`` at a time from a thread pool opened in each process (so ``datasets`` ``num_proc``
workers and Ray actors each have their own). Timeouts, dropped connections, 408, 429 and 5xx are retried with
exponential backoff; after the last try the pair gets ``None`` (the scorer turns it into a per-pair error). The API
key is read from an environment variable at request time and never logged.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, Sequence

from pydantic import BaseModel

from ..errors import GoalcoverError
from ..logging import get_logger
from .base import Chat, Engine, EngineMisconfigured, EngineOption
from .registry import register_engine

logger = get_logger(__name__)

STRUCTURED = ("json_schema", "structured_outputs", "guided_json", "json_object", "tgi")
API_KEY_ENVS = ("GOALCOVER_API_KEY", "OPENAI_API_KEY")
TOP_LOGPROBS = 20
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_PROBE_VALUES = ["gc-probe-7f3a", "gc-probe-c21e"]
_PROBE_SCHEMA = {
    "type": "object",
    "properties": {"probe": {"type": "string", "enum": _PROBE_VALUES}},
    "required": ["probe"],
    "additionalProperties": False,
}
_PROBE_CHAT = [{"role": "user", "content": "Reply with a JSON object."}]


class RequestFailed(RuntimeError):
    """One request failed for good: ``transient`` after its retries ran out, else refused (a 4xx) at once.

    ``status`` is the last HTTP status, None when no reply came (timeout, dropped or refused connection).
    """

    def __init__(self, message: str, transient: bool, status: int | None = None):
        super().__init__(message)
        self.transient = transient
        self.status = status


def normalize_base_url(base_url: str) -> str:
    """``http://host:8000`` and ``http://host:8000/v1/`` both become ``http://host:8000/v1``."""
    url = base_url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise GoalcoverError(f"--base-url must start with http:// or https://, got {base_url!r}")
    return url if url.endswith("/v1") else url + "/v1"


def api_key(api_key_env: str | None = None) -> str | None:
    """The API key from ``api_key_env`` if named, else ``GOALCOVER_API_KEY``, else ``OPENAI_API_KEY``."""
    if api_key_env:
        if not os.environ.get(api_key_env):
            raise GoalcoverError(f"--api-key-env names {api_key_env}, but that environment variable is not set")
        return os.environ[api_key_env]
    return next((os.environ[n] for n in API_KEY_ENVS if os.environ.get(n)), None)


class Client:
    """JSON over HTTP with retries; one per engine. Thread-safe (each call opens its own connection)."""

    def __init__(self, base_url: str, api_key_env: str | None = None, timeout: float = 120.0, retries: int = 4,
                 backoff: float = 0.5):
        self.base_url = normalize_base_url(base_url)
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = api_key(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def request(self, path: str, body: dict | None = None, retries: int | None = None) -> dict:
        """GET (no body) or POST ``path``; retry what a retry can fix; raise :class:`RequestFailed` otherwise."""
        url = f"{self.base_url}/{path}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        retries = self.retries if retries is None else retries
        last, status = "", None
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), 30.0))
            req = urllib.request.Request(url, data=data, headers=self._headers(), method="GET" if data is None else "POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                detail = err.read().decode("utf-8", "replace")[:300]
                last, status = f"HTTP {err.code}: {detail}", err.code
                if err.code not in _RETRY_STATUS:
                    raise RequestFailed(f"{url}: {last}", transient=False, status=status) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as err:
                last, status = f"{type(err).__name__}: {getattr(err, 'reason', err)}", None
            except json.JSONDecodeError as err:  # a body cut short
                last, status = f"unreadable JSON reply ({err})", None
            logger.debug("%s: try %d of %d failed: %s", url, attempt + 1, retries + 1, last)
        raise RequestFailed(f"{url}: failed after {retries + 1} tries; last: {last}", transient=True, status=status)


def server_models(client: Client) -> list[dict]:
    try:
        return list(client.request("models").get("data") or [])
    except RequestFailed as err:
        raise EngineMisconfigured(f"cannot list the models of the server at {client.base_url} ({err})") from None


def model_identity(entry: dict) -> str:
    """Identity from a ``/v1/models`` entry: the served name, plus what it was loaded from when the server says."""
    name = entry["id"]
    root = entry.get("root")  # vLLM: the path or hub id of the weights behind a --served-model-name
    return f"{name} ({root})" if root and root != name else name


@lru_cache(maxsize=32)
def resolve_server_model(base_url: str, model: str | None, api_key_env: str | None = None) -> tuple[str, str]:
    """Ask the server (one ``GET /v1/models``, once per process) which model ``model`` is; return ``(name, identity)``.

    ``model`` may be omitted (or ``"embedded"``) when the server serves exactly one model.
    """
    client = Client(base_url, api_key_env, timeout=30, retries=2)
    entries = server_models(client)
    names = [e.get("id") for e in entries]
    if model in (None, "", "embedded"):
        if len(entries) != 1:
            raise GoalcoverError(f"the server at {client.base_url} serves {len(entries)} models ({', '.join(map(str, names))}); "
                             "choose one with --model")
        return entries[0]["id"], model_identity(entries[0])
    for entry in entries:
        if entry.get("id") == model:
            return model, model_identity(entry)
    raise GoalcoverError(f"the server at {client.base_url} does not serve {model!r}; it serves: {', '.join(map(str, names))}")


@lru_cache(maxsize=32)
def served_context(base_url: str, model: str, api_key_env: str | None = None) -> int | None:
    """The context length the server reports for ``model`` (vLLM's ``max_model_len``), or None when it says none."""
    for entry in server_models(Client(base_url, api_key_env, timeout=30, retries=2)):
        if entry.get("id") == model and isinstance(entry.get("max_model_len"), int):
            return entry["max_model_len"]
    return None


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
    out = schema.model_json_schema()
    out["additionalProperties"] = False
    return out


def _json_object(text: str | None) -> dict | None:
    try:
        # strict=False: some grammars (llama-cpp-python's) let raw newlines into strings; the content is still JSON.
        value = json.loads(text or "", strict=False)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


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
    )

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
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
        return self.counter(self.model, {"base_url": self.client.base_url, "api_key_env": self.client.api_key_env,
                                         "max_context_tokens": self.max_context_tokens})

    def __init__(self, model: str | None, base_url: str, api_key_env: str | None = None, max_in_flight: int = 8,
                 timeout: float = 120.0, retries: int = 4, backoff: float = 0.5, structured: str = "auto"):
        if structured != "auto":
            structured_fields(structured, {})  # reject an unknown kind now, not at the first request
        self.normalize_options({"base_url": base_url, "max_in_flight": max_in_flight, "timeout": timeout,
                                "retries": retries, "backoff": backoff})  # built directly, not through get_engine
        self.client = Client(base_url, api_key_env, timeout=timeout, retries=retries, backoff=backoff)
        self.model, self.identity = resolve_server_model(base_url, model, api_key_env)
        self.max_in_flight = int(max_in_flight)
        self.structured = structured
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid: int | None = None
        self._logprobs_checked = False

    @property
    def pool(self) -> ThreadPoolExecutor:
        # Threads do not survive a fork: a datasets worker that inherited this engine opens its own pool.
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="goalcover-http")
            self._pool_pid = os.getpid()
        return self._pool

    def _chat(self, chat: Chat, **fields) -> dict:
        body = {"model": self.model, "messages": list(chat), "temperature": 0.0, **fields}
        return self.client.request("chat/completions", body)

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
            body = {"model": self.model, "messages": _PROBE_CHAT, "temperature": 0.0, "max_tokens": 32,
                    **structured_fields(kind, _PROBE_SCHEMA, "probe")}
            try:
                reply = self.client.request("chat/completions", body, retries=min(self.client.retries, 1))
                text = reply["choices"][0]["message"].get("content")
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
            if (_json_object(text) or {}).get("probe") in _PROBE_VALUES:
                logger.info("%s honours structured output through %s", self.client.base_url, kind)
                return kind
            tried.append(f"{kind}: ignored (replied {str(text)[:60]!r})")
        raise EngineMisconfigured(
            f"the server at {self.client.base_url} honoured none of the structured-output parameters goalcover knows, "
            "so JSON output cannot be constrained: " + "; ".join(tried)
        )

    def generate_json(self, chats: Sequence[Chat], schema: type[BaseModel], max_new_tokens: int) -> list[str | None]:
        kind = self._structured_kind()
        fields = structured_fields(kind, strict_schema(schema), schema.__name__)

        def one(chat):
            choice = self._chat(chat, max_tokens=max_new_tokens, **fields)["choices"][0]
            text = choice["message"].get("content")
            value = _json_object(text)
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
    def choice_probs(self, chats: Sequence[Chat], choices: Sequence[str]) -> list[list[float] | None]:
        import math

        def one(chat):
            reply = self._chat(chat, max_tokens=1, logprobs=True, top_logprobs=TOP_LOGPROBS)
            top = _top_logprobs(reply)
            if top is None:
                raise EngineMisconfigured(
                    f"the server at {self.client.base_url} returned no top logprobs for logprobs=true, "
                    f"top_logprobs={TOP_LOGPROBS}; it cannot score in logprobs mode: use mode='generate'"
                )
            mass = [0.0] * len(choices)
            for token, logprob in top:
                token = token.strip()
                if token in choices:
                    mass[choices.index(token)] += math.exp(logprob)
            total = sum(mass)
            if total <= 0:
                logger.warning("no choice among the top %d tokens (%s)", TOP_LOGPROBS, [t for t, _ in top][:8])
                return None
            return [m / total for m in mass]

        return self._each(one, chats)


def _top_logprobs(reply: dict) -> list[tuple[str, float]] | None:
    """``[(token, logprob)]`` for the first generated token, in the chat format or the legacy completions format."""
    try:
        logprobs = reply["choices"][0].get("logprobs") or {}
    except (KeyError, IndexError, AttributeError):
        return None
    content = logprobs.get("content")
    if content:
        return [(t["token"], float(t["logprob"])) for t in content[0].get("top_logprobs") or []] or None
    legacy = logprobs.get("top_logprobs")
    if legacy and isinstance(legacy[0], dict):
        return [(t, float(lp)) for t, lp in legacy[0].items()] or None
    return None
