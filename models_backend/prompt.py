"""The project's HHH prompt: a preamble and example dialogues, loaded from a data file.

The packaged prompt is ``models_backend/prompts/hhh.txt``, plain text a researcher can
edit: a preamble, then dialogues separated by lines holding exactly ``-----``. Each
dialogue is ``Human: …`` / ``Assistant: …`` turns separated by blank lines (the
``parse_transcript`` conventions), starts with Human and ends with Assistant. Lines
starting with ``#`` at the top of a block are comments; ``# topic: code`` labels a dialogue.

Two renderings, one per kind of model:

- ``HHHPrompt.transcript()``: the paper-style plain-text prefix for models without a chat
  template (base, tiny, context-distilled). Every example dialogue is closed by a
  ``-----`` line, so ``transcript() + prompt_transcript(conversation)`` reads as one more
  dialogue in the series, not as a continuation of the last example.
- ``HHHPrompt.chat_system_text()``: the system message for chat-template models. It
  replaces the template's default system message entirely (SmolLM2's "named SmolLM").
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from models_backend.dialogue import ASSISTANT, HUMAN, Message, parse_transcript, to_transcript
from models_backend.generation import build_prompt_ids

DEFAULT_PATH = Path(__file__).parent / "prompts" / "hhh.txt"
SEPARATOR = "-----"
_SEPARATOR_LINE = re.compile(r"^-----[ \t]*$", re.MULTILINE)
_GLUED_LABEL = re.compile(r"(?<!\n)\n(Human|Assistant):")  # a turn label without a blank line
_TOPIC = re.compile(r"#\s*topic:\s*(.*)")

# First human messages that begin in different ways (letter, digit, space, newline,
# punctuation, non-ASCII, nothing) plus a multi-turn conversation: the ids all of them
# share are the conversation-independent prefix (see prompt_prefix_ids).
_PROBES = (
    *([Message(HUMAN, text)] for text in ("a", "7", " x", "\n\ny", "?", "é", "")),
    [Message(HUMAN, "b"), Message(ASSISTANT, "c"), Message(HUMAN, "d")],
)


@dataclass(frozen=True)
class HHHPrompt:
    preamble: str
    dialogues: tuple[tuple[Message, ...], ...]
    topics: tuple[str, ...]  # one per dialogue, "" where the file gives none

    def transcript(self) -> str:
        """The preamble, then each dialogue as a transcript closed by a ``-----`` line.

        ``transcript() + prompt_transcript(messages)`` is the prompted context of a
        conversation for a model without a chat template.
        """
        closed = (f"{to_transcript(list(d))}\n\n{SEPARATOR}" for d in self.dialogues)
        return self.preamble + "".join(closed)

    def chat_system_text(self) -> str:
        """The system message for a chat-template model: the same text as ``transcript()``.

        The conversation itself then follows as the template's user/assistant turns.
        """
        return self.transcript()

    def word_count(self) -> int:
        """Words in the preamble and in every turn (labels and separators not counted)."""
        texts = [self.preamble, *(m.text for d in self.dialogues for m in d)]
        return sum(len(text.split()) for text in texts)


def load_hhh_prompt(path: str | Path | None = None) -> HHHPrompt:
    """The prompt in ``path`` (default: the packaged ``prompts/hhh.txt``).

    Cached per path; an edited file (new modification time) is read again.
    Raises ValueError naming the file and the dialogue number if it is malformed.
    """
    resolved = Path(path if path is not None else DEFAULT_PATH).resolve()
    return _load(resolved, resolved.stat().st_mtime_ns)


def prompted_ids(tokenizer, prompt: HHHPrompt, messages: list[Message]) -> list[int]:
    """The ids an assistant reply to ``messages`` is generated after, with the HHH prompt.

    Chat-template tokenizers: the template with ``chat_system_text()`` as its system
    message. Others: the tokens of ``transcript() + prompt_transcript(messages)`` (with a
    BOS first where the tokenizer adds one). Both via ``build_prompt_ids``.
    """
    if getattr(tokenizer, "chat_template", None):
        return build_prompt_ids(tokenizer, messages, system=prompt.chat_system_text())
    return build_prompt_ids(tokenizer, messages, system=prompt.transcript())


def prompt_prefix_ids(tokenizer, prompt: HHHPrompt) -> list[int]:
    """The leading ids of ``prompted_ids`` that are the same for every conversation.

    A worker can run them through the model once and reuse their KV cache. Where the
    prompt ends and the conversation starts, a tokenizer may merge text across the
    boundary, and a chat template puts its own tokens there, so the boundary is not
    computed from the text: it is the longest common prefix of the ids of several probe
    conversations whose first message starts differently. It is exact for every
    conversation where special tokens cut the text at the boundary (SmolLM2's template:
    the prefix ends with ``<|im_start|>user``) or no merges cross it (the byte-level tiny
    tokenizer: it ends after ``Human: ``). For other tokenizers a caller reusing a cache
    should check ``ids[:len(prefix)] == prefix`` and fall back to a full prefill.
    """
    runs = [prompted_ids(tokenizer, prompt, messages) for messages in _PROBES]
    length = 0
    for column in zip(*runs, strict=False):  # stops at the shortest run
        if any(token != column[0] for token in column):
            break
        length += 1
    return runs[0][:length]


@functools.lru_cache(maxsize=8)
def _load(path: Path, mtime_ns: int) -> HHHPrompt:
    del mtime_ns  # part of the cache key only
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    blocks = _SEPARATOR_LINE.split(text)
    _, preamble = _strip_comments(blocks[0])
    if not preamble:
        raise ValueError(f"{path}: the preamble (before the first {SEPARATOR} line) is empty")
    dialogues, topics = [], []
    for number, block in enumerate(blocks[1:], start=1):
        topic, body = _strip_comments(block)
        try:
            dialogues.append(_parse_dialogue(body))
        except ValueError as exc:
            raise ValueError(f"{path}: dialogue {number}: {exc}") from None
        topics.append(topic)
    if not dialogues:
        raise ValueError(f"{path}: no dialogues (separate them with {SEPARATOR} lines)")
    return HHHPrompt(preamble, tuple(dialogues), tuple(topics))


def _strip_comments(block: str) -> tuple[str, str]:
    """(topic, body) of a block: its leading ``#`` lines removed, the body stripped."""
    lines = block.strip().split("\n")
    topic = ""
    while lines and lines[0].startswith("#"):
        match = _TOPIC.fullmatch(lines.pop(0).strip())
        if match:
            topic = match.group(1).strip()
    return topic, "\n".join(lines).strip()


def _parse_dialogue(body: str) -> tuple[Message, ...]:
    if not body:
        raise ValueError("it is empty")
    if not body.startswith("Human:"):
        raise ValueError('it must start with "Human:"')
    glued = _GLUED_LABEL.search(body)
    if glued:
        raise ValueError(f'"{glued.group(1)}:" must come after a blank line')
    messages = [Message(m.role, m.text.strip()) for m in parse_transcript("\n\n" + body)]
    for turn, message in enumerate(messages, start=1):
        expected = HUMAN if turn % 2 else ASSISTANT
        if message.role != expected:
            raise ValueError(f"turn {turn} is a {message.role} turn; turns must alternate")
        if not message.text:
            raise ValueError(f"turn {turn} is empty")
    if messages[-1].role != ASSISTANT:
        raise ValueError("it must end with an Assistant turn")
    return tuple(messages)
