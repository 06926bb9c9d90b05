"""Comparison data: every format to rankings, pair weights, PMP binarization, bad lines named."""

import json
import re

import pytest
from django.core.management import call_command

from labeling.services import conversations as svc
from models_backend.dialogue import ASSISTANT, HUMAN, Message
from tests.factories import finish_candidates
from training.comparisons import BAD, GOOD, Ranking, WeightedPair, binarize, weighted_pairs
from training.data import DataError
from training.loaders import load_rankings

HI = (Message(HUMAN, "hi"),)


def write_lines(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_a_ranking_of_k_gives_all_pairs_weighted_one_over_k_choose_2():
    pairs = weighted_pairs([Ranking(HI, ("a", "b", "c")), Ranking(HI, ("x", "y"))])
    assert [(p.better, p.worse, round(p.weight, 4)) for p in pairs] == [
        ("a", "b", 0.3333),
        ("a", "c", 0.3333),
        ("b", "c", 0.3333),
        ("x", "y", 1.0),
    ]


def test_binary_discrimination_sees_the_best_against_each_other_response():
    pairs = weighted_pairs([Ranking(HI, ("a", "b", "c"))], binary=True)
    assert [(p.better, p.worse, p.weight) for p in pairs] == [("a", "b", 0.5), ("a", "c", 0.5)]


def test_tied_wrong_answers_are_never_compared_with_each_other():
    pairs = weighted_pairs([Ranking(HI, ("right", "w1", "w2"), scores=(1, 0, 0))])
    assert [(p.better, p.worse, p.weight) for p in pairs] == [
        ("right", "w1", 0.5),
        ("right", "w2", 0.5),
    ]


def test_binarization_makes_two_independent_good_bad_pairs():
    assert binarize(WeightedPair(HI, "A", "B", 0.5)) == [
        WeightedPair(HI, f"{GOOD} A", f"{BAD} A", 0.5),
        WeightedPair(HI, f"{BAD} B", f"{GOOD} B", 0.5),
    ]


def test_preference_rows_take_strings_messages_and_implicit_prompts(tmp_path):
    path = write_lines(
        tmp_path / "p.jsonl",
        [
            {"prompt": "hi", "chosen": "hello", "rejected": "go away"},
            {
                "prompt": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "help?"},
                ],
                "chosen": [{"role": "assistant", "content": "sure"}],
                "rejected": "no",
            },
            {
                "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                "rejected": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "b"},
                ],
            },
        ],
    )
    first, second, third = load_rankings(path, "preference")
    assert first.context == HI and first.responses == ("hello", "go away")
    assert [m.role for m in second.context] == [HUMAN, ASSISTANT, HUMAN]
    assert second.responses == ("sure", "no")
    assert third.context == (Message(HUMAN, "q"),) and third.responses == ("a", "b")


def test_a_context_keeps_runs_of_same_role_messages_but_starts_and_ends_with_the_user(tmp_path):
    def context(*roles):
        return [{"role": role, "content": f"m{i}"} for i, role in enumerate(roles)]

    runs = context("user", "user", "assistant", "assistant", "user")
    path = write_lines(tmp_path / "r.jsonl", [{"context": runs, "responses": ["a", "b"]}])
    [ranking] = load_rankings(path, "rankings")
    assert [m.role for m in ranking.context] == [HUMAN, HUMAN, ASSISTANT, ASSISTANT, HUMAN]
    assert [m.text for m in ranking.context] == ["m0", "m1", "m2", "m3", "m4"]
    for roles, reason in ((("assistant", "user"), "user first"), (("user", "assistant"), "end")):
        bad = write_lines(
            tmp_path / "bad.jsonl", [{"context": context(*roles), "responses": ["a", "b"]}]
        )
        with pytest.raises(DataError, match=rf"bad.jsonl:1: the context must .*{reason}"):
            load_rankings(bad, "rankings")


