"""A small OpenAI-compatible server for one model: ``python -m models_backend.serve``.

Why ours: to test ``remote.RemoteAssistant`` against a real HTTP server without vLLM, and
to move generation to another machine with nothing but this project installed. It serves
``GET /v1/models``, ``GET /health`` and ``POST /v1/chat/completions`` (streamed or not).
It is not vLLM: one generation at a time per process, no batching across requests, one
request per connection (HTTP/1.0, so a stream simply ends when the connection closes).

The request is applied literally, as by any OpenAI server: its messages, system message
included, become prompt ids through ``build_prompt_ids``; without a system message there
is no system text (a chat template then applies its own default). ``RemoteAssistant``
sends the system text the in-process assistant uses, so both generate the same replies.
``--prompt hhh`` changes no reply: it computes the HHH prompt's KV cache once, and a
request whose prompt starts with the prompt's ids (its system message is the HHH prompt)
continues from a copy instead of running the prompt through the model again.

A request's ``n`` choices are generated together (``generate_from_prompt_ids(k=n)``), so
they share one prefill. ``finish_reason`` is "stop" or "length"; as in vLLM,
``stop_reason`` is null where "stop" was an end-of-sequence token and the stop string
where it was one (which string is only known when one was given; with several, the key is
left out). Sampling parameters other than temperature, top_p, max_tokens, stop, seed, n
and ``ignore_eos`` (a vLLM extension) are accepted and ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import logging
import math
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from models_backend.assistants import PROMPTS, build_assistant
from models_backend.dialogue import ASSISTANT, HUMAN, Message
from models_backend.generation import (
    FINISH_EOS,
    FINISH_LENGTH,
    CachedPrefix,
    Candidate,
    SamplingConfig,
    build_prompt_ids,
    generate_from_prompt_ids,
)
from models_backend.loading import LoadedLM
from models_backend.specs import MAX_SAMPLES  # the most choices (n) one request asks for

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 128
MAX_STOP_STRINGS = 16
MAX_BODY_BYTES = 1 << 20
_ROLES = {"user": HUMAN, "assistant": ASSISTANT}


class BadRequest(ValueError):
    """A request we refuse with an OpenAI-style error; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class ChatRequest:
    system: str | None  # the leading system message's text, None where there is none
    messages: list[Message]  # the conversation, ending with the person's message
    n: int
    sampling: SamplingConfig
    stream: bool
    include_usage: bool  # stream_options.include_usage: a last chunk with the usage
    model: str | None  # the model name asked for, checked against the served one


