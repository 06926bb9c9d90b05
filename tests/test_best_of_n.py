"""Best-of-n: n samples per slot scored by the active preference model, a pair by policy."""

import threading

import pytest
from django.core.exceptions import ValidationError

from labeling import tasks
from labeling.models import Campaign, CandidateResponse, ModelVersion
from labeling.services import conversations as svc
from models_backend.assistants import Assistant
from models_backend.best_of_n import P_A_OVER_B, POLICIES, Scored, choose, preference_probability
from models_backend.dialogue import HUMAN, Message
from models_backend.generation import Candidate
from models_backend.loading import load_causal_lm
from models_backend.remote import RemoteAssistant
from models_backend.reward import (
    load_preference_model,
    preference_model_from_spec,
    save_preference_model,
    score_responses,
)
from models_backend.serve import make_server
from models_backend.specs import MAX_SAMPLES


def scored(slot, reward):
    return Scored(Candidate(f"s{slot} r{reward}", 1, "eos", 0.1, 0), slot, reward)


def test_best_each_shows_the_best_sample_of_each_slot():
    samples = {0: [scored(0, 1.0), scored(0, 3.0)], 1: [scored(1, 2.0), scored(1, -1.0)]}
    shown = choose("best_each", samples)
    assert (shown[0].reward, shown[1].reward) == (3.0, 2.0)


def test_top_two_shows_the_two_best_of_all_samples_whoever_wrote_them():
    samples = {0: [scored(0, 5.0), scored(0, 4.0)], 1: [scored(1, 2.0), scored(1, 1.0)]}
    shown = choose("top_two", samples)
    assert [(s.source, s.reward) for s in shown.values()] == [(0, 5.0), (0, 4.0)]


def test_uncertain_shows_the_pair_whose_predicted_preference_is_nearest_even():
    samples = {
        0: [scored(0, 3.0), scored(0, 0.0), scored(0, -2.0)],
        1: [scored(1, 1.0), scored(1, 5.0), scored(1, -1.5)],
    }
    shown = choose("uncertain", samples)
    # |r_A - r_B| per pair: 3-1=2, 3-5=2, 0-1=1, 0+1.5=1.5, -2+1.5=0.5 (the nearest to even)
    assert (shown[0].reward, shown[1].reward) == (-2.0, -1.5)
    assert preference_probability(-2.0, -1.5) == pytest.approx(0.3775, abs=1e-4)


def test_uncertain_breaks_a_tie_by_the_higher_rewards_then_by_sample_order():
    samples = {0: [scored(0, 0.0), scored(0, 4.0)], 1: [scored(1, 1.0), scored(1, 3.0)]}
    shown = choose("uncertain", samples)
    # (0, 1) and (4, 3) tie at a difference of 1: the higher sum (4 + 3) wins
    assert (shown[0].reward, shown[1].reward) == (4.0, 3.0)
    twins = {0: [scored(0, 2.0), scored(0, 2.0)], 1: [scored(1, 2.0), scored(1, 2.0)]}
    shown = choose("uncertain", twins)
    assert shown[0] is twins[0][0] and shown[1] is twins[1][0]  # the earliest samples


def test_uncertain_compares_exactly_two_slots():
    with pytest.raises(ValueError, match="exactly two slots"):
        choose("uncertain", {0: [scored(0, 1.0)], 1: [scored(1, 1.0)], 2: [scored(2, 1.0)]})


def test_the_predicted_preference_never_overflows():
    assert preference_probability(1000.0, 0.0) == 1.0
    assert preference_probability(0.0, 1000.0) == 0.0
    assert preference_probability(0.5, 0.5) == 0.5


def test_an_unknown_policy_or_an_empty_slot_is_refused():
    with pytest.raises(ValueError, match="unknown pair policy"):
        choose("random", {0: [scored(0, 1.0)]})
    with pytest.raises(ValueError, match="at least one sample"):
        choose("best_each", {0: [scored(0, 1.0)], 1: []})


@pytest.mark.django_db
def test_the_campaign_offers_the_registered_pair_policies_and_at_most_max_samples():
    assert [name for name, _ in Campaign._meta.get_field("pair_policy").choices] == list(POLICIES)
    campaign = Campaign(name="x", slug="x", instructions="x", best_of=MAX_SAMPLES + 1)
    with pytest.raises(ValidationError) as raised:
        campaign.full_clean()
    assert "best_of" in raised.value.error_dict


@pytest.fixture
def active_pm(db, tmp_path):
    pm, tokenizer = preference_model_from_spec("tiny-random", device="cpu")
    save_preference_model(pm, tokenizer, tmp_path / "pm", config={})
    return ModelVersion.objects.create(
        name="pm-1", kind=ModelVersion.Kind.PREFERENCE, spec=str(tmp_path / "pm"), is_active=True
    )


def start_turn(campaign, owner, *, best_of, policy="best_each"):
    campaign.best_of, campaign.pair_policy = best_of, policy
    campaign.save()
    conversation = svc.conversation_start(campaign=campaign, worker=owner)
    return svc.turn_create(conversation=conversation, worker=owner, text="Hi there")


