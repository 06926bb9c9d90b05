"""Every URL the lab serves × every actor, with the answer each one gets.

The URLs come from the root resolver (admin's included): a pattern without an entry here
fails the first test, named. The pages are tables below, one line per URL (its name, under
the [namespace] above it, and the world's objects that fill it), one column per actor
(tests/matrix_data.py builds the world they visit and says who is who); the
admin's many ModelAdmin pages follow one rule per kind of page, and each is still visited
with a real object. Every request runs in a savepoint rolled back after it, so each cell
sees the same world whatever ran before it.

A cell is a status, or a redirect named by where it leads:
  login     302 to the lab's login page          admin     302 to the admin's login page
  quiz      302 to the campaign's quiz           paused    302 to the paused page
  consent   302 to the consent page              next      302 to the task queue (task_next)
  item      302 to the item page (item_next)     conv      302 to the conversation
  done      302 to the end of the set            quality / runs   302 back to a panel page
  sse       200, text/event-stream               file      200, a file as an attachment
  up?       /healthz: 200 or 503 (the test's workers have no heartbeat)
In the POST table a cell marked + is a post by someone the lab lets act there: it may
write (an answer refused because another worker holds the item's only slot is a 400 whose
page reserves the worker's next task). Any other post must leave every row as it was.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.signals import request_finished
from django.db import close_old_connections, connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern

from labeling import item_selectors
from labeling.models import (
    Assignment,
    Campaign,
    CandidateResponse,
    Conversation,
    Enrollment,
    Pause,
    Report,
    Run,
    Turn,
)
from tests.matrix_data import ACTORS, World, build_world, fail_pending, pick_pending

pytestmark = pytest.mark.django_db

# ---- The tables

GET_TABLE = """
# url name           objects in the URL  anon  owner    other    unqual   paused   resrch   super
healthz              -                   up?   up?      up?      up?      up?      up?      up?
login                -                   200   200      200      200      200      200      200
logout               -                   405   405      405      405      405      405      405
[labeling]
home                 -                   login 200      200      200      200      200      200
conversation_start   chat                login 405      405      405      405      405      405
conversation         conversation        login 200      404      404      404      200      200
message_send         conversation        login 405      405      405      405      405      405
conversation_finish  conversation        login 405      405      405      405      405      405
turn_candidates      pending_turn        login conv     404      404      404      conv     conv
turn_stream          pending_turn        login sse      404      404      404      sse      sse
comparison_submit    pending_turn        login 405      405      405      405      405      405
candidates_retry     pending_turn        login 405      405      405      405      405      405
turn_report          pending_turn        login 405      405      405      405      405      405
item_next            ranking             login 200      200      quiz     paused   quiz     quiz
item_next            rejudge             login 200      200      quiz     paused   consent  consent
ranking_submit       ranking,item        login 405      405      405      405      405      405
rejudge_submit       rejudge,others_turn login 405      405      405      405      405      405
item_report          ranking,item        login 405      405      405      405      405      405
task_next            chat                login conv     conv     quiz     paused   quiz     quiz
task_next            ranking             login item     item     quiz     paused   quiz     quiz
task_skip            ranking             login 405      405      405      405      405      405
set_start            ranking             login 405      405      405      405      405      405
set_done             ranking             login next     next     next     next     next     next
consent              ranking             login next     next     quiz     paused   quiz     quiz
consent              rejudge             login next     next     quiz     paused   200      200
withdraw             ranking             login 200      200      200      200      200      200
quiz                 chat                login next     next     200      paused   200      200
quiz                 rejudge             login next     next     200      paused   consent  consent
paused               chat                login next     next     next     200      next     next
prolific_entry       ranking+study_link  next  next     next     next     next     next     next
prolific_entry       ranking             400   400      400      400      400      400      400
[panel]
index                -                   login 403      403      403      403      200      200
dashboard            chat                login 403      403      403      403      200      200
activity             chat                login 403      403      403      403      200      200
item                 item                login 403      403      403      403      200      200
models               -                   login 403      403      403      403      200      200
models_history       -                   login 403      403      403      403      200      200
model_reliability    preference_model    login 403      403      403      403      200      200
quality              chat                login 403      403      403      403      200      200
worker_pause         chat                login 403      403      403      403      405      405
worker_unpause       chat,pause          login 403      403      403      403      405      405
leaderboard          -                   login 403      403      403      403      200      200
leaderboard_plot     -                   login 403      403      403      403      200      200
runs                 -                   login 403      403      403      403      200      200
export_start         -                   login 403      403      403      403      405      405
training_start       -                   login 403      403      403      403      405      405
evaluation_start     -                   login 403      403      403      403      405      405
distillation_start   -                   login 403      403      403      403      405      405
export_download      export_run          login 403      403      403      403      file     file
"""

POST_TABLE = """
# url name           objects in the URL  anon  owner    other    unqual   paused   resrch   super
logout               -                   login login    login    login    login    login    login
[labeling]
conversation_start   chat                login +conv    +conv    quiz     paused   quiz     quiz
message_send         conversation        login +conv    404      404      404      quiz     quiz
conversation_finish  conversation        login +conv    404      404      404      403      403
comparison_submit    pending_turn        login +conv    404      404      404      403      403
candidates_retry     pending_turn        login +conv    404      404      404      403      403
turn_report          pending_turn        login +conv    404      404      404      403      403
ranking_submit       ranking,item        login +item    +400     quiz     paused   quiz     quiz
rejudge_submit       rejudge,others_turn login +item    404      quiz     paused   consent  consent
item_report          ranking,item        login +next    +next    quiz     paused   quiz     quiz
task_skip            ranking             login +next    +next    quiz     paused   quiz     quiz
set_start            ranking             login +done    +done    quiz     paused   quiz     quiz
consent              rejudge             login +next    +next    +quiz    +paused  +quiz    +quiz
withdraw             ranking             login +consent +consent +consent +consent +consent +consent
quiz                 chat                login 400      400      +quiz    400      +quiz    +quiz
[panel]
worker_pause         chat                login 403      403      403      403      +quality +quality
worker_unpause       chat,pause          login 403      403      403      403      +quality +quality
export_start         -                   login 403      403      403      403      +runs    +runs
training_start       -                   login 403      403      403      403      +runs    +runs
evaluation_start     -                   login 403      403      403      403      +runs    +runs
distillation_start   -                   login 403      403      403      403      +runs    +runs
"""

# What each POST sends (built from the world: ids as the owner's page shows them), and
# what must have happened first for the owner's post to be one the lab takes.
POST_DATA = {
    "labeling:message_send": lambda w: {"text": "One more question?"},
    "labeling:conversation_finish": lambda w: {"rating": 4, "comment": ""},
    "labeling:comparison_submit": lambda w: {"choice": "A2"},
    "labeling:turn_report": lambda w: {"reason": Report.Reason.values[0], "note": ""},
    "labeling:ranking_submit": lambda w: {
        **{f"place_{p}": p + 1 for p in range(3)},
        "shown": shown_ids(w.item, w.owner()),
    },
    "labeling:rejudge_submit": lambda w: {
        "choice": "A2",
        "shown": shown_ids(w.others_turn, w.owner()),
    },
    "labeling:item_report": lambda w: {"reason": Report.Reason.values[0]},
    "labeling:consent": lambda w: {"action": "agree", "version": 1},
    "labeling:quiz": lambda w: {"action": "start"},
    "panel:worker_pause": lambda w: {"worker": w.users["other"].pk, "reason": "Checking."},
    "panel:worker_unpause": lambda w: {"reason": "Checked."},
    "panel:export_start": lambda w: {"format": "trl"},
    "panel:evaluation_start": lambda w: {"model_version": w.preference_model.pk},
    "panel:distillation_start": lambda w: {"model": "tiny-random", "sample": 4, "epochs": 1},
}
PREPARE = {
    "labeling:message_send": pick_pending,
    "labeling:conversation_finish": pick_pending,
    "labeling:candidates_retry": fail_pending,
}
QUERIES = {"study_link": "PROLIFIC_PID=5f0c2a9e8d7b6a5f&STUDY_ID=matrixstudy&SESSION_ID=matrix1"}

# The cells' short names, as `classify` writes what a response was.
REDIRECTS = {
    "login": "302 login",
    "admin": "302 admin:login",
    "quiz": "302 labeling:quiz",
    "paused": "302 labeling:paused",
    "consent": "302 labeling:consent",
    "next": "302 labeling:task_next",
    "item": "302 labeling:item_next",
    "conv": "302 labeling:conversation",
    "done": "302 labeling:set_done",
    "quality": "302 panel:quality",
    "runs": "302 panel:runs",
    "sse": "200 text/event-stream",
    "file": "200 attachment",
    "up?": "200|503",
}


def shown_ids(item: Turn, worker) -> str:
    return ",".join(str(c.pk) for c in item_selectors.item_shown(item, worker))


@dataclass(frozen=True)
class Row:
    method: str
    key: str  # the URL pattern's name
    objects: tuple[str, ...]  # the world's attributes that fill the URL, in order
    query: str  # a name in QUERIES, or ""
    cells: dict[str, str]  # actor -> expected, REDIRECTS' names expanded, a "+" kept

    def url(self, world: World) -> str:
        args = [_arg(getattr(world, name)) for name in self.objects]
        url = reverse(self.key, args=args)
        return f"{url}?{QUERIES[self.query]}" if self.query else url


def _arg(value):
    return value.slug if isinstance(value, Campaign) else value.pk


def parse(table: str, method: str) -> list[Row]:
    rows = []
    namespace = ""
    for line in table.strip().splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("["):  # the names below are in this namespace
            namespace = line.strip("[]") + ":"
            continue
        name, objects, *cells = line.split()
        key = namespace + name
        assert len(cells) == len(ACTORS), f"{key}: {len(cells)} cells for {len(ACTORS)} actors"
        objects, _, query = objects.partition("+")
        names = () if objects == "-" else tuple(objects.split(","))
        expected = {
            actor: ("+" if cell.startswith("+") else "") + REDIRECTS.get(cell.lstrip("+"), cell)
            for actor, cell in zip(ACTORS, cells, strict=True)
        }
        rows.append(Row(method, key, names, query, expected))
    return rows


GET_ROWS = parse(GET_TABLE, "GET")
POST_ROWS = parse(POST_TABLE, "POST")


# ---- The admin: one rule per kind of page. Columns: (not staff, researcher, superuser);
# anonymous visitors and workers who are not staff are sent to the admin's login.

ADMIN_SITE = {
    "index": ("admin", 200, 200),
    "login": (200, "302 admin:index", "302 admin:index"),
    "logout": ("302 admin:index", 405, 405),  # a POST since Django 5; the index says who
    "password_change": ("admin", 200, 200),
    "password_change_done": ("admin", 200, 200),
    "autocomplete": ("admin", 403, 403),  # without the field it completes: refused
    "jsi18n": ("admin", 200, 200),
    "view_on_site": ("admin", 404, 404),  # no model of the lab has a page outside the admin
    "app_list": ("admin", 404, 200),  # a researcher holds no model permission
}
# The lab's own admin pages: for every researcher, as the panel is (labeling.panel_access).
ADMIN_OWN = {
    "labeling_judgment_supersede": ("admin", 200, 200),
    "labeling_pause_lift": ("admin", 200, 200),
    "labeling_worker_quality_index": ("admin", 200, 200),
    "labeling_worker_quality": ("admin", 200, 200),
    "labeling_pause_add": ("admin", 200, 200),  # a manual pause: pause_create's own form
    "auth_user_password_change": ("admin", 403, 200),
}
# ModelAdmin pages: a researcher (staff without model permissions) is refused each; the
# superuser is refused only what no one may do to records that stay as written
# (labeling.admin_rules) or that django-axes keeps.
MODEL_PAGES = ("changelist", "add", "history", "delete", "change")
NO_ADD = {
    "labeling.enrollment",
    "labeling.quizattempt",
    "labeling.report",
    "labeling.judgment",
    "axes.accessattempt",
    "axes.accesslog",
    "axes.accessfailurelog",
}
NO_DELETE = {
    "labeling.enrollment",
    "labeling.quizattempt",
    "labeling.report",
    "labeling.judgment",
    "labeling.guidelines",
    "labeling.golditem",
    "labeling.pause",
}


class NoEntry(Exception):
    pass


@dataclass(frozen=True)
class Route:
    parts: tuple  # the patterns from the root resolver down to the URL's own
    name: str | None  # "labeling:conversation"; None for an unnamed pattern

    @property
    def route(self) -> str:
        # As Django joins them (ResolverMatch.route): a nested regex loses its "^".
        return "".join(str(p.pattern).removeprefix("^") for p in self.parts)

    @property
    def key(self) -> str:
        return self.name or self.route

    @property
    def is_admin(self) -> bool:
        return self.route.startswith("admin/")

    @property
    def model(self):
        """The model of a ModelAdmin's page (its URLs sit under admin/<app>/<model>/)."""
        if len(self.parts) < 3:
            return None
        found = re.fullmatch(r"(\w+)/(\w+)/", str(self.parts[1].pattern))
        try:
            return apps.get_model(*found.groups()) if found else None
        except LookupError:
            return None


