"""RemoteAssistant against our own OpenAI-compatible server (models_backend.serve), in-process."""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from models_backend.assistants import build_assistant
from models_backend.dialogue import Message
from models_backend.generation import FINISH_STOP, SamplingConfig
from models_backend.prompt import load_hhh_prompt
from models_backend.remote import RemoteAssistant, RemoteConfig, RemoteGenerationError
from models_backend.serve import make_server
from models_backend.specs import MAX_SAMPLES
from tests.test_assistants import SHORT_PROMPT
from tests.tiny_models import chaotic_tiny_lm

MESSAGES = [
    Message("human", "Can you suggest a name for my cat?"),
    Message("assistant", "How about Miso?"),
    Message("human", "Something longer, please."),
]
API_KEY = "test-key-123"


def _greedy(max_new_tokens: int = 16, stop: tuple[str, ...] = ()) -> SamplingConfig:
    return SamplingConfig(max_new_tokens=max_new_tokens, temperature=0, stop=stop)


@pytest.fixture(scope="module")
def lm():
    return chaotic_tiny_lm(seed=2)  # varied greedy output, so equal texts mean something


@pytest.fixture(scope="module")
def short_prompt(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompt") / "short.txt"
    path.write_text(SHORT_PROMPT, encoding="utf-8")
    return load_hhh_prompt(path)


def _serve(server: ThreadingHTTPServer):
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def raw_url(lm):
    yield from _serve(make_server(lm, "", "127.0.0.1", 0))


@pytest.fixture(scope="module")
def hhh_url(lm, short_prompt):
    yield from _serve(make_server(lm, "hhh", "127.0.0.1", 0, prompt=short_prompt))


@pytest.fixture(scope="module")
def keyed_url(lm):
    yield from _serve(make_server(lm, "", "127.0.0.1", 0, api_key=API_KEY))


def _remote(url: str, prompt_name: str = "", prompt=None, **config) -> RemoteAssistant:
    return RemoteAssistant(RemoteConfig(url, "tiny-chaotic", **config), prompt_name, prompt)


def _post(url: str, payload, path: str = "/chat/completions") -> tuple[int, dict]:
    host_port = url.removeprefix("http://").removesuffix("/v1")
    connection = HTTPConnection(host_port, timeout=10)
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    try:
        connection.request("POST", "/v1" + path, body=body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _middle_piece(text: str) -> str:
    """A printable piece (two characters if possible) from the middle of ``text``."""
    for width in (2, 1):
        for start in range(len(text) // 2, len(text) - width + 1):
            piece = text[start : start + width]
            if piece.isprintable() and not piece.isspace() and "\ufffd" not in piece:
                return piece
    raise AssertionError(f"no usable stop string in {text!r}")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("prompt_name", ["", "hhh"])
def test_remote_greedy_candidates_equal_the_in_process_assistants(
    lm, short_prompt, raw_url, hhh_url, prompt_name
):
    url, prompt = (hhh_url, short_prompt) if prompt_name else (raw_url, None)
    local = build_assistant(lm, prompt_name, prompt=prompt).generate(
        MESSAGES, k=2, sampling=_greedy()
    )
    remote = _remote(url, prompt_name, prompt).generate(MESSAGES, k=2, sampling=_greedy())
    assert len(remote) == 2
    assert [c.text for c in remote] == [c.text for c in local]
    assert [c.finish_reason for c in remote] == [c.finish_reason for c in local]
    assert all(c.seed == remote[0].seed and c.seconds > 0 for c in remote)


def test_a_seeded_sampled_reply_is_the_one_the_in_process_assistant_samples(lm, raw_url):
    sampling = SamplingConfig(max_new_tokens=12, temperature=0.9, top_p=0.9, seed=1234, stop=())
    local = build_assistant(lm, "").generate(MESSAGES, k=1, sampling=sampling)
    remote = _remote(raw_url).generate(MESSAGES, k=1, sampling=sampling)
    assert (remote[0].text, remote[0].seed) == (local[0].text, 1234)
    assert remote[0].token_count == local[0].token_count  # k = 1: from the usage event


def test_the_hhh_server_continues_from_its_cached_prompt(hhh_url, short_prompt, caplog):
    with caplog.at_level(logging.DEBUG, logger="models_backend.serve"):
        _remote(hhh_url, "hhh", short_prompt).generate(MESSAGES, k=1, sampling=_greedy(4))
    assert "prompt cache reused" in caplog.text


def test_on_progress_sees_the_text_grow_and_ends_with_the_final_texts(raw_url):
    seen: list[list[str]] = []
    candidates = _remote(raw_url).generate(
        MESSAGES, k=2, sampling=_greedy(16), on_progress=lambda texts: seen.append(list(texts))
    )
    assert len(seen) > 2
    for before, after in zip(seen, seen[1:], strict=False):
        assert all(a.startswith(b) for b, a in zip(before, after, strict=True))
    assert seen[-1] == [c.text for c in candidates]
    assert len(seen[0][0]) < len(seen[-1][0])


def test_a_stop_string_cuts_the_remote_reply_where_the_in_process_one_is_cut(lm, raw_url):
    full = build_assistant(lm, "").generate(MESSAGES, k=1, sampling=_greedy(24))[0].text
    stop = _middle_piece(full)
    local = build_assistant(lm, "").generate(MESSAGES, k=1, sampling=_greedy(24, (stop,)))
    remote = _remote(raw_url).generate(MESSAGES, k=1, sampling=_greedy(24, (stop,)))
    assert remote[0].text == local[0].text == full[: full.index(stop)].strip()
    assert remote[0].finish_reason == FINISH_STOP


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "not valid JSON"),
        ({"model": "tiny-chaotic"}, "messages must be a non-empty list"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "has role 'robot'"),
        ({"messages": [{"role": "user", "content": 3}]}, "string content"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "last message must be a user"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 0}, "n must be between 1 and"),
        (
            {"messages": [{"role": "user", "content": "hi"}], "n": MAX_SAMPLES + 1},
            f"n must be between 1 and {MAX_SAMPLES},",
        ),
        ({"messages": [{"role": "user", "content": "hi"}], "temperature": -1}, "temperature"),
        ({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, "temperature"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "hi"}], "stop": [""]}, "stop strings"),
    ],
)
def test_the_server_refuses_a_bad_request_with_an_openai_style_400(raw_url, payload, message):
    status, body = _post(raw_url, payload)
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert message in body["error"]["message"]