@pytest.mark.django_db
def test_each_slot_shows_the_highest_reward_of_its_samples(campaign, owner, active_pm, monkeypatch):
    calls = []
    real = Assistant.generate

    def counting(self, messages, **kwargs):
        calls.append(kwargs["k"])
        return real(self, messages, **kwargs)

    monkeypatch.setattr(Assistant, "generate", counting)
    turn = start_turn(campaign, owner, best_of=3)
    tasks.generate_candidates(turn.pk)
    assert calls == [6]  # both slots' samples from one call: one shared prefill
    pm, tokenizer = load_preference_model(active_pm.spec)
    for candidate in turn.candidates.all():
        assert candidate.status == CandidateResponse.Status.DONE
        assert len(candidate.alternatives) == 2
        assert candidate.reward >= max(a["reward"] for a in candidate.alternatives)
        [rescored] = score_responses(pm, tokenizer, [Message(HUMAN, "Hi there")], [candidate.text])
        assert rescored == pytest.approx(candidate.reward, abs=1e-5)


@pytest.mark.django_db
def test_top_two_shows_the_two_highest_rewards_of_all_samples(campaign, owner, active_pm):
    turn = start_turn(campaign, owner, best_of=2, policy="top_two")
    tasks.generate_candidates(turn.pk)
    candidates = list(turn.candidates.all())
    shown = sorted(c.reward for c in candidates)
    hidden = [a["reward"] for c in candidates for a in c.alternatives]
    assert len(shown) + len(hidden) == 4
    assert min(shown) >= max(hidden)


@pytest.mark.django_db
def test_without_an_active_preference_model_best_of_n_falls_back_to_plain_sampling(campaign, owner):
    turn = start_turn(campaign, owner, best_of=4)
    tasks.generate_candidates(turn.pk)
    for candidate in turn.candidates.all():
        assert candidate.status == CandidateResponse.Status.DONE
        assert candidate.reward is None and candidate.alternatives == []


@pytest.mark.django_db
def test_a_judgment_records_which_preference_model_and_policy_chose_its_pair(
    campaign, owner, active_pm
):
    turn = start_turn(campaign, owner, best_of=2, policy="top_two")
    tasks.generate_candidates(turn.pk)
    judgment = svc.comparison_submit(turn=turn, worker=owner, choice="B2")
    selections = [c["selection"] for c in judgment.provenance["candidates"]]
    expected = {"policy": "top_two", "preference_model": "pm-1", "n": 2}
    assert all({k: s[k] for k in expected} == expected for s in selections)
    assert all(c["reward"] is not None for c in judgment.provenance["candidates"])


@pytest.mark.django_db
def test_the_uncertain_pair_records_its_policy_preference_model_and_predicted_preference(
    campaign, owner, active_pm
):
    turn = start_turn(campaign, owner, best_of=3, policy="uncertain")
    tasks.generate_candidates(turn.pk)
    judgment = svc.comparison_submit(turn=turn, worker=owner, choice="A1")
    provenance = sorted(judgment.provenance["candidates"], key=lambda c: c["slot"])
    a, b = (c["reward"] for c in provenance)
    for candidate in provenance:
        selection = candidate["selection"]
        assert selection["policy"] == "uncertain"
        assert selection["preference_model"] == "pm-1"
        assert selection["preference_model_id"] == active_pm.pk
        assert selection[P_A_OVER_B] == pytest.approx(preference_probability(a, b))
    slot_a, slot_b = turn.candidates.order_by("slot")
    rewards_a = [a] + [alt["reward"] for alt in slot_a.alternatives]
    rewards_b = [b] + [alt["reward"] for alt in slot_b.alternatives]
    assert len(rewards_a) == len(rewards_b) == 3
    assert abs(a - b) == min(abs(x - y) for x in rewards_a for y in rewards_b)


@pytest.fixture
def generation_server(settings):
    server = make_server(load_causal_lm("tiny-random", device="cpu"), "", "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    host, port = server.server_address[:2]
    settings.LAB_GENERATION_URL = f"http://{host}:{port}/v1"
    yield
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("n", "requests"),
    [(5, [10]), (MAX_SAMPLES, [MAX_SAMPLES, MAX_SAMPLES])],  # n x 2 slots of one model
)
@pytest.mark.django_db
def test_remote_best_of_n_asks_the_server_for_at_most_max_samples_at_once(
    campaign, owner, active_pm, generation_server, monkeypatch, n, requests
):
    asked = []
    real = RemoteAssistant.generate

    def counting(self, messages, **kwargs):
        asked.append(kwargs["k"])
        return real(self, messages, **kwargs)

    monkeypatch.setattr(RemoteAssistant, "generate", counting)
    turn = start_turn(campaign, owner, best_of=n)
    tasks.generate_candidates(turn.pk)
    assert asked == requests
    for candidate in turn.candidates.all():
        assert candidate.status == CandidateResponse.Status.DONE, candidate.error
        assert len(candidate.alternatives) == n - 1
        assert candidate.selection["n"] == n