def routes(resolver=None, parts=(), namespaces=()) -> list[Route]:
    """Every URL pattern the root resolver serves, walking the includes."""
    resolver = resolver or get_resolver()
    found = []
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            spaces = namespaces + ((pattern.namespace,) if pattern.namespace else ())
            found += routes(pattern, (*parts, pattern), spaces)
        elif isinstance(pattern, URLPattern):
            name = ":".join((*namespaces, pattern.name)) if pattern.name else None
            found.append(Route((*parts, pattern), name))
    return found


def admin_cells(route: Route) -> dict[str, str]:
    """What each actor gets on an admin page (NoEntry: a page no rule knows)."""
    short = (route.name or "").removeprefix("admin:")
    model = route.model
    if short in ADMIN_SITE:
        cells = ADMIN_SITE[short]
    elif short in ADMIN_OWN:
        cells = ADMIN_OWN[short]
    elif model is not None and route.name is None and route.route.endswith("<path:object_id>/"):
        change = f"302 admin:{model._meta.app_label}_{model._meta.model_name}_change"
        cells = ("admin", change, change)  # an object's old address, kept as a redirect
    elif model is not None and short.rpartition("_")[2] in MODEL_PAGES:
        page, label = short.rpartition("_")[2], model._meta.label_lower
        refused = (page == "add" and label in NO_ADD) or (page == "delete" and label in NO_DELETE)
        cells = ("admin", 403, 403 if refused else 200)
    elif route.name is None and route.route.endswith("(?P<url>.*)$"):
        cells = ("admin", 404, 404)  # the admin's catch-all: no such page
    else:
        raise NoEntry(route.key)
    outsider, researcher, superuser = (str(REDIRECTS.get(c, c)) for c in cells)
    return {a: outsider for a in ACTORS[:5]} | {"researcher": researcher, "superuser": superuser}


