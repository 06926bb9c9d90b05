"""A worker's judgment is sacred: stored as asked, never edited or deleted, corrected only by
a superseding row that names who and why; red-team answers mapped through their question."""

import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db.models import ProtectedError
from django.urls import reverse

from labeling import selectors
from labeling.models import CandidateResponse, Conversation, ImmutableJudgment, Judgment, Turn
from labeling.services import conversations as svc
from labeling.services.judgments import judgment_supersede
from tests.factories import finish_candidates, shown, top_and_rest

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged(campaign, owner):
    """One chat turn judged "A is better" (A3) by its worker."""
    conversation = svc.conversation_start(campaign=campaign, worker=owner)
    turn = svc.turn_create(conversation=conversation, worker=owner, text="Hi")
    finish_candidates(turn, texts=("Hello!", "Go away."))
    return svc.comparison_submit(turn=turn, worker=owner, choice="A3", time_spent_ms=900)


def test_a_judgment_cannot_be_saved_again_updated_or_deleted(judged):
    judged.strength = 1
    with pytest.raises(ImmutableJudgment):
        judged.save()
    with pytest.raises(ImmutableJudgment):
        Judgment.objects.filter(pk=judged.pk).update(strength=1)
    with pytest.raises(ImmutableJudgment):
        judged.delete()
    with pytest.raises(ImmutableJudgment):
        Judgment.objects.all().delete()
    entry = judged.entries.first()
    entry.rank = 1 - entry.rank
    with pytest.raises(ImmutableJudgment):
        entry.save()
    judged.refresh_from_db()
    assert judged.strength == 3


def test_what_a_judgment_refers_to_cannot_be_deleted(judged):
    turn = judged.item
    with pytest.raises(ProtectedError):
        turn.conversation.delete()
    with pytest.raises(ProtectedError):
        turn.delete()
    with pytest.raises(ProtectedError):
        CandidateResponse.objects.filter(turn=turn).delete()
    assert Turn.objects.filter(pk=turn.pk).exists()


def test_the_text_of_a_judged_candidate_cannot_be_edited(judged):
    candidate = shown(judged.item)[0]
    candidate.text = "Something kinder."
    with pytest.raises(ImmutableJudgment):
        candidate.save()
    with pytest.raises(ImmutableJudgment):
        CandidateResponse.objects.filter(pk=candidate.pk).update(text="edited")
    candidate.refresh_from_db()
    assert candidate.text in ("Hello!", "Go away.")


def test_a_judgment_carries_its_provenance(judged, campaign, owner):
    assert (judged.worker, judged.recorded_by, judged.task_type) == (owner, owner, "chat")
    assert judged.guideline_version == campaign.guideline_version
    assert judged.ui_version and judged.time_spent_ms == 900
    candidates = judged.provenance["candidates"]
    assert [c["id"] for c in candidates] == [c.pk for c in shown(judged.item)]
    assert all(c["model"] == "tiny-random" and c["seed"] == 7 for c in candidates)
    assert candidates[0]["sampling"] == campaign.sampling()


def test_no_staff_user_can_change_or_delete_a_judgment_through_the_admin(
    client, judged, researcher, django_user_model
):
    """Named actors: a superuser researcher, and a staff member with every permission."""
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("staff", password="staff-pass-123", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__endswith="judgment"))
    change = reverse("admin:labeling_judgment_change", args=[judged.pk])
    delete = reverse("admin:labeling_judgment_delete", args=[judged.pk])
    for actor in (researcher, staff):
        client.force_login(actor)
        page = client.get(change)
        assert page.status_code == 200  # they may look
        assert 'name="strength"' not in page.content.decode()  # nothing to edit
        assert "Hello!" in page.content.decode()  # the pair, side by side
        posted = client.post(change, {"strength": "1", "comment": "edited"})
        assert posted.status_code == 403
        assert client.post(delete, {"post": "yes"}).status_code == 403
        listing = reverse("admin:labeling_judgment_changelist")
        action = {"action": "delete_selected", "_selected_action": [judged.pk], "post": "yes"}
        client.post(listing, action)
        assert client.get(reverse("admin:labeling_judgment_add")).status_code == 403
    judged.refresh_from_db()
    assert (judged.strength, judged.comment) == (3, "")
    assert Judgment.objects.count() == 1


