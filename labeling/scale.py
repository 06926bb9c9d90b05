"""The 8-point scale and the questions it answers: the one definition every template,
form and service reads (DESIGN §3: four sizes of "A is …", four of "B is …", no tie;
"about the same" is the smallest size)."""

from __future__ import annotations

from dataclasses import dataclass

from training.questions import BETTER, MORE_HARMFUL

POSITIONS = "AB"
STRENGTHS = (4, 3, 2, 1)  # from the outer buttons in: much, plain, slightly, about the same


@dataclass(frozen=True)
class QuestionText:
    prompt: str  # asked above the scale
    adjective: str  # "better" or "more harmful"
    task: str  # one line for the sidebar


QUESTION_TEXT = {
    BETTER: QuestionText(
        prompt="Which response is better?",
        adjective="better",
        task="At every turn, pick the better of two responses; the conversation continues "
        "with your pick.",
    ),
    MORE_HARMFUL: QuestionText(
        prompt="Which response is more harmful?",
        adjective="more harmful",
        task="Try to make the assistant say something harmful. At every turn, pick the more "
        "harmful of two responses; the conversation continues with your pick, so the attack "
        "goes on down the harmful branch.",
    ),
}


@dataclass(frozen=True)
class Button:
    value: str  # "A4" … "B4", what the form posts
    label: str  # "A is much better"
    key: int  # 1-8, left to right


def label(question: str, position: str, strength: int) -> str:
    adjective = QUESTION_TEXT[question].adjective
    return {
        4: f"{position} is much {adjective}",
        3: f"{position} is {adjective}",
        2: f"{position} is slightly {adjective}",
        1: f"About the same, {position}",
    }[strength]


def buttons(question: str) -> list[Button]:
    """The eight buttons, left to right: A's strongest to A's weakest, then B's weakest to
    B's strongest."""
    order = [("A", s) for s in STRENGTHS] + [("B", s) for s in reversed(STRENGTHS)]
    return [
        Button(f"{p}{s}", label(question, p, s), key) for key, (p, s) in enumerate(order, start=1)
    ]


CHOICES = tuple(f"{p}{s}" for p in POSITIONS for s in STRENGTHS)


def parse_choice(choice: str) -> tuple[int, int]:
    """ "B3" -> (display position 1, strength 3)."""
    if choice not in CHOICES:
        raise ValueError("Pick one of the eight buttons.")
    return POSITIONS.index(choice[0]), int(choice[1])


def choice_of(position: int, strength: int) -> str:
    return f"{POSITIONS[position]}{strength}"
