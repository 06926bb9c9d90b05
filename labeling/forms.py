from django import forms

from labeling.services.conversations import MAX_MESSAGE_CHARS, SCALE


class MessageForm(forms.Form):
    text = forms.CharField(
        max_length=MAX_MESSAGE_CHARS,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Write to the assistant…"}),
        label="Your message",
    )


class ComparisonForm(forms.Form):
    choice = forms.ChoiceField(choices=[(c, c) for c in SCALE])
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)
    # Server time (ms) when the ready pair was rendered; the difference is time spent.
    shown_at = forms.IntegerField(required=False, min_value=0)


class FinishForm(forms.Form):
    rating = forms.TypedChoiceField(
        coerce=int,
        choices=[(i, str(i)) for i in range(1, 6)],
        widget=forms.RadioSelect,
        label="How good was the assistant in this conversation? (1 = poor, 5 = excellent)",
    )
    comment = forms.CharField(
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Anything else? (optional)",
    )
