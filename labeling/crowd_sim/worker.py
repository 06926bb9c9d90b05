"""One simulated worker's walk through the lab's pages, as a person without JavaScript
would: enter (Prolific link or log-in form), consent, quiz, then tasks until the set is
done, the queue is empty, the worker is paused, or ``max_tasks`` are done.

What a page asks is read from its forms; what the right answer to a gold item is (and the
texts a simulated annotator reads) comes from the database, as a person would read it off
the screen."""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field

from labeling.crowd_sim.annotators import Annotator
from labeling.crowd_sim.browser import Browser, HttpError, Page
from labeling.models import CandidateResponse, GoldItem, PlatformWorker, QuizAttempt, Turn
from labeling.selectors import dialogue_before
from training.questions import MORE_HARMFUL

MESSAGES = [
    "How do I make a good cup of tea?",
    "Can you explain what a prime number is?",
    "Give me three tips for a job interview.",
    "What should I pack for a weekend hike?",
    "How can I learn to cook on a budget?",
]


@dataclass
class WorkerLog:
    """What one simulated worker did and saw."""

    name: str
    user_id: int | None = None
    tasks: int = 0
    judged: list[tuple[int, int]] = field(default_factory=list)  # (user id, item id) accepted
    gold_seen: int = 0
    quiz_answers: int = 0
    refused: int = 0  # 4xx answers to a request that a person could make (e.g. a race)
    http_errors: list[str] = field(default_factory=list)  # 5xx and unexpected statuses
    ended: str = ""  # why the walk ended: done, empty, paused, not_qualified, tasks, timeout…
    completion_code: str | None = None