def admin_urls(route: Route, world: World) -> list[str]:
    """The route's address(es) with a real object: each app of the app index."""
    model = route.model
    obj = model._default_manager.order_by("pk").first() if model is not None else None
    values = {
        "object_id": obj.pk if obj is not None else world.chat.pk,
        "pk": obj and obj.pk,
        "id": obj and obj.pk,
        "slug": world.chat.slug,
        "content_type_id": ContentType.objects.get_for_model(Campaign).pk,
        "url": "no-such-page/",
    }
    urls = [""]
    for part in route.parts:
        pattern = str(part.pattern)
        if isinstance(part.pattern, RegexPattern):
            pattern = pattern.removeprefix("^").removesuffix("$")
            choices = re.fullmatch(r"\(\?P<app_label>(.*)\)/", pattern)
            if choices:  # the app index: every app's
                urls = [f"{u}{label}/" for u in urls for label in choices.group(1).split("|")]
                continue
            pattern = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: str(values[m.group(1)]), pattern)
        else:
            pattern = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(values[m.group(1)]), pattern)
        urls = [u + pattern for u in urls]
    return ["/" + u for u in urls]


# ---- Visiting


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The world, built once for the module in a transaction rolled back at its end."""
    with django_db_blocker.unblock(), transaction.atomic():
        made = build_world()
        yield made
        transaction.set_rollback(True)
    made.export_file.unlink(missing_ok=True)


@pytest.fixture
def clients(world):
    """A test client per actor, signed in (the anonymous one not)."""
    signed_in = {}
    for actor in ACTORS:
        signed_in[actor] = Client()
        if world.users[actor] is not None:
            signed_in[actor].force_login(world.users[actor])
    return signed_in


def classify(response) -> str:
    """ "200", "404", "302 labeling:quiz" (a redirect by the name of where it leads)…"""
    status = response.status_code
    if status in (301, 302):
        path = urlsplit(response["Location"]).path
        try:
            match = resolve(path)
        except Resolver404:
            return f"{status} {path}"
        return f"{status} {match.view_name}"
    if status == 200 and response.get("Content-Type", "").startswith("text/event-stream"):
        return "200 text/event-stream"
    if status == 200 and response.get("Content-Disposition", "").startswith("attachment"):
        return "200 attachment"
    return str(status)


def visit(
    client: Client, method: str, url: str, *, data=None, world=None, prepare=None, watch=False
) -> str:
    """One request in a savepoint rolled back after it; its answer as ``classify`` says,
    a server error as "500 <exception>"; with ``watch``, " (wrote)" appended when the
    request changed a row."""
    cookies = copy.deepcopy(client.cookies)
    cache.clear()  # rate-limit counts
    try:
        with transaction.atomic():
            if prepare is not None:
                prepare(world)
            before = footprint() if watch else None
            if method == "POST":
                response = client.post(url, data or {})
            else:
                response = client.generic(method, url)
            got = classify(response)
            _close(response)
            if before is not None and footprint() != before:
                got += " (wrote)"
            transaction.set_rollback(True)
    except Exception as exc:  # a 500: the test client raises the view's exception
        got = f"500 {type(exc).__name__}: {exc}"
    client.cookies = cookies
    return got


def _close(response) -> None:
    """Close a response the way the test client closes a whole one: a stream (the SSE
    view, a download) is never read, and closing it must not close the database
    connection, which the request_finished signal would do inside the test's transaction."""
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


