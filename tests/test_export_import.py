import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from labeling.models import Conversation, Judgment
from labeling.services import conversations as svc
from tests.factories import finish_candidates, top_and_rest

pytestmark = pytest.mark.django_db

ROWS = [
    {
        "chosen": "\n\nHuman: What is 2+2?\n\nAssistant: 4.",
        "rejected": "\n\nHuman: What is 2+2?\n\nAssistant: 5, probably.",
    },
    {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a "
        'joke\n\nAssistant: Why did the chicken cross the road? <b>To</b> get "across".',
        "rejected": "\n\nHuman: Hi\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a "
        "joke\n\nAssistant: No.",
    },
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_then_import_then_export_gives_the_same_pairs(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", ROWS)
    call_command("import_preferences", str(source), "--format", "hh-rlhf")
    assert Judgment.objects.count() == 2
    first = tmp_path / "first.jsonl"
    call_command("export_preferences", "--format", "hh-rlhf", "-o", str(first))
    assert read_jsonl(first) == ROWS
    call_command("import_preferences", str(first), "--campaign", "again")
    second = tmp_path / "second.jsonl"
    call_command("export_preferences", "--campaign", "again", "-o", str(second))
    assert read_jsonl(second) == ROWS


def test_a_bad_line_names_its_number_and_nothing_is_imported(tmp_path):
    bad = tmp_path / "bad.jsonl"
    lines = [json.dumps(ROWS[0]), json.dumps(ROWS[1]), '{"chosen": "\\n\\nHuman: x"}']
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r":3:.*nothing was imported"):
        call_command("import_preferences", str(bad))
    assert not Conversation.objects.exists()


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_preferences", str(tmp_path / "nope.jsonl"))


def test_collected_comparisons_export_in_hh_rlhf_form_without_the_weakest(
    tmp_path, campaign, owner
):
    conversation = svc.conversation_start(campaign=campaign, worker=owner)
    turn = svc.turn_create(conversation=conversation, worker=owner, text="Hi")
    finish_candidates(turn, texts=("Hello!", "Go away."))
    picked = top_and_rest(svc.comparison_submit(turn=turn, worker=owner, choice="A3"))[0]
    other = "Go away." if picked.text == "Hello!" else "Hello!"
    weak = svc.turn_create(conversation=conversation, worker=owner, text="More?")
    finish_candidates(weak, texts=("Sure.", "Sure!"))
    svc.comparison_submit(turn=weak, worker=owner, choice="A1")
    out = tmp_path / "out.jsonl"
    call_command("export_preferences", "-o", str(out))
    assert read_jsonl(out) == [
        {
            "chosen": f"\n\nHuman: Hi\n\nAssistant: {picked.text}",
            "rejected": f"\n\nHuman: Hi\n\nAssistant: {other}",
        }
    ]
    call_command("export_preferences", "-o", str(out), "--include-weakest")
    assert len(read_jsonl(out)) == 2


def test_export_to_a_missing_directory_fails_cleanly(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export_preferences", "-o", str(tmp_path / "no" / "out.jsonl"))


def test_a_nul_character_is_refused_with_its_line_number(tmp_path):
    row = {"chosen": "\n\nHuman: hi\n\nAssistant: a\u0000b", "rejected": ROWS[0]["rejected"]}
    bad = write_jsonl(tmp_path / "nul.jsonl", [ROWS[0], row])
    with pytest.raises(CommandError, match=r":2:.*NUL"):
        call_command("import_preferences", str(bad))
    assert not Conversation.objects.exists()


def test_the_public_harmless_file_imports_and_exports_back_every_pair_exactly(tmp_path):
    from tests.public_data import harmless_base

    source = harmless_base()
    out = StringIO()
    call_command("import_preferences", str(source), "--campaign", "harmless", stdout=out)
    assert "imported 1812 comparisons" in out.getvalue()
    assert "diverged_early 3" in out.getvalue() and "repeated_role 3" in out.getvalue()
    exported = tmp_path / "out.jsonl"
    call_command("export_preferences", "--include-weakest", "-o", str(exported))
    expected = [
        {"chosen": row["chosen"], "rejected": row["rejected"]} for row in read_jsonl(source)
    ]
    assert read_jsonl(exported) == expected
    # The lab's own format carries them too (4 rows have an empty reply), and back again.
    lab = tmp_path / "lab.jsonl"
    call_command("export_preferences", "--format", "lab", "--include-weakest", "-o", str(lab))
    call_command("import_preferences", str(lab), "--format", "lab", "--campaign", "again")
    call_command(
        "export_preferences", "--campaign", "again", "--include-weakest", "-o", str(exported)
    )
    assert read_jsonl(exported) == expected
