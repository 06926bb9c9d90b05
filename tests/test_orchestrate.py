"""The Django-free orchestration of generation (models_backend.orchestrate), with a fake
assistant and a recording sink."""

from __future__ import annotations

import pytest

from models_backend import orchestrate
from models_backend.dialogue import HUMAN, Message
from models_backend.generation import Candidate
from models_backend.orchestrate import Row, Throttle


class FakeAssistant:
    """Replies "<name> <i>" after streaming it in two steps; records every call."""

    def __init__(self, name: str):
        self.name = name
        self.calls: list[tuple[str, list[int]]] = []

    def generate(self, messages, *, k, sampling, on_progress=None):
        self.calls.append(("generate", [k]))
        texts = [f"{self.name} {i}" for i in range(k)]
        if on_progress is not None:
            on_progress([self.name] * k)
            on_progress([self.name] * k)  # unchanged: the sink hears nothing new
            on_progress(texts)
        return [Candidate(t, 2, "eos", 0.1, sampling.seed) for t in texts]

    def generate_many(self, dialogues, *, ks, sampling, on_progress=None):
        self.calls.append(("generate_many", ks))
        return [
            [Candidate(f"{self.name} {d}.{i}", 2, "eos", 0.1, sampling.seed) for i in range(k)]
            for d, k in enumerate(ks)
        ]


class RecordingSink:
    def __init__(self):
        self.progress_calls: list[tuple[int, str]] = []
        self.completed: dict[int, tuple[Candidate, object]] = {}

    def progress(self, candidate_id, text):
        self.progress_calls.append((candidate_id, text))

    def complete(self, candidate_id, result, chosen):
        self.completed[candidate_id] = (result, chosen)


def row(candidate_id, turn_id, slot, spec="a", prompt=""):
    sampling = {"max_new_tokens": 4, "temperature": 0.5, "top_p": 1.0, "ignored": True}
    return Row(candidate_id, turn_id, slot, spec, prompt, sampling, (Message(HUMAN, "hi"),))


def run(rows, **kwargs):
    assistants: dict[tuple[str, str], FakeAssistant] = {}

    def assistant_for(spec, prompt):
        return assistants.setdefault((spec, prompt), FakeAssistant(f"{spec}{prompt}"))

    sink = RecordingSink()
    orchestrate.generate(rows, assistant_for=assistant_for, sink=sink, **kwargs)
    return assistants, sink


def test_one_turns_slots_of_one_assistant_share_one_call_and_report_changes_only():
    assistants, sink = run([row(11, 1, 1), row(10, 1, 0)])
    assert assistants[("a", "")].calls == [("generate", [2])]
    assert sink.progress_calls == [(10, "a"), (11, "a"), (10, "a 0"), (11, "a 1")]
    assert {cid: result.text for cid, (result, _) in sink.completed.items()} == {
        10: "a 0",
        11: "a 1",
    }


def test_two_assistants_are_asked_separately():
    assistants, sink = run([row(10, 1, 0, spec="a"), row(11, 1, 1, spec="b", prompt="hhh")])
    assert set(assistants) == {("a", ""), ("b", "hhh")}
    assert sink.completed[10][0].text == "a 0" and sink.completed[11][0].text == "bhhh 0"


def test_concurrent_turns_of_one_assistant_run_in_one_batch():
    assistants, sink = run([row(20, 2, 0), row(10, 1, 0), row(11, 1, 1)])
    assert assistants[("a", "")].calls == [("generate_many", [2, 1])]
    assert sink.completed[20][0].text == "a 1.0"  # turns in id order: turn 2 comes second


def test_every_call_draws_its_own_seed_from_the_stored_sampling():
    _, sink = run([row(10, 1, 0, spec="a"), row(11, 1, 1, spec="b")])
    seeds = {result.seed for result, _ in sink.completed.values()}
    assert len(seeds) == 2 and None not in seeds


def test_best_of_n_is_one_turn_at_a_time():
    plan = orchestrate.BestOf(2, "best_each", "unused", {})
    with pytest.raises(ValueError, match="one turn at a time"):
        run([row(10, 1, 0), row(20, 2, 0)], best_of=plan)


def test_a_throttle_lets_the_first_and_final_writes_through(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(orchestrate.time, "monotonic", lambda: now[0])
    throttle = Throttle(0.5)
    assert throttle.due()
    now[0] += 0.25
    assert not throttle.due()
    assert throttle.due(final=True)  # and the clock restarts from it
    now[0] += 0.25
    assert not throttle.due()
    now[0] += 0.25
    assert throttle.due()