class SimWorker:
    def __init__(
        self,
        *,
        browser: Browser,
        campaign,
        name: str,
        annotator: Annotator,
        fails_gold: bool,
        max_tasks: int,
        think_s: float,
        deadline: float,
        rng: random.Random,
        turns_per_conversation: int = 1,
    ):
        self.browser = browser
        self.campaign = campaign
        self.annotator = annotator
        self.fails_gold = fails_gold
        self.max_tasks = max_tasks
        self.think_s = think_s
        self.deadline = deadline
        self.rng = rng
        self.turns_per_conversation = turns_per_conversation
        self.log = WorkerLog(name=name)
        self._sent_in: dict[str, int] = {}  # conversation path -> messages sent

    # --- entry -----------------------------------------------------------------------------
    def enter_prolific(self, study_id: str, session_id: str) -> Page:
        page = self.browser.get(
            f"prolific/{self.campaign.slug}/",
            {"PROLIFIC_PID": self.log.name, "STUDY_ID": study_id, "SESSION_ID": session_id},
        )
        self.log.user_id = (
            PlatformWorker.objects.filter(participant_id=self.log.name)
            .values_list("user_id", flat=True)
            .first()
        )
        return page

    def enter_login(self, username: str, password: str, user_id: int) -> Page:
        page = self.browser.get("accounts/login/")
        form = page.form(r"/accounts/login/")
        self.log.user_id = user_id
        page = self.browser.submit(form, {"username": username, "password": password})
        return self.browser.get(f"campaigns/{self.campaign.slug}/next/")

    # --- the walk --------------------------------------------------------------------------
    def walk(self, page: Page) -> WorkerLog:
        while page is not None:
            if time.monotonic() > self.deadline:
                self.log.ended = "timeout"
                break
            if self.log.tasks >= self.max_tasks:
                self.log.ended = "tasks"
                break
            try:
                page = self.step(page)
            except HttpError as exc:
                page = self._refused(exc)
        return self.log

    def step(self, page: Page) -> Page | None:
        path = page.path
        if path.endswith("/consent/"):
            form = next((f for f in page.forms if f.button(r"agree")), None)
            if form is None:  # withdrawn: the simulator never withdraws, so this is a bug
                return self._stop(f"consent page without an agree button at {path}")
            return self.browser.submit(form, button=form.button(r"agree"))
        if path.endswith("/quiz/"):
            return self._quiz(page)
        if path.endswith("/paused/"):
            self.log.ended = "paused"
            return None
        if path.endswith("/done/"):
            found = re.search(r"completion code[^A-Z0-9]*<[^>]*>\s*([A-Z0-9-]+)", page.html, re.I)
            self.log.completion_code = found.group(1) if found else None
            self.log.ended = "done"
            return None
        if "/conversations/" in path:
            return self._chat(page)
        if path.startswith("/tasks/") or path.endswith("/next/"):
            return self._item(page)
        if path.startswith("/accounts/login"):
            return self._stop("sent to the log-in page")
        if path == "/":
            return self.browser.get(f"campaigns/{self.campaign.slug}/next/")
        return self._stop(f"an unexpected page: {path}")

    # --- pages -----------------------------------------------------------------------------
    def _item(self, page: Page) -> Page | None:
        form = page.form(r"/items/\d+/(rank|judge)/")
        if form is None:
            if page.has_text(r"being generated|still being written") or self._may_open():
                time.sleep(0.5)
                return self.browser.get(f"campaigns/{self.campaign.slug}/next/")
            self.log.ended = "empty"
            return None
        item_id = int(re.search(r"/items/(\d+)/", form.action).group(1))
        shown = self._shown(form.fields.get("shown"), item_id)
        order = self._answer(item_id, shown, quiz=False)
        time.sleep(self.think_s)
        answer = self._form_answer(form, order)
        result = self.browser.submit(form, answer)
        self.log.judged.append((self.log.user_id, item_id))
        self.log.tasks += 1
        return result

    def _quiz(self, page: Page) -> Page | None:
        form = next(
            (
                f
                for f in page.forms
                if any(b[0] == "choice" for b in f.buttons) or "place_0" in f.selects
            ),
            None,
        )
        if form is not None:
            attempt = (
                QuizAttempt.objects.filter(
                    campaign=self.campaign, worker_id=self.log.user_id, passed__isnull=True
                )
                .order_by("-number")
                .first()
            )
            asked = attempt.questions[attempt.answers.count()]
            item_id = GoldItem.objects.values_list("item_id", flat=True).get(pk=asked)
            shown = self._shown(form.fields.get("shown"), item_id)
            order = self._answer(item_id, shown, quiz=True)
            time.sleep(self.think_s)
            self.log.quiz_answers += 1
            return self.browser.submit(form, self._form_answer(form, order))
        steps = (r"next question", r"start the quiz", r"start working", r"try again")
        for pattern in steps:
            link = page.link(pattern)
            if link:
                return self.browser.get(link)
            chosen = next((f for f in page.forms if f.button(pattern)), None)
            if chosen is not None:
                return self.browser.submit(chosen, button=chosen.button(pattern))
        self.log.ended = "not_qualified"
        return None

    def _chat(self, page: Page) -> Page | None:
        compare = page.form(r"/turns/\d+/compare/")
        if compare is not None:
            turn_id = int(re.search(r"/turns/(\d+)/", compare.action).group(1))
            turn = Turn.objects.get(pk=turn_id)
            by_slot = {c.slot: c for c in turn.candidates.all()}
            shown = [by_slot[s] for s in turn.display_order]
            order = self._order(turn, shown)
            time.sleep(self.think_s)
            result = self.browser.submit(compare, self._form_answer(compare, order))
            self.log.judged.append((self.log.user_id, turn_id))
            return result
        sent = self._sent_in.get(page.path, 0)
        message = page.form(r"/messages/$")
        if message is not None and sent < self.turns_per_conversation:
            self._sent_in[page.path] = sent + 1
            return self.browser.submit(message, {"text": self.rng.choice(MESSAGES)})
        finish = page.form(r"/finish/$")
        if finish is not None:
            answer = {"rating": "4", "attack_rating": "2", "harm_rating": "1"}
            answer["task_description"] = "Asked for something harmful in a roundabout way."
            result = self.browser.submit(finish, answer)
            self.log.tasks += 1
            return self.browser.get(f"campaigns/{self.campaign.slug}/next/") if result else None
        if page.has_text(r'class="turn live|Waiting for the model|Writing'):
            time.sleep(0.3)
            return self.browser.get(page.url)
        return self.browser.get(f"campaigns/{self.campaign.slug}/next/")

    def _may_open(self) -> bool:
        """Whether work may still come to this worker although none was served just now:
        an item with an open slot (another worker was reserving at that moment), or other
        workers' live reservations (a skip frees a slot; a split answer raises the overlap).
        A person would come back a little later; the run's deadline bounds the wait. A
        closed campaign, or one that reached its target, serves nothing more: the end."""
        from django.contrib.auth import get_user_model

        from labeling.models import Assignment
        from labeling.queue_selectors import live_item_q, open_items, target_reached

        user = get_user_model().objects.get(pk=self.log.user_id)
        self.campaign.refresh_from_db(fields=["is_active", "target"])
        if not self.campaign.is_active or target_reached(self.campaign, user):
            return False
        live = Assignment.objects.filter(live_item_q(), campaign=self.campaign)
        return open_items(self.campaign, user).exists() or live.exclude(worker=user).exists()

    # --- answers ---------------------------------------------------------------------------
    def _shown(self, shown_ids: str | None, item_id: int) -> list[CandidateResponse]:
        """The item's responses in the order this worker's page shows them."""
        if shown_ids:
            ids = [int(i) for i in shown_ids.split(",")]
            by_id = CandidateResponse.objects.in_bulk(ids)
            return [by_id[i] for i in ids]
        from django.contrib.auth import get_user_model

        from labeling.item_selectors import item_shown

        user = get_user_model().objects.get(pk=self.log.user_id)
        return item_shown(Turn.objects.get(pk=item_id), user)

    def _answer(self, item_id: int, shown: list[CandidateResponse], *, quiz: bool) -> list[int]:
        """Display positions, top first under the campaign's question."""
        gold = GoldItem.objects.filter(item_id=item_id).first()
        if gold is None:
            return self._order(Turn.objects.get(pk=item_id), shown)
        if not quiz:
            self.log.gold_seen += 1
        right = set(gold.answer[0])
        positions = list(range(len(shown)))
        self.rng.shuffle(positions)
        hits = [p for p in positions if shown[p].slot in right]
        misses = [p for p in positions if shown[p].slot not in right]
        wrong = self.fails_gold and not quiz  # failing workers pass the quiz, fail the checks
        return misses + hits if wrong else hits + misses

    def _order(self, turn: Turn, shown: list[CandidateResponse]) -> list[int]:
        better_first = self.annotator(dialogue_before(turn), [c.text for c in shown])
        if self.campaign.question == MORE_HARMFUL:
            return list(reversed(better_first))
        return better_first

    def _form_answer(self, form, order: list[int]) -> dict:
        if "place_0" in form.selects:
            return {f"place_{p}": str(rank + 1) for rank, p in enumerate(order)}
        return {"choice": "AB"[order[0]] + str(self.rng.choice([2, 3, 4]))}

    # --- trouble ---------------------------------------------------------------------------
    def _refused(self, exc: HttpError) -> Page | None:
        status, page = exc.page.status, exc.page
        if status >= 500 or status not in (400, 409, 429):
            self.log.http_errors.append(f"{status} {page.path}")
            return self._stop(f"HTTP {status} at {page.path}")
        self.log.refused += 1
        if self.log.judged and self.log.judged[-1][1] in _ids_in(page.path):
            self.log.judged.pop()  # refused: not a judgment the lab accepted
            self.log.tasks = max(0, self.log.tasks - 1)
        time.sleep(1.0)
        return self.browser.get(f"campaigns/{self.campaign.slug}/next/")

    def _stop(self, why: str) -> None:
        self.log.ended = why
        return None


def _ids_in(path: str) -> set[int]:
    return {int(n) for n in re.findall(r"/(\d+)/", path)}
