"""A scripted OpenAI-compatible server on 127.0.0.1: answers digit-probability requests with fixed logprobs and records
every request (body and headers), so tests can see exactly what goalcover's openai engine sent.

It answers at once (no model behind it), and can be told to hold requests until several are in at the same time
(:meth:`ScriptedServer.hold_until`) or to never answer one (``plan.append("hang")``): concurrency and timeouts are
then shown by events, not by how fast the machine is. A test scripts other servers' behaviour (a thinking model, a
server that caps top_logprobs, a hosted API) by setting ``respond``; :func:`logprobs_reply` and :func:`chat_reply`
build the usual replies.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "scripted-judge"
TOP = [{"token": "3", "logprob": -0.2}, {"token": "4", "logprob": -1.8}, {"token": "x", "logprob": -3.0}]
PATIENCE = 60.0  # seconds a held request waits before giving up on the others: only a failing test waits that long


def logprobs_reply(top=TOP, first: str | None = None, **message) -> dict:
    """A one-token chat completion whose first token is ``first`` (default: the most likely of ``top``), with the
    ``top`` logprobs; ``message`` adds fields to the message (e.g. ``reasoning_content``)."""
    first = first if first is not None else max(top, key=lambda t: t["logprob"])["token"]
    logprob = next((t["logprob"] for t in top if t["token"] == first), -0.1)
    content = [{"token": first, "logprob": logprob, "top_logprobs": list(top)}]
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": first, **message},
                         "logprobs": {"content": content}, "finish_reason": "length"}]}


def chat_reply(content: str, finish_reason: str = "stop", **message) -> dict:
    """A chat completion answering ``content`` (``message`` adds fields, e.g. ``reasoning_content``)."""
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content, **message},
                         "finish_reason": finish_reason}]}


class ScriptedServer:
    """``max_model_len``: reported in ``GET /v1/models`` as vLLM does (None: not reported).

    Each POST takes the next action from ``plan``, else answers: ``"hang"`` never answers (until :meth:`close`), so a
    client's timeout fires for certain. ``max_in_flight`` is the most POSTs the server held at once.

    ``respond(body, headers)``, when set, answers each POST: ``(status, payload)``, or None for the default answer.
    ``models``: the ids ``GET /v1/models`` lists (default: :data:`MODEL`); ``key``: when set, every request must carry
    ``Authorization: Bearer KEY`` (else 401), as a hosted API wants.
    """

    def __init__(self, max_model_len: int | None = None, models: list[str] | None = None, key: str | None = None):
        self.respond = None
        self.requests: list[dict] = []  # {"path", "headers", "body"}
        self.plan: deque[str] = deque()
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.gate_at = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _refused(self) -> bool:
                if key is not None and self.headers.get("Authorization") != f"Bearer {key}":
                    self._reply({"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}, 401)
                    return True
                return False

            def do_GET(self):
                self._record(None)
                if self._refused():
                    return
                entries = [{"id": name, "object": "model"} for name in models or [MODEL]]
                if max_model_len is not None:
                    entries[0]["max_model_len"] = max_model_len
                self._reply({"object": "list", "data": entries})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._record(body)
                if self._refused():
                    return
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    if server.in_flight >= server.gate_at:
                        server.gate.set()
                    action = server.plan.popleft() if server.plan else "answer"
                try:
                    if action == "hang":
                        server.closing.wait(PATIENCE)
                        self.close_connection = True
                        return
                    if not server.gate.wait(PATIENCE):
                        server.gate.set()  # the others never came: let everyone through; the test sees max_in_flight
                    self._answer(body)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self, body):
                scripted = server.respond(body, dict(self.headers)) if server.respond else None
                if scripted is not None:
                    self._reply(scripted[1], scripted[0])
                    return
                if not body.get("logprobs"):
                    self._reply({"error": "this scripted server only answers logprobs requests"}, 400)
                    return
                self._reply(logprobs_reply())

            def _record(self, body):
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})

            def _reply(self, payload, status=200):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def hold_until(self, n: int) -> None:
        """Hold every POST until ``n`` are in at once (then let all through): proof that a client overlaps them."""
        with self.lock:
            self.gate_at = n
            self.gate.clear()

    @property
    def posts(self) -> int:
        return sum(1 for r in self.requests if r["body"] is not None)

    def chats(self) -> list[list[dict]]:
        return [r["body"]["messages"] for r in self.requests if r["body"]]

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