def test_the_server_refuses_a_prompt_longer_than_the_model_reads_with_a_400(raw_url):
    long = {"messages": [{"role": "user", "content": "x" * 3000}], "stream": True}
    status, body = _post(raw_url, long)
    assert status == 400 and "reads at most 2048" in body["error"]["message"]


def test_a_remote_400_raises_with_the_status_and_the_servers_message(raw_url):
    with pytest.raises(RemoteGenerationError, match="HTTP 400: n must be between") as raised:
        _remote(raw_url).generate(MESSAGES, k=MAX_SAMPLES + 1, sampling=_greedy(4))
    assert raised.value.status == 400 and not raised.value.transient


def test_a_wrong_model_name_is_a_404(raw_url):
    remote = RemoteAssistant(RemoteConfig(raw_url, "gpt-17"))
    with pytest.raises(RemoteGenerationError, match="HTTP 404: the model 'gpt-17' does not exist"):
        remote.generate(MESSAGES, k=1, sampling=_greedy(4))


def test_a_closed_port_raises_a_transient_error_naming_the_server():
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with pytest.raises(RemoteGenerationError, match="cannot reach the generation server") as raised:
        _remote(url).generate(MESSAGES, k=1, sampling=_greedy(4))
    assert raised.value.status is None and raised.value.transient


def test_the_api_key_travels_as_a_bearer_token(keyed_url):
    with pytest.raises(RemoteGenerationError, match="HTTP 401") as raised:
        _remote(keyed_url, api_key="wrong").generate(MESSAGES, k=1, sampling=_greedy(4))
    assert raised.value.status == 401
    assert (
        len(_remote(keyed_url, api_key=API_KEY).generate(MESSAGES, k=1, sampling=_greedy(4))) == 1
    )


