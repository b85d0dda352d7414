"""Real local servers for the engine tests: llama-cpp-python's OpenAI-compatible server and a fault-injecting proxy.

Both listen on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` on a free loopback port, serving one GGUF under the name ``alias``."""

    def __init__(self, gguf: str, alias: str = "smollm2-135m", n_ctx: int = 4096, threads: int = 2):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.alias = alias
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--model_alias", alias, "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
               "--n_threads_batch", str(threads)]
        self.log = open(os.devnull, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with code {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"llama_cpp.server not ready after {timeout} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class FaultProxy:
    """An HTTP proxy in front of ``upstream`` that misbehaves on purpose.

    Each POST takes the next action from ``plan`` (then ``default``): ``"ok"`` forwards; ``"500"``, ``"400"``, ... answer
    that status (any number); ``"drop"`` closes the connection without a reply. (Concurrency and timeouts are shown
    with ``fake_openai.ScriptedServer``, whose events do not depend on how fast the model answers.)
    Fields named in ``strip`` are removed from every POST body before forwarding (a server ignoring a parameter).
    GETs are always forwarded. ``posts`` counts POSTs.
    """

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.plan: deque[str] = deque()
        self.default = "ok"
        self.strip: set[str] = set()
        self.posts = 0
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._forward(None)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with proxy.lock:
                    proxy.posts += 1
                    action = proxy.plan.popleft() if proxy.plan else proxy.default
                    for field in proxy.strip:
                        body.pop(field, None)
                    proxy.bodies.append(body)
                    proxy.auth.append(self.headers.get("Authorization"))
                self._act(action, body)

            def _act(self, action, body):
                if action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if action.isdigit():
                    self._reply(int(action), b'{"error": {"message": "injected fault"}}')
                    return
                self._forward(json.dumps(body).encode())

            def _forward(self, data):
                url = proxy.upstream + self.path.removeprefix("/v1")
                req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                             method="GET" if data is None else "POST")
                try:
                    with urllib.request.urlopen(req, timeout=300) as resp:
                        self._reply(resp.status, resp.read())
                except urllib.error.HTTPError as err:
                    self._reply(err.code, err.read())
                except OSError:  # the client gave up (its timeout) while we waited upstream
                    self.close_connection = True

            def _reply(self, status, payload):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        with self.lock:
            self.plan.clear()
            self.default = "ok"
            self.strip = set()
            self.posts = 0
            self.bodies = []
            self.auth = []

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
