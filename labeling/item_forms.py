"""Forms of the ranking and re-judge pages (labeling/item_views.py) and of a ranking quiz
question (labeling/onboarding_views.py)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django import forms

from labeling.forms import ComparisonForm


def _shown_ids(value: str) -> list[int]:
    try:
        return [int(part) for part in value.split(",")]
    except ValueError:
        raise forms.ValidationError("This page is out of date: reload it.") from None


class RankingForm(forms.Form):
    """One place (1 = best) per response, by display position: ``place_0`` is A's. Equal
    places are a tie. The page's script fills the places from the order of the cards;
    without JavaScript the worker picks them."""

    shown = forms.CharField(widget=forms.HiddenInput)  # candidate ids as shown, A first
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)
    shown_at = forms.IntegerField(required=False, min_value=0)  # as in ComparisonForm

    def __init__(self, data=None, *, k: int):
        super().__init__(data)
        self.k = k
        for position in range(k):
            self.fields[f"place_{position}"] = forms.TypedChoiceField(
                coerce=int, choices=[(p, str(p)) for p in range(1, k + 1)]
            )

    def clean_shown(self):
        return _shown_ids(self.cleaned_data["shown"])

    def clean(self):
        cleaned = super().clean()
        if any(f"place_{p}" in self.errors for p in range(self.k)):
            raise forms.ValidationError(f"Give every response a place from 1 to {self.k}.")
        return cleaned

    def order(self) -> list[list[int]]:
        """Groups of display positions, best first; equal places are one group."""
        places = {p: self.cleaned_data[f"place_{p}"] for p in range(self.k)}
        return [
            [p for p in range(self.k) if places[p] == place]
            for place in sorted(set(places.values()))
        ]


class RejudgeForm(ComparisonForm):
    shown = forms.CharField(widget=forms.HiddenInput)  # candidate ids as shown, A first

    def clean_shown(self):
        return _shown_ids(self.cleaned_data["shown"])


@dataclass(frozen=True)
class RankCard:
    letter: str
    position: int
    candidate: object  # the CandidateResponse shown
    place: int  # 1 is the best; what the card's place select holds


def rank_cards(responses: Sequence, posted: Mapping) -> list[RankCard]:
    """The responses (``item_selectors.ItemResponse``, display order) with their places: as
    ``posted`` when the same item is shown again after a refused answer, else as shown."""
    cards = []
    for response in responses:
        place = posted.get(f"place_{response.position}", "")
        cards.append(
            RankCard(
                letter=response.letter,
                position=response.position,
                candidate=response.candidate,
                place=int(place) if place.isdecimal() else response.position + 1,  # not "²"
            )
        )
    return cards
