"""A scripted OpenAI-compatible server on 127.0.0.1: answers digit-probability requests with fixed logprobs and records
every request (body and headers), so tests can see exactly what goalcover's openai engine sent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "scripted-judge"
TOP = [{"token": "3", "logprob": -0.2}, {"token": "4", "logprob": -1.8}, {"token": "x", "logprob": -3.0}]


class ScriptedServer:
    """``max_model_len``: reported in ``GET /v1/models`` as vLLM does (None: not reported)."""

    def __init__(self, max_model_len: int | None = None):
        self.requests: list[dict] = []  # {"path", "headers", "body"}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                self._record(None)
                entry = {"id": MODEL, "object": "model"}
                if max_model_len is not None:
                    entry["max_model_len"] = max_model_len
                self._reply({"object": "list", "data": [entry]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._record(body)
                if not body.get("logprobs"):
                    self._reply({"error": "this scripted server only answers logprobs requests"}, 400)
                    return
                content = [{"token": "3", "logprob": -0.2, "top_logprobs": TOP}]
                self._reply({"choices": [{"index": 0, "message": {"role": "assistant", "content": "3"},
                                          "logprobs": {"content": content}, "finish_reason": "length"}]})

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

    def chats(self) -> list[list[dict]]:
        return [r["body"]["messages"] for r in self.requests if r["body"]]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
