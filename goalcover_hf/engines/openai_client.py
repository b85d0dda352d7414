"""HTTP to an OpenAI-compatible server: requests with retries, the API key, and which models the server serves.

The API key is read from an environment variable at request time and never logged.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request
from functools import lru_cache

from ..errors import GoalcoverError
from ..logging import get_logger
from .base import EngineMisconfigured

logger = get_logger(__name__)

API_KEY_ENVS = ("GOALCOVER_API_KEY", "OPENAI_API_KEY")
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


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
    """The models a server lists at ``GET /v1/models``."""
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