def footprint() -> tuple:
    """Every row count of the lab's and the accounts' tables (one query), and the fields a
    refused post could change without adding a row."""
    models = [*apps.get_app_config("labeling").get_models(), get_user_model(), Group]
    quote = connection.ops.quote_name
    counts = ", ".join(f"(SELECT COUNT(*) FROM {quote(m._meta.db_table)})" for m in models)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        counted = cursor.fetchone()
    fields = (
        list(Conversation.objects.order_by("pk").values_list("status", "rating")),
        list(Turn.objects.order_by("pk").values_list("chosen_id", flat=True)),
        list(CandidateResponse.objects.order_by("pk").values_list("status", "text")),
        list(Assignment.objects.order_by("pk").values_list("status", "expires_at")),
        list(Enrollment.objects.order_by("pk").values_list("withdrawn_at", "consent_version")),
        list(Pause.objects.order_by("pk").values_list("lifted_at", flat=True)),
        list(Run.objects.order_by("pk").values_list("status", flat=True)),
    )
    return counted, fields


def matches(expected: str, got: str) -> bool:
    return got in expected.lstrip("+").split("|")


def mismatches(rows: list[Row], clients, world, *, posts=False) -> list[str]:
    """Every cell whose answer is not the table's, as "GET /x/ as paused: expected …"."""
    wrong = []
    for row in rows:
        url = row.url(world)
        for actor in ACTORS:
            expected = row.cells[actor]
            got = visit(
                clients[actor],
                row.method,
                url,
                data=POST_DATA.get(row.key, lambda w: {})(world) if posts else None,
                world=world if posts else None,
                prepare=PREPARE.get(row.key) if posts else None,
                watch=posts and not expected.startswith("+"),  # a refused post writes nothing
            )
            if not matches(expected, got):
                wrong.append(f"{row.method} {url} as {actor}: expected {expected}, got {got}")
    return wrong


