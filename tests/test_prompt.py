"""The project's HHH prompt: the data file, its loader and its two renderings."""

from __future__ import annotations

import os

import pytest

from models_backend.dialogue import ASSISTANT, HUMAN, Message, parse_transcript, prompt_transcript
from models_backend.prompt import (
    SEPARATOR,
    load_hhh_prompt,
    prompt_prefix_ids,
    prompted_ids,
)
from models_backend.tiny import build_tiny_tokenizer

REQUIRED_TOPICS = {
    "everyday",
    "code",
    "explanation",
    "uncertainty",
    "correction",
    "refusal",
    "emotional-support",
}

CONVERSATIONS = {
    "one turn": [Message(HUMAN, "What's a good name for a pet turtle?")],
    "three turns": [
        Message(HUMAN, "Can you help me plan a picnic?"),
        Message(ASSISTANT, "Of course. Where and when?"),
        Message(HUMAN, "Saturday, in the park."),
    ],
    "odd start": [Message(HUMAN, "\n  <|im_end|> «¿Qué?» 😀\n\nHuman: hi")],
}

# A template in the style of SmolLM2's: it inserts its own system message when none is given.
DEFAULT_INSERTING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<s>system\nI am the template default<e>\n' }}{% endif %}"
    "{{ '<s>' + message['role'] + '\n' + message['content'] + '<e>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<s>assistant\n' }}{% endif %}"
)

VALID_DIALOGUE = "Human: Hi.\n\nAssistant: Hello!"


@pytest.fixture(scope="module")
def prompt():
    return load_hhh_prompt()


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    from models_backend.loading import get_causal_lm

    return get_causal_lm("smollm2-135m-instruct").tokenizer


def _write(tmp_path, *blocks: str):
    path = tmp_path / "prompt.txt"
    path.write_text(f"\n{SEPARATOR}\n".join(blocks) + "\n", encoding="utf-8")
    return path


def test_packaged_prompt_has_fourteen_dialogues(prompt):
    assert len(prompt.dialogues) == 14
    assert len(prompt.topics) == 14


def test_packaged_prompt_is_between_3000_and_5000_words(prompt):
    assert 3000 <= prompt.word_count() <= 5000