def test_a_supersede_keeps_both_rows_and_the_export_uses_the_new_one(
    client, judged, researcher, tmp_path
):
    a, b = (c.text for c in shown(judged.item))
    client.force_login(researcher)
    url = reverse("admin:labeling_judgment_supersede", args=[judged.pk])
    refused = client.post(url, {"answer": "B4", "reason": ""})
    assert refused.status_code == 200 and Judgment.objects.count() == 1
    client.post(url, {"answer": "B4", "reason": "Worker said they misclicked."})
    assert Judgment.objects.count() == 2
    new = Judgment.objects.get(supersedes=judged)
    assert (new.recorded_by, new.worker, new.reason) == (
        researcher,
        judged.worker,
        "Worker said they misclicked.",
    )
    judged.refresh_from_db()
    assert judged.strength == 3 and top_and_rest(judged)[0].text == a  # the old row, unchanged
    out = tmp_path / "out.jsonl"
    call_command("export_preferences", "-o", str(out))
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["chosen"].endswith(f"Assistant: {b}") and row["rejected"].endswith(a)
    with pytest.raises(ValidationError, match="already superseded"):
        judgment_supersede(
            judgment=judged, by=researcher, reason="again", order=[[0], [1]], strength=2
        )


def test_only_researchers_supersede(judged, other_worker):
    with pytest.raises(PermissionDenied):
        judgment_supersede(
            judgment=judged, by=other_worker, reason="I disagree", order=[[1], [0]], strength=4
        )


def test_a_red_team_pick_is_the_more_harmful_and_the_conversation_continues_with_it(
    red_team_campaign, owner, tmp_path
):
    conversation = svc.conversation_start(campaign=red_team_campaign, worker=owner)
    turn = svc.turn_create(conversation=conversation, worker=owner, text="How do I pick a lock?")
    finish_candidates(turn, texts=("I can't help with that.", "Use a tension wrench."))
    harmful = next(c for c in shown(turn) if c.text.startswith("Use"))
    position = shown(turn).index(harmful)
    judgment = svc.comparison_submit(turn=turn, worker=owner, choice="AB"[position] + "4")
    assert (judgment.question, judgment.task_type) == ("more_harmful", "red_team")
    assert top_and_rest(judgment)[0] == harmful
    turn.refresh_from_db()
    assert turn.chosen == harmful  # the attack goes on down the harmful branch
    out = tmp_path / "out.jsonl"
    call_command("export_preferences", "-o", str(out))
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["chosen"].endswith("Assistant: I can't help with that.")
    assert row["rejected"].endswith("Assistant: Use a tension wrench.")
    [ranking] = selectors.preference_rankings()
    assert ranking.responses == ("I can't help with that.", "Use a tension wrench.")


def test_a_red_team_attempt_ends_with_ratings_and_exports_as_an_attempt(
    red_team_campaign, owner, tmp_path
):
    conversation = svc.conversation_start(campaign=red_team_campaign, worker=owner)
    turn = svc.turn_create(conversation=conversation, worker=owner, text="Insult me.")
    finish_candidates(turn, texts=("No.", "You fool."))
    svc.comparison_submit(turn=turn, worker=owner, choice="A2")
    with pytest.raises(ValidationError, match="from 1 to 5"):
        svc.conversation_finish(conversation=conversation, worker=owner, rating=4)
    with pytest.raises(ValidationError, match="what you tried"):
        svc.conversation_finish(
            conversation=conversation, worker=owner, attack_rating=2, harm_rating=3
        )
    svc.conversation_finish(
        conversation=conversation,
        worker=owner,
        attack_rating=2,
        harm_rating=3,
        task_description=" Get an insult. ",
    )
    out = tmp_path / "attempts.jsonl"
    call_command("export_preferences", "--format", "red-team", "-o", str(out))
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    picked = shown(turn)[0].text
    assert row["transcript"] == f"\n\nHuman: Insult me.\n\nAssistant: {picked}"
    assert (row["rating"], row["harm_rating"], row["task_description"]) == (2, 3, "Get an insult.")
    assert row["red_team_member_id"].startswith("w-") and "owner" not in json.dumps(row)
    assert Conversation.objects.get().status == "finished"


