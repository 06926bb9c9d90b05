"""Generation by an OpenAI-compatible HTTP server (vLLM, or our own ``models_backend.serve``).

A ``RemoteAssistant`` stands in for ``assistants.Assistant`` (same ``generate``), so
generation can move off the machine that runs the workers by configuration alone. It
sends ``POST {base_url}/chat/completions`` with ``stream: true`` and ``n: k`` and reads
the Server-Sent Events back, so tokens still reach the page as they are produced.

The request carries the system text the in-process assistant would put before the
conversation: the HHH prompt's ``chat_system_text()`` for "hhh", and for "" (raw and
distilled) our short default system message, not none, because a server given no system
message applies its chat template's default (SmolLM2's "named SmolLM"), and raw would
then mean something different remotely and in-process.

Standard library only (``http.client``): the project does not otherwise need an HTTP client.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException, HTTPResponse, HTTPSConnection
from urllib.parse import urlsplit

from models_backend.assistants import PROMPTS
from models_backend.dialogue import ASSISTANT, HUMAN, Message
from models_backend.generation import (
    DEFAULT_SYSTEM_PROMPT,
    FINISH_EOS,
    FINISH_LENGTH,
    FINISH_STOP,
    SEED_BITS,
    Candidate,
    SamplingConfig,
)

log = logging.getLogger(__name__)

CHAT_ROLES = {HUMAN: "user", ASSISTANT: "assistant"}
_ERROR_TEXT_LIMIT = 500  # characters of a server's error text kept in our message
_MAX_LINE = 1 << 20  # longest SSE line we accept; a longer one is a broken stream


@dataclass(frozen=True)
class RemoteConfig:
    # The API root, e.g. "http://gpu-box:8000/v1"; requests go to {base_url}/chat/completions.
    base_url: str
    # The model name the server serves (vLLM's --served-model-name; serve.py: --served-name).
    model: str
    # Sent as "Authorization: Bearer <api_key>" when set (vLLM's and serve.py's --api-key).
    api_key: str | None = None
    # Longest wait for the TCP (and TLS) connection, so an unreachable server fails fast.
    connect_timeout_s: float = 5.0
    # Longest silence while reading the reply: it covers waiting behind other requests and
    # the prefill before the first event, then each gap between events; not the whole reply.
    read_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        url = urlsplit(self.base_url) if isinstance(self.base_url, str) else None
        if url is None or url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if url.query or url.fragment or url.username or url.password:
            raise ValueError(
                f"base_url must not carry a query, fragment or credentials: {self.base_url!r}"
            )
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be a non-empty string, got {self.model!r}")
        if self.api_key is not None and (
            not isinstance(self.api_key, str) or not self.api_key or not self.api_key.isprintable()
        ):
            raise ValueError("api_key must be None or a non-empty printable string")
        for name in ("connect_timeout_s", "read_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number of seconds, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


class RemoteGenerationError(RuntimeError):
    """The server could not be reached, refused the request, or sent a broken stream.

    ``status`` is the HTTP status where the server answered with an error; ``transient``
    says whether trying again later may work (unreachable, timed out, dropped, 429, 5xx).
    """

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False):
        super().__init__(message)
        self.status = status
        self.transient = transient


@dataclass
class RemoteAssistant:
    config: RemoteConfig
    prompt_name: str = ""  # one of assistants.PROMPTS
    prompt: object = None  # an HHHPrompt replacing the packaged one ("hhh" only)

    def __post_init__(self) -> None:
        if self.prompt_name not in PROMPTS:
            known = ", ".join(map(repr, PROMPTS))
            raise ValueError(f"unknown prompt {self.prompt_name!r} (known: {known})")
        if self.prompt_name and self.prompt is None:
            from models_backend.prompt import load_hhh_prompt

            self.prompt = load_hhh_prompt()

    def system_text(self) -> str:
        """What the in-process assistant puts before the conversation (module docstring)."""
        return self.prompt.chat_system_text() if self.prompt_name else DEFAULT_SYSTEM_PROMPT

    def request_body(
        self, messages: list[Message], *, k: int, sampling: SamplingConfig, seed: int
    ) -> dict:
        chat = [{"role": "system", "content": self.system_text()}]
        chat += [{"role": CHAT_ROLES[m.role], "content": m.text} for m in messages]
        body = {
            "model": self.config.model,
            "messages": chat,
            "n": k,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": seed,
            "stop": list(sampling.stop),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if sampling.ignore_eos:
            body["ignore_eos"] = True  # a vLLM extension; only sent when asked for
        return body

    def generate(
        self,
        messages: list[Message],
        *,
        k: int,
        sampling: SamplingConfig,
        on_progress: Callable[[list[str]], None] | None = None,
    ) -> list[Candidate]:
        """k replies, as ``Assistant.generate``: ``on_progress`` gets the k texts so far
        after every event that adds text (unthrottled; the last call carries the final
        texts); an exception it raises propagates and closes the connection, and the
        server stops generating at its next write that fails.

        A seed is drawn here when ``sampling.seed`` is None, so every Candidate reports
        the seed that reproduces it on the same server. ``token_count`` is exact for k = 1
        (the ``usage`` event); for k > 1 it counts each choice's content events, since
        OpenAI's ``usage`` only gives the total over all choices.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        started = time.perf_counter()
        seed = sampling.seed if sampling.seed is not None else secrets.randbits(SEED_BITS)
        body = self.request_body(messages, k=k, sampling=sampling, seed=seed)
        stream = _ChoiceStream(k)
        reported: list[str] | None = None
        connection, response = _post(self.config, "/chat/completions", body)
        try:
            _check_response(self.config, response)
            for data in _sse_data(response):
                if data == "[DONE]":
                    stream.done = True
                    break
                if stream.feed(_decode_chunk(data)) and on_progress is not None:
                    reported = stream.texts()
                    on_progress(reported)
        except OSError as exc:  # a timeout or a reset while reading
            raise RemoteGenerationError(
                f"reading the stream from {self.config.base_url} failed: {exc}", transient=True
            ) from exc
        except HTTPException as exc:  # e.g. a chunked body cut short
            raise RemoteGenerationError(
                f"the stream from {self.config.base_url} broke off: {exc!r}", transient=True
            ) from exc
        finally:
            connection.close()
        finish_reasons = stream.finish_reasons()
        if on_progress is not None and reported != stream.texts():
            on_progress(stream.texts())
        counts = stream.content_events
        if k == 1 and stream.completion_tokens is not None:
            counts = [stream.completion_tokens]
        seconds = time.perf_counter() - started
        log.debug("remote generation: k=%d in %.3fs, finish reasons %s", k, seconds, finish_reasons)
        return [
            Candidate(
                text=text, token_count=count, finish_reason=reason, seconds=seconds, seed=seed
            )
            for text, count, reason in zip(stream.texts(), counts, finish_reasons, strict=True)
        ]