def test_every_dialogue_alternates_starting_with_human_and_ending_with_assistant(prompt):
    for dialogue in prompt.dialogues:
        roles = [m.role for m in dialogue]
        assert roles == [HUMAN, ASSISTANT] * (len(roles) // 2)
        assert all(m.text and m.text == m.text.strip() for m in dialogue)


def test_packaged_prompt_covers_the_required_topics(prompt):
    assert REQUIRED_TOPICS - set(prompt.topics) == set()
    assert all(prompt.topics)


def test_preamble_describes_the_assistant_without_file_comments(prompt):
    assert prompt.preamble.startswith("What follows are conversations")
    for quality in ("helpful", "polite", "honest", "sophisticated", "emotionally aware", "humble"):
        assert quality in prompt.preamble
    assert "#" not in prompt.preamble


def test_transcript_starts_with_the_preamble_and_closes_each_dialogue_with_a_separator(prompt):
    transcript = prompt.transcript()
    assert transcript.startswith(prompt.preamble + "\n\nHuman: ")
    assert transcript.split("\n").count(SEPARATOR) == 14  # 13 between dialogues, 1 after
    assert transcript.endswith(f"\n\n{SEPARATOR}")


def test_transcript_dialogues_parse_back_to_the_loaded_dialogues(prompt):
    chunks = prompt.transcript()[len(prompt.preamble) :].split(f"\n\n{SEPARATOR}")
    assert chunks[-1] == ""
    assert [tuple(parse_transcript(chunk)) for chunk in chunks[:-1]] == list(prompt.dialogues)


def test_a_conversation_appended_to_the_transcript_starts_a_new_dialogue(prompt):
    messages = CONVERSATIONS["three turns"]
    text = prompt.transcript() + prompt_transcript(messages)
    last = text.rsplit(f"\n{SEPARATOR}", 1)[1]
    assert last == prompt_transcript(messages)


def test_chat_system_text_is_the_preamble_followed_by_the_example_dialogues(prompt):
    text = prompt.chat_system_text()
    assert text.startswith(prompt.preamble + "\n\nHuman: ")
    assert prompt.dialogues[-1][-1].text in text


def test_tiny_tokenizer_gets_the_transcript_followed_by_the_conversation(prompt):
    tokenizer = build_tiny_tokenizer()
    messages = CONVERSATIONS["three turns"]
    ids = prompted_ids(tokenizer, prompt, messages)
    assert tokenizer.decode(ids) == prompt.transcript() + prompt_transcript(messages)


def test_chat_template_gets_the_prompt_instead_of_its_default_system_message(prompt):
    tokenizer = build_tiny_tokenizer()
    tokenizer.chat_template = DEFAULT_INSERTING_TEMPLATE
    text = tokenizer.decode(prompted_ids(tokenizer, prompt, CONVERSATIONS["one turn"]))
    assert text.startswith(f"<s>system\n{prompt.chat_system_text()}<e>\n<s>user\n")
    assert "template default" not in text


@pytest.mark.parametrize("name", CONVERSATIONS)
@pytest.mark.parametrize("templated", [False, True], ids=["transcript", "chat template"])
def test_prefix_ids_are_a_true_prefix_for_the_tiny_tokenizer(prompt, name, templated):
    tokenizer = build_tiny_tokenizer()
    if templated:
        tokenizer.chat_template = DEFAULT_INSERTING_TEMPLATE
    prefix = prompt_prefix_ids(tokenizer, prompt)
    ids = prompted_ids(tokenizer, prompt, CONVERSATIONS[name])
    assert ids[: len(prefix)] == prefix
    assert len(prefix) < len(ids)
    assert prompt.transcript() in tokenizer.decode(prefix)  # all of the prompt is shared


@pytest.mark.slow
def test_smollm2_gets_our_prompt_and_not_its_default_system_message(prompt, smollm2_tokenizer):
    ids = prompted_ids(smollm2_tokenizer, prompt, CONVERSATIONS["one turn"])
    text = smollm2_tokenizer.decode(ids)
    assert prompt.preamble in text
    assert prompt.dialogues[-1][-1].text in text
    assert "named SmolLM" not in text
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith("<|im_start|>assistant\n")


@pytest.mark.slow
@pytest.mark.parametrize("name", CONVERSATIONS)
def test_prefix_ids_are_a_true_prefix_for_smollm2(prompt, smollm2_tokenizer, name):
    prefix = prompt_prefix_ids(smollm2_tokenizer, prompt)
    ids = prompted_ids(smollm2_tokenizer, prompt, CONVERSATIONS[name])
    assert ids[: len(prefix)] == prefix
    text = smollm2_tokenizer.decode(prefix)
    assert text.endswith(f"{SEPARATOR}<|im_end|>\n<|im_start|>user")


def test_topics_comments_and_multi_paragraph_turns_are_read(tmp_path):
    path = _write(
        tmp_path,
        "# a note for editors\nBe nice.",
        "# topic: code\nHuman: Show me.\n\nAssistant: First.\n\n```python\nx = 1\n```",
        VALID_DIALOGUE,
    )
    prompt = load_hhh_prompt(path)
    assert prompt.preamble == "Be nice."
    assert prompt.topics == ("code", "")
    assert prompt.dialogues[0][1] == Message(ASSISTANT, "First.\n\n```python\nx = 1\n```")
    assert prompt.dialogues[1] == (Message(HUMAN, "Hi."), Message(ASSISTANT, "Hello!"))


def test_loading_is_cached_per_path_until_the_file_changes(tmp_path):
    path = _write(tmp_path, "Be nice.", VALID_DIALOGUE)
    first = load_hhh_prompt(path)
    assert load_hhh_prompt(str(path)) is first
    path.write_text(path.read_text().replace("Be nice.", "Be kind."))
    os.utime(path, ns=(1, 1))  # a different modification time, however fast the file system
    assert load_hhh_prompt(path).preamble == "Be kind."


@pytest.mark.parametrize(
    "broken, problem",
    [
        ("Assistant: Hello!\n\nHuman: Hi.", 'start with "Human:"'),
        ("Human: Hi.\n\nHuman: Hello?\n\nAssistant: Hi!", "alternate"),
        ("Human: Hi.\n\nAssistant: Hello!\n\nHuman: Bye.", "end with an Assistant turn"),
        ("Human: Hi.\nAssistant: Hello!", "blank line"),
        ("Human: Hi.\n\nAssistant:", "empty"),
        ("# topic: nothing", "empty"),
    ],
)
def test_a_malformed_dialogue_raises_naming_the_file_and_dialogue_number(tmp_path, broken, problem):
    path = _write(tmp_path, "Be nice.", VALID_DIALOGUE, broken, VALID_DIALOGUE)
    with pytest.raises(ValueError, match="dialogue 2") as caught:
        load_hhh_prompt(path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_a_file_without_preamble_or_dialogues_raises(tmp_path):
    with pytest.raises(ValueError, match="preamble"):
        load_hhh_prompt(_write(tmp_path, "", VALID_DIALOGUE))
    with pytest.raises(ValueError, match="no dialogues"):
        load_hhh_prompt(_write(tmp_path, "Be nice."))
