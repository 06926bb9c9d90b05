"""Forms of the consent and quiz pages (labeling/onboarding_views.py), and the admin's
forms that publish a guidelines version and write a gold item (labeling/crowd_admin.py)."""

from __future__ import annotations

import json
import re
import string

from django import forms
from django.core.exceptions import ValidationError

from labeling import scale
from labeling.item_forms import RankingForm, RejudgeForm
from labeling.models import MAX_CANDIDATES, GoldItem, Guidelines
from labeling.services.gold import gold_item_check, is_unicode
from labeling.services.onboarding import guidelines_examples_check
from models_backend.dialogue import ASSISTANT, HUMAN, Message
from training.questions import BETTER

# ---- Worker pages


class ConsentForm(forms.Form):
    """ "I agree" to the consent of the guidelines version the page showed, or "Rejoin"."""

    action = forms.ChoiceField(choices=[("agree", "I agree"), ("rejoin", "Rejoin")])
    version = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("action") == "agree" and cleaned.get("version") is None:
            raise forms.ValidationError("This page is out of date: reload it.")
        return cleaned


class _QuizAnswer(forms.Form):
    attempt = forms.IntegerField(widget=forms.HiddenInput)
    gold = forms.IntegerField(widget=forms.HiddenInput)  # the question answered


class QuizPairForm(_QuizAnswer, RejudgeForm):
    """A pair on the 8-point scale, as on the re-judge page."""

    def answer(self) -> tuple[list[list[int]], int]:
        position, strength = scale.parse_choice(self.cleaned_data["choice"])
        return [[position], [1 - position]], strength


class QuizRankingForm(_QuizAnswer, RankingForm):
    """A ranking with one place per response, as on the ranking page."""

    def answer(self) -> tuple[list[list[int]], None]:
        return self.order(), None


# ---- Admin: a new guidelines version


def _level_label(level: str) -> str:
    position, strength = scale.parse_choice(level)
    return f"Example {level}: {scale.label(BETTER, scale.POSITIONS[position], strength)}"


class GuidelinesForm(forms.ModelForm):
    """Publishes the next version (``services.onboarding.guidelines_publish``): saving it
    never edits an old row. Pair campaigns give one example per level of the scale (red
    team: the same levels of "more harmful"); ranking campaigns name theirs freely."""

    other_examples = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Examples of a ranking campaign",
        help_text='A JSON object, one markdown example per name: {"A clear best": "…"}.',
    )

    LEVELS = scale.CHOICES
    field_order = ["campaign", "text", *(f"example_{level}" for level in LEVELS)]

    class Meta:
        model = Guidelines
        fields = ["campaign", "text", "consent", "content_warning"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for level in self.LEVELS:
            self.fields[f"example_{level}"] = forms.CharField(
                required=False,
                widget=forms.Textarea(attrs={"rows": 2}),
                label=_level_label(level),
            )
        self.order_fields(self.field_order)
        self.examples: dict[str, str] = {}

    @staticmethod
    def dump_examples(examples: dict) -> str:
        return json.dumps(examples, indent=1, ensure_ascii=False)

    def clean(self):
        cleaned = super().clean()
        campaign = cleaned.get("campaign")
        if campaign is None:
            return cleaned
        if campaign.candidates_per_item == 2:
            examples = {level: cleaned.get(f"example_{level}", "") for level in self.LEVELS}
        else:
            examples = _json_object(cleaned.get("other_examples", ""))
        self.examples = guidelines_examples_check(campaign=campaign, examples=examples)
        return cleaned


def _json_object(text: str) -> dict:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"The ranking examples are not JSON: {exc.msg}.") from None
    if not isinstance(value, dict):
        raise ValidationError("The ranking examples must be a JSON object.")
    # JSON's escapes make what no database column stores: "\u0000" (PostgreSQL's jsonb
    # refuses it) and half a surrogate pair ("\ud800", no encoding takes it).
    texts = [text for pair in value.items() for text in pair if isinstance(text, str)]
    if any("\x00" in text or not is_unicode(text) for text in texts):
        raise ValidationError("The ranking examples hold a NUL character or a lone surrogate.")
    return value


# ---- Admin: a gold item

LETTERS = string.ascii_uppercase[:MAX_CANDIDATES]
_SPEAKER = re.compile(r"^(Human|Assistant):", re.MULTILINE)


def parse_context(text: str) -> list[Message]:
    """A plain prompt, or a dialogue written as "Human: …" / "Assistant: …" paragraphs
    (each marker at the start of a line)."""
    text = text.strip()
    parts = _SPEAKER.split(text)  # ["", "Human", " hi", "Assistant", " hello", …]
    if len(parts) == 1:
        return [Message(HUMAN, text)]
    if parts[0].strip():
        raise ValidationError('A dialogue starts with "Human:" or "Assistant:".')
    return [
        Message(HUMAN if speaker == "Human" else ASSISTANT, body.strip())
        for speaker, body in zip(parts[1::2], parts[2::2], strict=True)
    ]


def parse_answer(text: str, k: int) -> int | list[list[int]]:
    """ "B": slot 1 is right. "B > A = C": an order best first, "=" for ties."""
    groups = []
    for group in text.upper().split(">"):
        letters = [letter.strip() for letter in group.split("=")]
        if any(len(letter) != 1 or letter not in LETTERS[:k] for letter in letters):
            raise ValidationError(
                f'Write the answer with the letters A to {LETTERS[k - 1]}: "B", or "B > A = C".'
            )
        groups.append([LETTERS.index(letter) for letter in letters])
    return groups[0][0] if len(groups) == 1 and len(groups[0]) == 1 else groups


class GoldItemForm(forms.ModelForm):
    """A pair or a ranking with its known answer (``services.gold.gold_item_create``)."""

    context = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        label="Prompt or context",
        help_text='A prompt, or a dialogue as "Human: …" and "Assistant: …" paragraphs that '
        "ends with a Human one.",
    )
    answer = forms.CharField(
        help_text='The right response\'s letter ("B"), or an order best first under the '
        'campaign\'s question: "B > A = C" ("=" ties).'
    )

    class Meta:
        model = GoldItem
        fields = ["campaign", "role", "explanation"]

    field_order = ["campaign", "role", "context", *(f"response_{x}" for x in LETTERS), "answer"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for letter in LETTERS:
            self.fields[f"response_{letter}"] = forms.CharField(
                required=False,
                widget=forms.Textarea(attrs={"rows": 3}),
                label=f"Response {letter}",
                help_text="Fill as many as the campaign's items hold (K); leave the rest empty."
                if letter == "A"
                else "",
            )
        self.order_fields(self.field_order)
        self.spec = None

    def clean(self):
        cleaned = super().clean()
        campaign = cleaned.get("campaign")
        if campaign is None or "context" not in cleaned or "answer" not in cleaned:
            return cleaned
        k = campaign.candidates_per_item
        texts = [cleaned.get(f"response_{letter}", "").strip() for letter in LETTERS]
        if not all(texts[:k]) or any(texts[k:]):
            raise ValidationError(
                f"{campaign} judges {k} responses per item: fill Response A to "
                f"Response {LETTERS[k - 1]}, and no more."
            )
        self.spec = gold_item_check(
            campaign=campaign,
            context=parse_context(cleaned["context"]),
            responses=texts[:k],
            answer=parse_answer(cleaned["answer"], k),
            explanation=cleaned.get("explanation", ""),
        )
        return cleaned