@dataclass
class _ChoiceStream:
    """The k choices of one streamed completion, accumulated from its chunks."""

    k: int
    parts: list[list[str]] = field(init=False)
    content_events: list[int] = field(init=False)
    finishes: list[str | None] = field(init=False)
    completion_tokens: int | None = None  # from the usage chunk, if the server sent one
    done: bool = False  # whether "data: [DONE]" arrived

    def __post_init__(self) -> None:
        self.parts = [[] for _ in range(self.k)]
        self.content_events = [0] * self.k
        self.finishes = [None] * self.k

    def feed(self, chunk: dict) -> bool:
        """Apply one chunk; True where it added text to some choice."""
        added = False
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise _malformed(f"'choices' is not a list: {choices!r}")
        for choice in choices:
            index = choice.get("index") if isinstance(choice, dict) else None
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.k:
                raise _malformed(f"a choice with a bad index for n={self.k}: {choice!r}")
            content = (choice.get("delta") or {}).get("content")
            if content is not None and not isinstance(content, str):
                raise _malformed(f"delta content is not a string: {content!r}")
            if content:
                self.parts[index].append(content)
                self.content_events[index] += 1
                added = True
            if choice.get("finish_reason") is not None:
                self.finishes[index] = _finish_reason(choice)
        usage = chunk.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.completion_tokens = usage["completion_tokens"]
        return added

    def texts(self) -> list[str]:
        # Stripped like in-process texts; a stripped prefix is a prefix of the stripped whole.
        return ["".join(parts).strip() for parts in self.parts]

    def finish_reasons(self) -> list[str]:
        if not self.done:
            raise RemoteGenerationError(
                "the stream ended before 'data: [DONE]' (the server dropped the connection?)",
                transient=True,
            )
        missing = [i for i, reason in enumerate(self.finishes) if reason is None]
        if missing:
            raise _malformed(f"no finish_reason for choices {missing}")
        return list(self.finishes)