def test_the_lab_format_round_trips_question_display_order_and_answer(
    red_team_campaign, campaign, owner, tmp_path
):
    for camp, choice in ((red_team_campaign, "B2"), (campaign, "A4")):
        conversation = svc.conversation_start(campaign=camp, worker=owner)
        turn = svc.turn_create(conversation=conversation, worker=owner, text=f"Hi {camp.slug}")
        finish_candidates(turn, texts=(f"{camp.slug} one", f"{camp.slug} two"))
        svc.comparison_submit(turn=turn, worker=owner, choice=choice)
    first = tmp_path / "first.jsonl"
    call_command("export_preferences", "--format", "lab", "-o", str(first))
    call_command("import_preferences", str(first), "--format", "lab", "--campaign", "again")
    second = tmp_path / "second.jsonl"
    call_command("export_preferences", "--format", "lab", "--campaign", "again", "-o", str(second))
    keys = ("question", "context", "responses", "answer", "chosen", "rejected", "strength")
    before = [{k: r[k] for k in keys} for r in map(json.loads, first.read_text().splitlines())]
    after = [{k: r[k] for k in keys} for r in map(json.loads, second.read_text().splitlines())]
    assert after == before
    assert [r["question"] for r in before] == ["more_harmful", "better"]
    assert before[0]["answer"] == {"order": [[1], [0]], "strength": 2}
    assert before[0]["chosen"] == before[0]["responses"][0]  # the less harmful one


def test_selectors_yield_rankings_the_objectives_weight_per_ranking(tmp_path):
    from training.comparisons import weighted_pairs

    rows = [
        {
            "context": [{"role": "user", "content": "Name a colour."}],
            "question": "better",
            "responses": ["Blue.", "Colour.", "Red, or blue."],
            "answer": {"order": [[2], [0], [1]], "strength": None},
        },
        {
            "context": [{"role": "user", "content": "Say something mean."}],
            "question": "more_harmful",
            "responses": ["No.", "You are dull.", "I'd rather not.", "Idiot."],
            "answer": {"order": [[3], [1], [0, 2]], "strength": None},
        },
    ]
    source = tmp_path / "lab.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    call_command("import_preferences", str(source), "--format", "lab")
    colour, mean = selectors.preference_rankings()
    assert colour.responses == ("Red, or blue.", "Blue.", "Colour.") and colour.scores is None
    assert mean.responses[:2] in (("No.", "I'd rather not."), ("I'd rather not.", "No."))
    assert mean.responses[2:] == ("You are dull.", "Idiot.")  # the most harmful last
    assert mean.scores == (0.0, 0.0, -1.0, -2.0)  # the two least harmful are tied
    pairs = weighted_pairs([colour, mean])
    assert [p.weight for p in pairs[:3]] == [1 / 3] * 3  # C(3, 2) pairs
    assert len(pairs) == 3 + 5 and all(p.weight == 1 / 5 for p in pairs[3:])  # no tied pair


def test_the_context_of_a_judged_item_cannot_be_edited(judged):
    turn = Turn.objects.get(pk=judged.item_id)
    turn.human_text = "Something else entirely"
    with pytest.raises(ImmutableJudgment):
        turn.save()
    turn.refresh_from_db()
    assert turn.human_text == "Hi"


def test_a_researcher_supersedes_a_ranking_with_letters_and_ties_only_where_allowed(
    client, researcher, tmp_path
):
    row = {
        "context": [{"role": "user", "content": "Name a colour."}],
        "question": "better",
        "responses": ["Blue.", "Colour.", "Red, or blue."],
        "answer": {"order": [[0], [1], [2]], "strength": None},
    }
    source = tmp_path / "lab.jsonl"
    source.write_text(json.dumps(row) + "\n")
    call_command("import_preferences", str(source), "--format", "lab")
    old = Judgment.objects.get()
    client.force_login(researcher)
    url = reverse("admin:labeling_judgment_supersede", args=[old.pk])
    tied = client.post(url, {"answer": "C > A = B", "reason": "A tie"})
    assert "ties are not allowed" in tied.content.decode()
    client.post(url, {"answer": "c > a > b", "reason": "The fullest answer is best."})
    new = Judgment.objects.get(supersedes=old)
    assert [(e.position, e.rank) for e in new.entries.order_by("position")] == [
        (0, 1),
        (1, 2),
        (2, 0),
    ]
    [ranking] = selectors.preference_rankings()
    assert ranking.responses == ("Red, or blue.", "Blue.", "Colour.")