@pytest.mark.parametrize(
    ("fmt", "good", "bad", "message"),
    [
        (
            "hh-rlhf",
            {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"},
            {"chosen": "x"},
            "missing field 'rejected'",
        ),
        (
            "preference",
            {"prompt": "a", "chosen": "b", "rejected": "c"},
            {"prompt": "a", "chosen": "", "rejected": "c"},
            "'chosen' must be a non-empty string",
        ),
        (
            "preference",
            {"prompt": "a", "chosen": "b", "rejected": "c"},
            {"prompt": [{"role": "system", "content": "s"}], "chosen": "b", "rejected": "c"},
            "prompt[0] must be",
        ),
        (
            "rankings",
            {"context": "a", "responses": ["b", "c"]},
            {"context": "a", "responses": ["b"]},
            "at least two responses",
        ),
        (
            "lab",
            {"context": [{"role": "user", "content": "a"}], "chosen": "b", "rejected": "c"},
            {"context": [{"role": "assistant", "content": "a"}], "chosen": "b", "rejected": "c"},
            "user first",
        ),
        (
            "lab",
            {"context": [{"role": "user", "content": "a"}], "chosen": "b", "rejected": "c"},
            "{not json",
            "bad JSON",
        ),
        (
            "lab",
            {"context": [{"role": "user", "content": "a"}], "chosen": "b", "rejected": "c"},
            {
                "context": [{"role": "user", "content": "a"}],
                "chosen": "b",
                "rejected": "c",
                "excluded": "gold",
            },
            "a gold row (exported with --include-checks) is not training data",
        ),
    ],
)
def test_each_loader_names_the_bad_line(tmp_path, fmt, good, bad, message):
    path = write_lines(tmp_path / "data.jsonl", [good, good, bad])
    with pytest.raises(DataError, match=rf"data.jsonl:3: .*{re.escape(message)}"):
        load_rankings(path, fmt)
    assert len(load_rankings(path, fmt, limit=2)) == 2  # the lines before it are fine


def test_bigbench_tasks_rank_the_correct_choice_above_each_wrong_one(tmp_path):
    task = tmp_path / "quiz" / "task.json"
    task.parent.mkdir()
    examples = [{"input": "2+2?", "target_scores": {"3": 0, "4": 1, "5": 0}}]
    task.write_text(json.dumps({"examples": examples}))
    [ranking] = load_rankings(task, "bigbench")
    assert ranking.responses == ("4", "3", "5") and ranking.scores == (1, 0, 0)
    task.write_text(json.dumps({"examples": [{"input": "x", "target_scores": {"a": 1, "b": 1}}]}))
    with pytest.raises(DataError, match=r"examples\[0\]: every choice has the top score"):
        load_rankings(task, "bigbench")


def test_graded_bigbench_scores_give_a_real_order_with_ties_left_uncompared(tmp_path):
    task = tmp_path / "graded" / "task.json"
    task.parent.mkdir()
    scores = {"h1": 0.0, "m1": 1.0, "m2": 0.5, "m3": 0.0}
    task.write_text(json.dumps({"examples": [{"input": "doc", "target_scores": scores}]}))
    [ranking] = load_rankings(task, "bigbench")
    assert ranking.responses == ("m1", "m2", "h1", "m3")
    ranked = [(p.better, p.worse) for p in weighted_pairs([ranking])]
    assert ranked == [("m1", "m2"), ("m1", "h1"), ("m1", "m3"), ("m2", "h1"), ("m2", "m3")]
    binary = [(p.better, p.worse) for p in weighted_pairs([ranking], binary=True)]
    assert binary == [("m1", "m2"), ("m1", "h1"), ("m1", "m3")]


def test_a_ranking_refuses_scores_that_rise_or_never_differ():
    with pytest.raises(ValueError, match="must not increase"):
        Ranking(HI, ("a", "b"), scores=(0, 1))
    with pytest.raises(ValueError, match="same score"):
        Ranking(HI, ("a", "b"), scores=(1, 1))


def test_the_hhh_evaluation_is_refused_as_training_data(tmp_path):
    folder = tmp_path / "hhh_alignment"
    folder.mkdir()
    with pytest.raises(DataError, match="evaluation data"):
        load_rankings(folder, "bigbench")


@pytest.mark.django_db
def test_the_labs_own_export_loads_back_as_rankings(campaign, owner, tmp_path):
    conversation = svc.conversation_start(campaign=campaign, worker=owner)
    turn = svc.turn_create(conversation=conversation, worker=owner, text="Hello there")
    finish_candidates(turn, texts=("a kind answer", "a rude answer"))
    svc.comparison_submit(turn=turn, worker=owner, choice="A3")
    out = tmp_path / "lab.jsonl"
    call_command("export_preferences", "--format", "lab", "-o", str(out))
    row = json.loads(out.read_text())
    assert row["strength"] == 3 and row["campaign"] == campaign.slug
    [ranking] = load_rankings(out, "lab")
    assert ranking.context == (Message(HUMAN, "Hello there"),)
    assert set(ranking.responses) == {"a kind answer", "a rude answer"}
    assert ranking.responses[0] == row["chosen"]