def _finish_reason(choice: dict) -> str:
    """OpenAI's "stop" covers both a stop string and an end-of-sequence token; vLLM tells
    them apart in ``stop_reason`` (the stop string; None or a token id for EOS)."""
    reason = choice["finish_reason"]
    if reason == "length":
        return FINISH_LENGTH
    if reason == "stop":
        if "stop_reason" in choice and not isinstance(choice["stop_reason"], str):
            return FINISH_EOS
        return FINISH_STOP
    raise _malformed(f"choice {choice.get('index')} finished with {reason!r}")


def _post(config: RemoteConfig, path: str, body: dict) -> tuple[HTTPConnection, HTTPResponse]:
    url = urlsplit(config.base_url)
    connection_class = HTTPSConnection if url.scheme == "https" else HTTPConnection
    connection = connection_class(url.hostname, url.port, timeout=config.connect_timeout_s)
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    try:
        connection.connect()
        connection.sock.settimeout(config.read_timeout_s)  # connect done: now the read limit
        connection.request(
            "POST", url.path.rstrip("/") + path, body=json.dumps(body).encode(), headers=headers
        )
        return connection, connection.getresponse()
    except (OSError, HTTPException) as exc:
        connection.close()
        raise RemoteGenerationError(
            f"cannot reach the generation server at {config.base_url}: {exc}", transient=True
        ) from exc


def _check_response(config: RemoteConfig, response: HTTPResponse) -> None:
    if response.status != 200:
        text = _error_text(response.read(64 * 1024))
        raise RemoteGenerationError(
            f"the generation server at {config.base_url} answered HTTP {response.status}: {text}",
            status=response.status,
            transient=response.status == 429 or response.status >= 500,
        )
    content_type = response.getheader("Content-Type", "")
    if not content_type.startswith("text/event-stream"):
        raise _malformed(f"expected text/event-stream, got {content_type!r}")


def _error_text(raw: bytes) -> str:
    """The message in an OpenAI-style (or vLLM/FastAPI-style) error body, else the body."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            text = str(error["message"])
        elif payload.get("message") or payload.get("detail"):
            text = str(payload.get("message") or payload.get("detail"))
    if len(text) > _ERROR_TEXT_LIMIT:
        text = text[:_ERROR_TEXT_LIMIT] + "…"
    return text or "(no error text)"


def _sse_data(response: HTTPResponse) -> Iterator[str]:
    """The data of each Server-Sent Event: ``data:`` lines up to a blank line, joined by
    newlines; comments (``:``) and other fields (``event:``, ``id:``) are skipped."""
    lines: list[str] = []
    while True:
        raw = response.readline(_MAX_LINE)
        if len(raw) == _MAX_LINE and not raw.endswith(b"\n"):
            raise _malformed(f"an event line longer than {_MAX_LINE} bytes")
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise _malformed(f"an event line that is not UTF-8: {exc}") from exc
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
            if not raw:  # end of the body
                return
            continue
        name, _, value = line.partition(":")
        if name == "data":
            lines.append(value.removeprefix(" "))


def _decode_chunk(data: str) -> dict:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise _malformed(f"an event that is not JSON: {data[:200]!r}") from None
    if not isinstance(chunk, dict):
        raise _malformed(f"an event that is not a JSON object: {data[:200]!r}")
    if chunk.get("error"):  # vLLM reports a failure after the stream started this way
        raise RemoteGenerationError(
            f"the generation server failed mid-stream: {_error_text(data.encode())}",
            transient=True,
        )
    return chunk


def _malformed(detail: str) -> RemoteGenerationError:
    return RemoteGenerationError(f"malformed stream from the generation server: {detail}")