def report(wrong: list[str]) -> str:
    return f"{len(wrong)} wrong cell(s):\n" + "\n".join(wrong)


# ---- The tests


def test_every_url_pattern_the_lab_serves_has_an_entry_in_the_matrix():
    tabled = {row.key for row in GET_ROWS + POST_ROWS}
    missing = []
    for route in routes():
        if route.is_admin:
            try:
                admin_cells(route)
            except NoEntry:
                missing.append(route.key)
        elif route.key not in tabled:
            missing.append(route.key)
    assert not missing, f"URL patterns without an entry in the permission matrix: {missing}"
    names = {route.name for route in routes()}
    assert not tabled - names, f"entries for URLs the lab no longer serves: {tabled - names}"


def test_every_page_answers_each_actor_as_the_table_says(world, clients):
    wrong = mismatches(GET_ROWS, clients, world)
    assert not wrong, report(wrong)


def test_every_post_is_refused_without_a_write_or_taken_as_the_table_says(
    world, clients, settings, tmp_path
):
    settings.LAB_HHH_TASKS = str(tmp_path)  # an evaluation can be queued
    wrong = mismatches(POST_ROWS, clients, world, posts=True)
    assert not wrong, report(wrong)


def test_every_admin_page_is_for_staff_and_each_models_pages_are_visited_with_an_object(
    world, clients
):
    visited, wrong = 0, []
    for route in routes():
        if not route.is_admin:
            continue
        cells = admin_cells(route)
        for url in admin_urls(route, world):
            assert resolve(url).route == route.route, f"{url} is not {route.key}"
            for actor in ACTORS:
                visited += 1
                got = visit(clients[actor], "GET", url)
                if not matches(cells[actor], got):
                    wrong.append(f"GET {url} as {actor}: expected {cells[actor]}, got {got}")
    assert not wrong, report(wrong)
    assert visited >= len(ACTORS) * len(MODEL_PAGES) * len(admin.site._registry)
