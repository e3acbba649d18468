"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions protocol, scripted per request.

The LLM tests drive it with the real ``langchain-openai`` client (``TORCHSCOUT_LLM=openai:tiny``,
``OPENAI_BASE_URL``), so retries, timeouts, streaming, token caps and usage are exercised
end to end over sockets. Each request takes the next :class:`Behaviour` of the script (then the
``default`` one); the server records every request it received.

    with OpenAIServer(Behaviour(text="hello"), default=Behaviour(status=500)) as server:
        ...  # OPENAI_BASE_URL=server.base_url
        server.requests  # [{"body": {...}, "time": ...}, ...]
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    """How the server answers one request."""

    text: str = ""
    status: int = 200                 # 500: an error body instead of a reply
    first_delay_s: float = 0.0        # silence before the first byte
    chunk_delay_s: float = 0.0        # pause between streamed chunks (a slow but alive server)
    silent: bool = False              # never answer: hold the connection until the server stops
    malformed: bool = False           # a body / stream line that is not JSON
    finish_reason: str | None = None  # default: "stop", or "length" when the token cap cut the text
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # [{"name": ..., "arguments": {...}}]
    reject_response_format: bool = False  # answer 400 when the request asks for JSON-schema output
    report_usage: bool = True


TOKEN = re.compile(r"\S+\s*|\s+")


def tokens_of(text: str) -> list[str]:
    """The server's 'tokens': words with their trailing whitespace."""
    return TOKEN.findall(text)


class OpenAIServer:
    """Start with ``with OpenAIServer(...) as server``; ``base_url`` goes into OPENAI_BASE_URL."""

    def __init__(self, *script: Behaviour, default: Behaviour | None = None,
                 respond: Callable[[dict[str, Any]], Behaviour] | None = None) -> None:
        self.script = list(script)
        self.default = default or Behaviour(status=500)
        self.respond = respond  # when given: the behaviour for each request body (the script is not used)
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def next_behaviour(self, body: dict[str, Any]) -> Behaviour:
        with self._lock:
            self.requests.append({"body": body, "time": time.monotonic()})
            if self.respond is not None:
                return self.respond(body)
            return self.script.pop(0) if self.script else self.default

    def __enter__(self) -> OpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def _handler_for(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            return  # keep test output clean

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            behaviour = server.next_behaviour(body)
            if behaviour.silent:
                server.release.wait()
                return
            if behaviour.first_delay_s and server.release.wait(behaviour.first_delay_s):
                return
            if behaviour.status != 200:
                self._send_json(behaviour.status, {"error": {"message": f"scripted HTTP {behaviour.status}",
                                                             "type": "server_error"}})
                return
            if behaviour.reject_response_format and "response_format" in body:
                self._send_json(400, {"error": {"message": "response_format is not supported by this server",
                                                "type": "invalid_request_error"}})
                return
            if body.get("stream"):
                self._stream(body, behaviour)
            else:
                self._whole(body, behaviour)

        def _send_json(self, status: int, payload: dict[str, Any] | str) -> None:
            data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _whole(self, body: dict[str, Any], behaviour: Behaviour) -> None:
            if behaviour.malformed:
                self._send_json(200, '{"id": "x", "choices": [{"message": ')
                return
            pieces, finish = _capped(body, behaviour)
            message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces)}
            if behaviour.tool_calls:
                message["tool_calls"] = _tool_calls(behaviour)
            self._send_json(200, {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                                  "model": body.get("model", "tiny"),
                                  "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                                  "usage": _usage(body, pieces)})

        def _stream(self, body: dict[str, Any], behaviour: Behaviour) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            if behaviour.malformed:
                self._event('{"id": "x", "choices": [{"delta": ')
                return
            pieces, finish = _capped(body, behaviour)
            self._event(_chunk(body, {"role": "assistant", "content": ""}))
            for index, piece in enumerate(pieces):
                if index and behaviour.chunk_delay_s and server.release.wait(behaviour.chunk_delay_s):
                    return
                self._event(_chunk(body, {"content": piece}))
            if behaviour.tool_calls:
                self._event(_chunk(body, {"tool_calls": [{"index": number, **call} for number, call
                                                         in enumerate(_tool_calls(behaviour))]}))
            self._event(_chunk(body, {}, finish))
            if behaviour.report_usage and (body.get("stream_options") or {}).get("include_usage"):
                self._event(json.dumps({"id": "chatcmpl-test", "object": "chat.completion.chunk",
                                        "created": int(time.time()), "model": body.get("model", "tiny"),
                                        "choices": [], "usage": _usage(body, pieces)}))
            self._event("[DONE]")

        def _event(self, data: str) -> None:
            try:
                self.wfile.write(f"data: {data}\n\n".encode())
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up on this reply

    return Handler


def _capped(body: dict[str, Any], behaviour: Behaviour) -> tuple[list[str], str]:
    pieces = tokens_of(behaviour.text)
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(cap, int) and len(pieces) > cap:
        return pieces[:cap], "length"
    return pieces, behaviour.finish_reason or ("tool_calls" if behaviour.tool_calls else "stop")


def _usage(body: dict[str, Any], pieces: list[str]) -> dict[str, int]:
    prompt = sum(len(tokens_of(str(message.get("content") or ""))) for message in body.get("messages", []))
    return {"prompt_tokens": prompt, "completion_tokens": len(pieces), "total_tokens": prompt + len(pieces)}


def _chunk(body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> str:
    return json.dumps({"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
                       "model": body.get("model", "tiny"),
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def _tool_calls(behaviour: Behaviour) -> list[dict[str, Any]]:
    return [{"id": f"call_{number}", "type": "function",
             "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))}}
            for number, call in enumerate(behaviour.tool_calls)]