def test_a_non_streamed_reply_has_openais_shape(raw_url):
    payload = {
        "model": "tiny-chaotic",
        "messages": [{"role": "user", "content": "Hello there"}],
        "n": 2,
        "max_tokens": 5,
        "temperature": 0,
        "stop": [],
    }
    status, body = _post(raw_url, payload)
    assert status == 200
    assert body["object"] == "chat.completion" and body["model"] == "tiny-chaotic"
    assert [c["index"] for c in body["choices"]] == [0, 1]
    for choice in body["choices"]:
        assert choice["message"]["role"] == "assistant"
        assert isinstance(choice["message"]["content"], str)
        assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and 2 <= usage["completion_tokens"] <= 10
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_the_server_lists_its_model(raw_url):
    connection = HTTPConnection(raw_url.removeprefix("http://").removesuffix("/v1"), timeout=10)
    connection.request("GET", "/v1/models")
    body = json.loads(connection.getresponse().read())
    connection.close()
    assert [m["id"] for m in body["data"]] == ["tiny-chaotic"]


def test_an_exception_from_on_progress_cancels_and_the_server_serves_the_next_request(raw_url):
    class Cancelled(Exception):
        pass

    def cancel(texts):
        raise Cancelled

    with pytest.raises(Cancelled):
        _remote(raw_url).generate(MESSAGES, k=1, sampling=_greedy(200), on_progress=cancel)
    assert len(_remote(raw_url).generate(MESSAGES, k=1, sampling=_greedy(4))) == 1


@pytest.fixture
def canned_url():
    """A server that answers every POST with ``canned["body"]`` as an event stream."""
    canned = {"body": b""}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(canned["body"])

        def log_message(self, fmt, *args):
            pass

    for url in _serve(ThreadingHTTPServer(("127.0.0.1", 0), Handler)):
        yield url, canned


def _event(choices: list[dict]) -> bytes:
    return f"data: {json.dumps({'choices': choices})}\n\n".encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"data: {not json\n\n", "not JSON"),
        (_event([{"index": 3, "delta": {"content": "x"}}]), "bad index"),
        (_event([{"index": 0, "delta": {"content": "x"}}]) + b"data: [DONE]\n\n", "finish_reason"),
        (_event([{"index": 0, "delta": {}, "finish_reason": "abort"}]), "finished with 'abort'"),
        (_event([{"index": 0, "delta": {"content": "x"}}]), r"ended before 'data: \[DONE\]'"),
        (b'data: {"error": {"message": "out of memory"}}\n\n', "mid-stream: out of memory"),
    ],
)
def test_a_broken_stream_raises_a_remote_generation_error(canned_url, body, message):
    url, canned = canned_url
    canned["body"] = body
    with pytest.raises(RemoteGenerationError, match=message):
        _remote(url).generate(MESSAGES, k=1, sampling=_greedy(4))


def test_eos_and_stop_strings_are_told_apart_by_vllms_stop_reason(canned_url):
    url, canned = canned_url
    canned["body"] = (
        _event([{"index": 0, "delta": {"content": " Hi"}, "finish_reason": None}])
        + _event([{"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": None}])
        + _event([{"index": 1, "delta": {}, "finish_reason": "stop", "stop_reason": "Human:"}])
        + _event([{"index": 2, "delta": {}, "finish_reason": "length"}])
        + b": a comment\n\ndata: [DONE]\n\n"
    )
    candidates = _remote(url).generate(MESSAGES, k=3, sampling=_greedy(4))
    assert [c.finish_reason for c in candidates] == ["eos", "stop", "length"]
    assert [c.text for c in candidates] == ["Hi", "", ""]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base_url", "ftp://host/v1"),
        ("base_url", "localhost:8000"),
        ("model", ""),
        ("connect_timeout_s", 0),
        ("read_timeout_s", float("inf")),
        ("api_key", "two\nlines"),
    ],
)
def test_a_bad_remote_config_is_refused(field, value):
    fields = {"base_url": "http://127.0.0.1:8001/v1", "model": "m", field: value}
    with pytest.raises(ValueError, match=field):
        RemoteConfig(**fields)
