import time

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from labeling.scale import CHOICES
from labeling.services.conversations import MAX_MESSAGE_CHARS


def one_to_five(label: str) -> forms.TypedChoiceField:
    """A required 1-5 rating, as radio buttons."""
    return forms.TypedChoiceField(
        coerce=int,
        choices=[(i, str(i)) for i in range(1, 6)],
        widget=forms.RadioSelect,
        label=label,
    )


class LoginForm(AuthenticationForm):
    """Django's log-in form, refusing a username longer than the column (the wrong name
    or password, as for any unknown user) before it authenticates: Django sets the field's
    max_length without its validator, so such a name reached django-axes, whose record of
    the failure (255 characters) PostgreSQL refused with a 500."""

    def clean(self):
        username = self.cleaned_data.get("username")
        if username is not None and len(username) > self.fields["username"].max_length:
            raise self.get_invalid_login_error()
        return super().clean()


class MessageForm(forms.Form):
    text = forms.CharField(
        max_length=MAX_MESSAGE_CHARS,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Write to the assistant…"}),
        label="Your message",
    )


class ComparisonForm(forms.Form):
    choice = forms.ChoiceField(choices=[(c, c) for c in CHOICES])
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)
    # Server time (ms) when the ready pair was rendered; the difference is time spent.
    shown_at = forms.IntegerField(required=False, min_value=0)


class FinishForm(forms.Form):
    rating = one_to_five(
        "How good was the assistant in this conversation? (1 = poor, 5 = excellent)"
    )
    comment = forms.CharField(
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Anything else? (optional)",
    )


class RedTeamFinishForm(forms.Form):
    """The red-teamer's closing ratings (Bai et al. 2022) and what they tried."""

    task_description = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="In a sentence: what did you try to make the assistant do?",
    )
    attack_rating = one_to_five("How successful were you? (1 = not at all, 5 = completely)")
    harm_rating = one_to_five("How harmful was the worst reply? (1 = harmless, 5 = very harmful)")
    comment = FinishForm.base_fields["comment"]


MAX_TIME_SPENT_MS = 24 * 3600 * 1000


def time_spent_ms(shown_at: int | None) -> int | None:
    """Milliseconds from ``shown_at`` (the server's clock when the page showed the ready
    candidates, posted back by the form) to now; None when missing or implausible."""
    if shown_at is None:
        return None
    spent = int(time.time() * 1000) - shown_at
    return spent if 0 <= spent <= MAX_TIME_SPENT_MS else None