def parse_chat_request(body: bytes) -> ChatRequest:
    """The request in ``body``; raises BadRequest naming the first thing wrong with it."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object")
    system, messages = _parse_messages(payload.get("messages"))
    n = _get(payload, "n", 1, _is_int, "an integer")
    if not 1 <= n <= MAX_SAMPLES:
        raise BadRequest(f"n must be between 1 and {MAX_SAMPLES}, got {n}")
    temperature = _get(payload, "temperature", 1.0, _is_number, "a number")
    if not math.isfinite(temperature) or not 0 <= temperature <= 2:
        raise BadRequest(f"temperature must be between 0 and 2, got {temperature}")
    top_p = _get(payload, "top_p", 1.0, _is_number, "a number")
    key = "max_completion_tokens" if "max_completion_tokens" in payload else "max_tokens"
    max_tokens = _get(payload, key, DEFAULT_MAX_TOKENS, _is_int, "an integer")
    seed = _get(payload, "seed", None, _is_int, "an integer")
    stop = payload.get("stop")
    stop = [stop] if isinstance(stop, str) else stop or []
    if not isinstance(stop, list) or len(stop) > MAX_STOP_STRINGS:
        raise BadRequest(f"stop must be a string or a list of at most {MAX_STOP_STRINGS}")
    options = _get(payload, "stream_options", {}, lambda v: isinstance(v, dict), "an object")
    try:
        sampling = SamplingConfig(
            max_new_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            stop=tuple(stop),
            ignore_eos=_get(payload, "ignore_eos", False, _is_bool, "true or false"),
        )
    except ValueError as exc:  # its messages name the field (max_new_tokens is max_tokens)
        raise BadRequest(str(exc).replace("max_new_tokens", key)) from None
    return ChatRequest(
        system=system,
        messages=messages,
        n=n,
        sampling=sampling,
        stream=_get(payload, "stream", False, _is_bool, "true or false"),
        include_usage=_get(options, "include_usage", False, _is_bool, "true or false"),
        model=_get(payload, "model", None, lambda v: isinstance(v, str), "a string"),
    )


def _parse_messages(raw) -> tuple[str | None, list[Message]]:
    if not isinstance(raw, list) or not raw:
        raise BadRequest("messages must be a non-empty list")
    system = None
    messages = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("content"), str):
            raise BadRequest(f"messages[{i}] must be an object with a string content")
        role = item.get("role")
        if role == "system" and i == 0:
            system = item["content"]
        elif role in _ROLES:
            messages.append(Message(_ROLES[role], item["content"]))
        else:
            allowed = "system (first only), user or assistant"
            raise BadRequest(f"messages[{i}] has role {role!r}; roles are {allowed}")
    if not messages or messages[-1].role != HUMAN:
        raise BadRequest("the last message must be a user message")
    return system, messages


def _get(payload: dict, key: str, default, check, kind: str):
    value = payload.get(key)
    if value is None:
        return default
    if not check(value):
        raise BadRequest(f"{key} must be {kind}, got {value!r}")
    return value


@dataclass
class ModelBackend:
    lm: LoadedLM
    served_name: str  # what /v1/models lists and requests must name
    prefix: CachedPrefix | None  # the HHH prompt's cache where the server was started with it
    api_key: str | None = None
    # One generation at a time: the model (and its cache copies) is not thread-safe, and
    # two interleaved generations would be no faster on one device anyway.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def generate(self, request: ChatRequest, on_progress=None) -> tuple[int, list[Candidate]]:
        """(prompt token count, the n candidates); ValueError for a prompt the model refuses."""
        ids = build_prompt_ids(self.lm.tokenizer, request.messages, system=request.system)
        prefix = self.prefix
        if prefix is not None and (
            len(ids) <= len(prefix.ids) or tuple(ids[: len(prefix.ids)]) != prefix.ids
        ):
            prefix = None
        log.debug("%d prompt tokens, %s", len(ids), "prompt cache reused" if prefix else "no cache")
        with self.lock:
            candidates = generate_from_prompt_ids(
                self.lm,
                ids,
                k=request.n,
                sampling=request.sampling,
                on_progress=on_progress,
                prefix=prefix,
            )
        return len(ids), candidates


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # a stream ends with the connection; no chunked encoding
    timeout = 60  # seconds a client may stall reading or writing before we drop it

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send_json(200, {"status": "ok"})
        elif self.path != "/v1/models":
            self._send_error(BadRequest(f"no route GET {self.path}", 404, "not_found"))
        elif self._authorized():
            model = {
                "id": self.server.backend.served_name,
                "object": "model",
                "owned_by": "hhh-lab",
            }
            self._send_json(200, {"object": "list", "data": [model]})

    def do_POST(self) -> None:
        if self.path != "/v1/chat/completions":
            self._send_error(BadRequest(f"no route POST {self.path}", 404, "not_found"))
            return
        if not self._authorized():
            return
        backend = self.server.backend
        try:
            request = parse_chat_request(self._read_body())
            if request.model is not None and request.model != backend.served_name:
                message = f"the model {request.model!r} does not exist; this server serves "
                raise BadRequest(message + repr(backend.served_name), 404, "model_not_found")
            if request.stream:
                _Stream(self, request).run()
                return
            prompt_tokens, candidates = backend.generate(request)
        except BadRequest as exc:
            self._send_error(exc)
            return
        except ValueError as exc:  # e.g. a prompt longer than the model's context
            self._send_error(BadRequest(str(exc)))
            return
        except Exception:
            log.exception("generation failed")
            self._send_error(BadRequest("internal error (see the server log)", 500))
            return
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": c.text},
                **_finish_fields(c, request.sampling.stop),
            }
            for i, c in enumerate(candidates)
        ]
        self._send_json(
            200,
            {
                **_envelope("chat.completion", backend.served_name),
                "choices": choices,
                "usage": _usage(prompt_tokens, candidates),
            },
        )

    def _authorized(self) -> bool:
        expected = self.server.backend.api_key
        given = self.headers.get("Authorization", "")
        if expected is None or hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
            return True
        self._send_error(BadRequest("missing or wrong API key", 401, "invalid_api_key"))
        return False

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise BadRequest("a Content-Length header is required", 411) from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise BadRequest(f"the body must be at most {MAX_BODY_BYTES} bytes", 413)
        return self.rfile.read(length)

    def _send_json(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, exc: BadRequest) -> None:
        kind = "invalid_request_error" if exc.status < 500 else "server_error"
        self._send_json(exc.status, {"error": _error(str(exc), kind, exc.code)})

    def log_message(self, fmt: str, *args) -> None:
        log.info("%s %s", self.address_string(), fmt % args)


class _Stream:
    """One streamed completion: OpenAI ``chat.completion.chunk`` events.

    The headers go out with the first event, so a request refused before any token (a
    prompt too long for the model) still gets a plain 400. Events are written from
    ``on_progress``, i.e. from the generating thread: a client that goes away makes the
    write fail, which stops the generation and frees the model for the next request.
    """

    def __init__(self, handler: _Handler, request: ChatRequest):
        self.handler = handler
        self.request = request
        self.envelope = _envelope("chat.completion.chunk", handler.server.backend.served_name)
        self.sent = [""] * request.n  # the text each choice has been sent so far
        self.started = False

    def run(self) -> None:
        try:
            prompt_tokens, candidates = self.handler.server.backend.generate(
                self.request, on_progress=self.progress
            )
            self.finish(prompt_tokens, candidates)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            log.info("the client went away; generation stopped")
        except Exception as exc:
            if not self.started:
                raise  # nothing sent yet: the caller answers with a plain error
            log.exception("generation failed mid-stream")
            with contextlib.suppress(OSError):  # vLLM's way: an error event, then the end
                self.event({"error": _error(f"generation failed: {exc}", "server_error")})

    def finish(self, prompt_tokens: int, candidates: list[Candidate]) -> None:
        self.progress([c.text for c in candidates])  # anything the last step held back
        for i, candidate in enumerate(candidates):
            finish = _finish_fields(candidate, self.request.sampling.stop)
            self.event(self.chunk({"index": i, "delta": {}, **finish}))
        if self.request.include_usage:
            self.event({**self.envelope, "choices": [], "usage": _usage(prompt_tokens, candidates)})
        self.handler.wfile.write(b"data: [DONE]\n\n")

    def progress(self, texts: list[str]) -> None:
        self.start()
        for i, text in enumerate(texts):
            if text == self.sent[i]:
                continue
            if not text.startswith(self.sent[i]):  # generation promises growing texts
                raise RuntimeError(f"choice {i}: {text!r} does not extend {self.sent[i]!r}")
            delta = text[len(self.sent[i]) :]
            self.event(self.chunk({"index": i, "delta": {"content": delta}, "finish_reason": None}))
            self.sent[i] = text

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        handler = self.handler
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.end_headers()
        for i in range(self.request.n):
            role = {"role": "assistant", "content": ""}
            self.event(self.chunk({"index": i, "delta": role, "finish_reason": None}))

    def chunk(self, choice: dict) -> dict:
        return {**self.envelope, "choices": [choice]}

    def event(self, payload: dict) -> None:
        self.handler.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())


def _envelope(kind: str, model: str) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
    }


def _finish_fields(candidate: Candidate, stops: tuple[str, ...]) -> dict:
    if candidate.finish_reason == FINISH_LENGTH:
        return {"finish_reason": "length", "stop_reason": None}
    if candidate.finish_reason == FINISH_EOS:
        return {"finish_reason": "stop", "stop_reason": None}
    return {"finish_reason": "stop", **({"stop_reason": stops[0]} if len(stops) == 1 else {})}


def _usage(prompt_tokens: int, candidates: list[Candidate]) -> dict:
    completion = sum(c.token_count for c in candidates)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }


def _error(message: str, kind: str, code: str | None = None) -> dict:
    return {"message": message, "type": kind, "param": None, "code": code}


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stalled connection must not keep the process from exiting

    def __init__(self, address: tuple[str, int], backend: ModelBackend):
        super().__init__(address, _Handler)
        self.backend = backend


def make_server(
    lm: LoadedLM,
    prompt_name: str = "",
    host: str = "127.0.0.1",
    port: int = 8001,
    *,
    prompt=None,
    served_name: str | None = None,
    api_key: str | None = None,
) -> ThreadingHTTPServer:
    """A bound server (port 0 picks a free one: ``server.server_address``); call
    ``serve_forever()``. ``prompt`` (an HHHPrompt) replaces the packaged HHH prompt, as in
    ``build_assistant``; ``served_name`` defaults to the model's spec."""
    if prompt_name not in PROMPTS:
        raise ValueError(f"unknown prompt {prompt_name!r} (known: {', '.join(map(repr, PROMPTS))})")
    prefix = build_assistant(lm, prompt_name, prompt=prompt).prefix
    backend = ModelBackend(lm, served_name or lm.spec, prefix, api_key)
    return _Server((host, port), backend)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_bool(value) -> bool:
    return isinstance(value, bool)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m models_backend.serve", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model", required=True, help="model spec or directory")
    parser.add_argument("--prompt", choices=["hhh"], default="", help="cache this prompt")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--served-name", help="the model name clients send (default: --model)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda where present")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    import torch

    from models_backend.decode import prepare_for_decoding
    from models_backend.loading import load_causal_lm

    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_causal_lm(args.model, device=args.device)
    prepare_for_decoding(lm.model)  # a server only generates
    # The key comes from the environment, not the command line, where `ps` would show it.
    api_key = os.environ.get("LAB_SERVE_API_KEY") or None
    server = make_server(
        lm, args.prompt, args.host, args.port, served_name=args.served_name, api_key=api_key
    )
    host, port = server.server_address[:2]
    log.info(
        "serving %s on http://%s:%d/v1 (prompt: %s)", lm.spec, host, port, args.prompt or "none"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopped")
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
