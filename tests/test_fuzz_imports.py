"""Fuzz: every import format, with Hypothesis (profiles: tests/fuzzing.py).

Each file is a list of lines, each generated good (valid by construction, with odd and
huge unicode), blank, or bad (broken on purpose: bad JSON, wrong types, missing keys,
empty strings, NUL characters, lone surrogates, wrong roles, truncated lines, bad answers
and strengths). The property for every importer (``import_preferences`` in both formats,
``import_prompts``, ``import_gold``): a file without bad lines imports every good line; a
file with one is refused with the importer's own error (``CommandError``) naming the
first bad line, and nothing is written. No other exception escapes. A valid file also
round-trips: what was imported is what was in the file (exported back where the lab
exports it).

The loaders the training commands read outside files with (``training.loaders``) hold
the same rule without a database: their own ``DataError`` naming the first bad line.

Actors: the researcher who runs the commands (no user is involved in an import).
"""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from hypothesis import event, given
from hypothesis import strategies as st

from labeling.models import GoldItem
from tests import factories
from tests.fuzzing import growth, labeling_counts, rolled_back
from training.data import DataError
from training.loaders import load_rankings

pytestmark = pytest.mark.django_db

# ---- Text: short odd unicode, now and then huge; never a surrogate (those are bad lines)

ODD = st.sampled_from(
    [
        "é",
        "\u202e",  # right-to-left override
        "\ufeff",
        "\u2028",
        "\r",
        "\t",
        "\x7f",
        "👩\u200d🔬",
        "𝔘𝔫𝔦",
        "<b>bold</b>",
        "\\u0000",  # the six characters, not a NUL
        "Human:",
        "'; DROP TABLE labeling_turn; --",
    ]
)
# Any code point but NUL and surrogates: those make bad lines.
CHARS = st.characters(codec="utf-8", exclude_characters="\x00")
SHORT = st.text(CHARS, max_size=12)
HUGE = st.sampled_from(["ü" * 20_000, "x" * 60_000])


def texts(*, nonblank: bool = False, huge: bool = True) -> st.SearchStrategy[str]:
    parts = st.lists(st.one_of(SHORT, ODD), max_size=4).map("".join)
    text = st.one_of(parts, HUGE) if huge else parts
    return text.map(lambda s: s if s.strip() else s + "ok") if nonblank else text


# ---- Lines: (bytes, is_bad)


def encode(row) -> bytes:
    """One JSON line as an exporter would write it (raw UTF-8; escapes only if it must)."""
    try:
        return json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only its escape can be written
        return json.dumps(row).encode("utf-8")


def truncated(draw, row) -> bytes:
    raw = encode(row)
    return raw[: draw(st.integers(1, len(raw) - 1))]


def not_an_object(draw, row) -> bytes:
    other = st.one_of(
        st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=5), st.none()
    )
    return encode(draw(other))


def not_utf8(draw, row) -> bytes:
    # 0x80 never starts a UTF-8 character; no newline, which would split the line.
    return b"\x80" + draw(st.binary(max_size=20)).replace(b"\n", b"")


GENERIC_BREAKERS = [truncated, not_an_object, not_utf8]
WRONG_TYPES = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(), st.lists(st.integers())
)
BAD_CHARACTERS = st.sampled_from(["\x00", "\ud800", "\udfff"])  # NUL, lone surrogates


def spoiled(draw, text: str) -> str:
    """``text`` with a NUL or a lone surrogate somewhere in it."""
    at = draw(st.integers(0, min(len(text), 50)))
    bad = draw(BAD_CHARACTERS)
    event(f"spoiled with {bad!r}")
    return text[:at] + bad + text[at:]


@st.composite
def lines_of(draw, good, bad) -> list[tuple[bytes, bool]]:
    """Good and blank lines, with up to three bad ones put anywhere (most files have one)."""
    blank = st.sampled_from([b"", b"   ", b"\r", b"\t "]).map(lambda b: (b, False))
    lines = draw(st.lists(st.one_of(good.map(lambda row: (encode(row), False)), blank), max_size=4))
    for _ in range(draw(st.sampled_from([1, 1, 2, 3, 0]))):
        lines.insert(draw(st.integers(0, len(lines))), (draw(bad), True))
    return lines


def broken(good, breakers):
    """A good row broken: a third of the time in a way any JSON line can be, a third by
    ``breakers[0]`` (a text spoiled: what slips past a type check), a third by the other
    ``breakers``. Each is ``(draw, row) -> bytes``, or None where it does not apply to the
    row: then the row is cut short instead."""

    @st.composite
    def strategy(draw):
        row = draw(good)
        spoil, *own = breakers
        breaker = draw(
            st.one_of(st.sampled_from(GENERIC_BREAKERS), st.just(spoil), st.sampled_from(own))
        )
        raw = breaker(draw, row)
        if raw is None:
            breaker, raw = truncated, truncated(draw, row)
        event(f"bad line: {breaker.__name__}")  # --hypothesis-show-statistics counts them
        return raw

    return strategy()


def _container(row, path):
    """The container holding the last key of ``path``, or None if the row has none."""
    target = row
    for key in path[:-1]:
        try:
            target = target[key]
        except (KeyError, IndexError, TypeError):
            return None
    return target if isinstance(target, dict | list) else None


def field_set(path: tuple, values, *, only_if: str | None = None):
    """A breaker: the field at ``path`` (keys and indexes) set to a drawn value; it applies
    to rows that have the path's container (and the key ``only_if``, when given)."""

    def breaker(draw, row):
        row = json.loads(json.dumps(row))
        target = _container(row, path)
        if target is None or (only_if is not None and only_if not in row):
            return None
        target[path[-1]] = draw(values)
        return encode(row)

    breaker.__name__ = f"{'.'.join(map(str, path))} set"
    return breaker


def field_dropped(*keys):
    """A breaker: one of ``keys`` that the row has, left out."""

    def breaker(draw, row):
        present = [k for k in keys if k in row]
        if not present:
            return None
        dropped = draw(st.sampled_from(present))
        return encode({k: v for k, v in row.items() if k != dropped})

    breaker.__name__ = "a field left out"
    return breaker


def text_spoiled(*paths):
    """A breaker: one text field the row has (a path of keys and indexes) with a NUL or a
    lone surrogate."""

    def breaker(draw, row):
        row = json.loads(json.dumps(row))
        usable = [p for p in paths if _container(row, p) is not None]
        usable = [p for p in usable if isinstance(_get(row, p), str)]
        if not usable:
            return None
        path = draw(st.sampled_from(usable))
        _container(row, path)[path[-1]] = spoiled(draw, _get(row, path))
        return encode(row)

    breaker.__name__ = "NUL or lone surrogate"
    return breaker


def _get(row, path):
    try:
        return _container(row, path)[path[-1]]
    except (KeyError, IndexError, TypeError):
        return None


# ---- The property


def first_bad(lines) -> int | None:
    return next((n for n, (_, bad) in enumerate(lines, start=1) if bad), None)


def write(path, lines) -> None:
    path.write_bytes(b"".join(raw + b"\n" for raw, _ in lines))


def refused_or_imported(run, path, lines, named) -> dict[str, int] | None:
    """Run ``run()`` on the file; when it has a bad line, check that it raised a
    ``CommandError`` whose first named line is that line (``named(message)``) and that
    nothing was written. Returns the row counts' growth when it imported."""
    write(path, lines)
    bad = first_bad(lines)
    before = labeling_counts()
    try:
        run()
    except CommandError as exc:
        assert bad is not None, f"a good file was refused: {exc}"
        assert named(str(exc)) == bad, f"line {bad} is the first bad line, not: {exc}"
        assert labeling_counts() == before, "a refused file wrote rows"
        return None
    assert bad is None, f"line {bad} is bad, yet the file was imported"
    return growth(before)


def line_in_path(path):
    """The line a ``path:line: …`` message names first."""

    def named(message: str) -> int | None:
        found = re.search(re.escape(str(path)) + r":(\d+):", message)
        return int(found.group(1)) if found else None

    return named


def gold_line(message: str) -> int | None:
    found = re.search(r"line (\d+):", message)
    return int(found.group(1)) if found else None


def json_lines(text: str) -> list:
    """The rows of JSON lines: split at "\\n" only (``str.splitlines`` also splits at
    U+2028 and U+0085, which JSON text holds as they are)."""
    return [json.loads(line) for line in text.split("\n") if line]


def good_lines(lines) -> list[bytes]:
    return [raw for raw, bad in lines if not bad and raw.strip()]


# ---- hh-rlhf: {"chosen": transcript, "rejected": transcript}


def marker_free(text: str) -> str:
    """No blank line inside: "\\n\\nHuman:" would start a message of its own."""
    return re.sub(r"\n+", "\n", text)


@st.composite
def hh_rows(draw):
    turns = draw(st.integers(0, 2))
    text = texts().map(marker_free)
    context = ""
    for _ in range(turns):
        context += f"\n\nHuman: {draw(text)}\n\nAssistant: {draw(text)}"
    context += f"\n\nHuman: {draw(text)}\n\nAssistant:"
    return {"chosen": f"{context} {draw(text)}", "rejected": f"{context} {draw(text)}"}


HH_BREAKERS = [
    text_spoiled(("chosen",), ("rejected",)),
    field_set(("chosen",), WRONG_TYPES),
    field_set(("rejected",), WRONG_TYPES),
    field_dropped("chosen", "rejected"),
    field_set(("chosen",), st.sampled_from(["", "Human: hi\n\nAssistant: no", "\n\nHuman: x"])),
    field_set(("rejected",), st.just("\n\nHuman: another question\n\nAssistant: a")),
]


# File names: plain, odd unicode, and as long as a file system takes (255 bytes), which
# is longer than the lab's source columns.
FILE_NAMES = st.one_of(
    st.just("pairs"),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00/"), min_size=1, max_size=30),
    st.just("n" * 249),
).map(lambda name: f"{name}.jsonl")
# Campaign slugs given to import_preferences: a slug, or any text (refused).
SLUGS = st.one_of(
    st.just("imported"),
    st.from_regex(r"[-a-zA-Z0-9_]{1,50}", fullmatch=True),
    st.text(max_size=60),
    st.just("x" * 51),
)


def is_slug(text: str) -> bool:
    return re.fullmatch(r"[-a-zA-Z0-9_]{1,50}", text) is not None


@given(lines=lines_of(hh_rows(), broken(hh_rows(), HH_BREAKERS)), name=FILE_NAMES, slug=SLUGS)
def test_an_hh_rlhf_file_imports_whole_or_names_its_first_bad_line_and_writes_nothing(
    tmp_path, lines, name, slug
):
    path = tmp_path / name
    run = lambda: call_command(  # noqa: E731
        "import_preferences", str(path), campaign=slug, stdout=StringIO()
    )
    with rolled_back():
        if not is_slug(slug):
            write(path, lines)
            before = labeling_counts()
            with pytest.raises(CommandError, match="--campaign"):
                run()
            assert labeling_counts() == before
            return
        grown = refused_or_imported(run, path, lines, line_in_path(path))
        if grown is None:
            return
        rows = [json.loads(raw) for raw in good_lines(lines)]
        assert grown.get("Judgment", 0) == len(rows)
        assert grown.get("JudgedCandidate", 0) == 2 * len(rows)
        if rows:  # back out in the same form, exactly
            out = StringIO()
            call_command(
                "export_preferences", campaign=slug, output="-", stdout=out, stderr=StringIO()
            )
            exported = json_lines(out.getvalue())
            assert sorted(map(json.dumps, exported)) == sorted(map(json.dumps, rows))


# ---- lab: the lab's own export, read back


def lab_messages(draw, *, role_key="role", text_key="content"):
    """A context as chat messages: user first and last."""
    n = draw(st.integers(0, 2))
    messages = []
    for _ in range(n):
        messages.append({role_key: draw(st.sampled_from(["user", "human"])), text_key: None})
        messages.append({role_key: "assistant", text_key: None})
    messages.append({role_key: draw(st.sampled_from(["user", "human"])), text_key: None})
    for message in messages:
        message[text_key] = draw(texts(nonblank=True))
    return messages


@st.composite
def orders(draw, k: int) -> list[list[int]]:
    """Groups of positions 0..k-1, best first, at least two groups."""
    positions = draw(st.permutations(range(k)))
    cuts = sorted(draw(st.sets(st.integers(1, k - 1), min_size=1)))
    bounds = [0, *cuts, k]
    return [list(positions[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]


@st.composite
def lab_rows(draw):
    k = draw(st.sampled_from([2, 2, 3, 4]))
    row = {
        "context": lab_messages(draw),
        "responses": draw(st.lists(texts(), min_size=k, max_size=k)),
        "question": draw(st.sampled_from(["better", "more_harmful"])),
        "answer": {
            "order": draw(orders(k)),
            "strength": draw(st.one_of(st.none(), st.integers(1, 4))) if k == 2 else None,
        },
    }
    extras = {
        "time_spent_ms": st.one_of(st.none(), st.integers(0, 2**31 - 1)),
        "comment": texts(huge=False),
        "guideline_version": st.text(CHARS, max_size=64),
        "provenance": st.dictionaries(st.text(CHARS, max_size=5), SHORT, max_size=3),
        "task_type": st.sampled_from(["chat", "ranking"]),
        "worker": st.one_of(st.none(), st.text(CHARS, max_size=8)),
    }
    for key in sorted(draw(st.sets(st.sampled_from(sorted(extras))))):  # a set: hash order
        row[key] = draw(extras[key])
    if draw(st.booleans()) and k == 2:  # the older pair form: chosen is better
        return {
            "context": row["context"],
            "chosen": row["responses"][0],
            "rejected": row["responses"][1],
            "strength": row["answer"]["strength"],
        }
    return row


LAB_BREAKERS = [
    text_spoiled(
        ("responses", 0),
        ("chosen",),
        ("rejected",),
        ("context", 0, "content"),
        ("context", -1, "content"),
    ),
    field_dropped("context", "responses", "question", "answer", "chosen", "rejected"),
    field_set(("context",), st.one_of(WRONG_TYPES, st.just([]), st.just(""))),
    field_set(("context", 0, "role"), st.sampled_from(["system", "bot", "", None, 1])),
    field_set(("context", 0, "content"), st.one_of(WRONG_TYPES, st.just("  "))),
    field_set(("context", -1, "role"), st.just("assistant")),
    field_set(("responses",), st.one_of(WRONG_TYPES, st.just([]), st.just(["only one"]))),
    field_set(("responses", 0), WRONG_TYPES),
    field_set(
        ("question",), st.one_of(WRONG_TYPES, st.sampled_from(["worse", ""])), only_if="responses"
    ),
    field_set(("answer",), st.one_of(WRONG_TYPES, st.just({})), only_if="responses"),
    field_set(
        ("answer", "order"),
        st.one_of(
            WRONG_TYPES,
            st.just([]),
            st.just([[0, 1]]),
            st.just([[0], [0]]),
            st.just([[0], [7]]),
            st.just([[True], [False]]),
        ),
    ),
    field_set(("answer", "strength"), st.sampled_from([0, 5, -1, True, "3", 2.5, [1], 10**30])),
    field_set(("strength",), st.sampled_from([0, 5, True, "3"]), only_if="chosen"),
    field_set(("time_spent_ms",), st.sampled_from(["slow", -1, 1.5, 2**31, 10**30, [1], True])),
    field_set(("comment",), st.sampled_from([1, [], {}, "a\x00b", True])),
    field_set(("guideline_version",), st.sampled_from(["v" * 65, 3, "v\x00", ["v1"]])),
    field_set(("provenance",), st.sampled_from([[], "x", 1, {"a": "\x00"}, {"\x00": 1}])),
    field_set(("excluded",), st.sampled_from(["gold", "quiz", "paused"])),
]


def lab_key(row: dict) -> str:
    """What a lab row says, the way the export writes it back."""
    if "responses" not in row:
        row = {
            **row,
            "responses": [row["chosen"], row["rejected"]],
            "question": "better",
            "answer": {"order": [[0], [1]], "strength": row.get("strength")},
        }
    context = [
        {"role": "assistant" if m["role"] == "assistant" else "user", "content": m["content"]}
        for m in row["context"]
    ]
    kept = {k: row.get(k) for k in ("time_spent_ms", "comment", "guideline_version")}
    kept["comment"] = kept["comment"] or ""
    kept["guideline_version"] = kept["guideline_version"] or ""
    return json.dumps(
        [
            context,
            row["responses"],
            row["question"],
            [sorted(group) for group in row["answer"]["order"]],  # ties: any order
            row["answer"].get("strength"),
            kept,
            row.get("provenance") or {},
        ],
        sort_keys=True,  # PostgreSQL's jsonb keeps an object's keys in its own order
    )


@given(lines=lines_of(lab_rows(), broken(lab_rows(), LAB_BREAKERS)))
def test_a_lab_file_imports_whole_or_names_its_first_bad_line_and_writes_nothing(tmp_path, lines):
    path = tmp_path / "lab.jsonl"
    with rolled_back():
        grown = refused_or_imported(
            lambda: call_command(
                "import_preferences",
                str(path),
                "--format",
                "lab",
                "--campaign",
                "lab-data",
                stdout=StringIO(),
            ),
            path,
            lines,
            line_in_path(path),
        )
        if grown is None:
            return
        rows = [json.loads(raw) for raw in good_lines(lines)]
        assert grown.get("Judgment", 0) == len(rows)
        assert grown.get("JudgedCandidate", 0) == sum(
            len(row.get("responses", "cr")) for row in rows
        )
        out = StringIO()
        call_command(
            "export_preferences",
            *("--format", "lab", "--campaign", "lab-data", "--include-weakest", "-o", "-"),
            stdout=out,
        )
        exported = json_lines(out.getvalue())
        assert sorted(map(lab_key, exported)) == sorted(map(lab_key, rows))


# ---- import_prompts: {"prompt": str} or {"context": [chat messages]}


@st.composite
def prompt_rows(draw):
    if draw(st.booleans()):
        return {"prompt": draw(texts(nonblank=True))}
    return {"context": lab_messages(draw)}


PROMPT_BREAKERS = [
    text_spoiled(("prompt",), ("context", 0, "content")),
    field_set(("prompt",), st.one_of(WRONG_TYPES, st.just(""), st.just(" \n"))),
    field_set(("context",), st.one_of(WRONG_TYPES, st.just([]))),
    field_set(("context", 0, "role"), st.sampled_from(["system", "bot", None])),
    field_set(("context", -1, "content"), st.one_of(WRONG_TYPES, st.just(""))),
    field_set(("context", -1, "role"), st.just("assistant")),
    lambda draw, row: encode({"prompt": "a", "context": [{"role": "user", "content": "b"}]}),
    lambda draw, row: encode({"other": draw(texts(huge=False))}),
]


@pytest.fixture
def ranking_campaign(tiny_assistant):
    return factories.ranking_campaign(tiny_assistant, k=3, slug="rank-three")


@given(lines=lines_of(prompt_rows(), broken(prompt_rows(), PROMPT_BREAKERS)), name=FILE_NAMES)
def test_a_prompt_file_makes_every_item_or_names_its_first_bad_line_and_writes_nothing(
    tmp_path, ranking_campaign, lines, name
):
    path = tmp_path / name
    with rolled_back():
        grown = refused_or_imported(
            lambda: call_command(
                "import_prompts", str(path), "--campaign", "rank-three", stdout=StringIO()
            ),
            path,
            lines,
            line_in_path(path),
        )
        if grown is None:
            return
        rows = [json.loads(raw) for raw in good_lines(lines)]
        assert grown.get("Turn", 0) == len(rows)
        assert grown.get("CandidateResponse", 0) == 3 * len(rows)
        made = ranking_campaign.conversations.order_by("pk")
        stored = [
            [*(m["text"] for m in turn.prefix), turn.human_text]
            for turn in (conversation.turns.get() for conversation in made)
        ]
        given_ = [
            [row["prompt"]] if "prompt" in row else [m["content"] for m in row["context"]]
            for row in rows
        ]
        assert stored == given_


# ---- import_gold: a prompt or context, K responses, the answer, an explanation


@st.composite
def gold_rows(draw, k: int):
    row = {}
    if draw(st.booleans()):
        row["prompt"] = draw(texts(nonblank=True))
    else:
        text_key = draw(st.sampled_from(["text", "content"]))
        row["context"] = lab_messages(draw, text_key=text_key)
    row["responses"] = draw(st.lists(texts(nonblank=True), min_size=k, max_size=k))
    row["answer"] = draw(st.one_of(st.integers(0, k - 1), orders(k)))
    row["explanation"] = draw(texts(nonblank=True, huge=False))
    return row


def gold_context_broken(draw, row):
    row = json.loads(json.dumps(row))
    row.pop("prompt", None)
    row["context"] = draw(
        st.sampled_from(
            [
                [],
                "hi",
                [{"role": "human", "text": "q"}, {"role": "assistant", "text": "a"}],
                [{"role": "robot", "text": "q"}],
                [{"role": "human", "text": 3}],
                [{"role": "human"}],
                ["human: q"],
            ]
        )
    )
    return encode(row)


def gold_breakers(k: int):
    return [
        text_spoiled(
            ("responses", 0),
            ("explanation",),
            ("prompt",),
            ("context", 0, "text"),
            ("context", 0, "content"),
        ),
        gold_context_broken,
        field_dropped("responses", "answer", "explanation"),
        field_dropped("prompt", "context"),
        field_set(("prompt",), st.one_of(WRONG_TYPES, st.just(""), st.just("  "))),
        field_set(("context",), st.just([{"role": "human", "text": "both"}]), only_if="prompt"),
        field_set(("unknown",), st.integers()),
        field_set(("responses",), st.one_of(WRONG_TYPES, st.just(["x"] * (k + 1)))),
        field_set(("responses", 0), st.one_of(WRONG_TYPES, st.just(""), st.just(" "))),
        field_set(
            ("answer",),
            st.one_of(
                st.sampled_from([k, -1, True, None, "A", 1.0, [[0]], [], [[0], [0]]]),
                st.integers(min_value=k),
            ),
        ),
        field_set(("explanation",), st.one_of(WRONG_TYPES, st.just(""), st.just("\n"))),
    ]


@pytest.fixture
def campaigns(campaign, ranking_campaign):
    """A pair campaign (K = 2) and a ranking campaign (K = 3) to add gold items to."""
    return {2: campaign, 3: ranking_campaign}


def gold_file(k: int):
    return lines_of(gold_rows(k), broken(gold_rows(k), gold_breakers(k)))


@given(
    case=st.sampled_from([2, 3]).flatmap(lambda k: st.tuples(st.just(k), gold_file(k))),
    role=st.sampled_from(GoldItem.Role.values),
    name=FILE_NAMES,
)
def test_a_gold_file_adds_every_item_or_names_its_first_bad_line_and_writes_nothing(
    tmp_path, campaigns, case, role, name
):
    k, lines = case
    target = campaigns[k]
    path = tmp_path / name
    run = lambda: call_command(  # noqa: E731
        "import_gold", str(path), "--campaign", target.slug, "--role", role, stdout=StringIO()
    )
    with rolled_back():
        if not good_lines(lines) and first_bad(lines) is None:  # nothing in it: said so
            write(path, lines)
            with pytest.raises(CommandError, match="holds no gold items"):
                run()
            return
        grown = refused_or_imported(run, path, lines, gold_line)
        if grown is None:
            return
        rows = [json.loads(raw) for raw in good_lines(lines)]
        assert grown["GoldItem"] == len(rows)
        assert grown["CandidateResponse"] == k * len(rows)
        golds = list(GoldItem.objects.filter(campaign=target).order_by("pk"))[-len(rows) :]
        for gold, row in zip(golds, rows, strict=True):
            answer = row["answer"]
            if isinstance(answer, int):
                answer = [[answer], [s for s in range(k) if s != answer]]
            texts_ = [c.text for c in gold.item.candidates.order_by("slot")]
            assert (gold.role, gold.answer, texts_) == (role, answer, row["responses"])
            assert gold.explanation == row["explanation"].strip()


# ---- The training loaders (no database): their DataError names the first bad line


@st.composite
def preference_rows(draw):
    context = lab_messages(draw)
    if draw(st.booleans()):
        return {
            "prompt": context,
            "chosen": draw(texts(nonblank=True, huge=False)),
            "rejected": draw(texts(nonblank=True, huge=False)),
        }
    return {
        "chosen": [*context, {"role": "assistant", "content": draw(texts(nonblank=True))}],
        "rejected": [*context, {"role": "assistant", "content": draw(texts(nonblank=True))}],
    }


@st.composite
def ranking_rows(draw):
    k = draw(st.integers(2, 4))
    row = {
        "context": draw(st.one_of(texts(nonblank=True), st.builds(lambda: None))),
        "responses": draw(st.lists(texts(huge=False), min_size=k, max_size=k)),
    }
    if row["context"] is None:
        row["context"] = lab_messages(draw)
    if draw(st.booleans()):
        scores = sorted(draw(st.lists(st.integers(-5, 5), min_size=k, max_size=k)), reverse=True)
        if scores[0] == scores[-1]:
            scores[0] += 1
        row["scores"] = scores
    return row


LOADER_BREAKERS = {
    "preference": [
        text_spoiled(("rejected",), ("chosen", -1, "content"), ("prompt",)),
        field_dropped("chosen", "rejected"),
        field_set(("chosen",), st.one_of(WRONG_TYPES, st.just(""), st.just([]))),
        field_set(("prompt",), st.one_of(WRONG_TYPES, st.just([]))),
    ],
    "rankings": [
        text_spoiled(("responses", 0), ("context",), ("context", 0, "content")),
        field_dropped("context"),
        field_set(("responses",), st.one_of(WRONG_TYPES, st.just(["one"]))),
        field_set(("scores",), st.sampled_from(["x", [1], [0, 1, 2, 3, 4], [0] * 4, [True] * 4])),
        field_set(("context",), st.one_of(WRONG_TYPES, st.just([]))),
    ],
}
GOOD = {"preference": preference_rows(), "rankings": ranking_rows()}


@given(
    case=st.sampled_from(sorted(GOOD)).flatmap(
        lambda fmt: st.tuples(
            st.just(fmt), lines_of(GOOD[fmt], broken(GOOD[fmt], LOADER_BREAKERS[fmt]))
        )
    )
)
def test_a_training_loader_reads_every_good_line_or_names_the_first_bad_one(tmp_path, case):
    fmt, lines = case
    path = tmp_path / f"{fmt}.jsonl"
    write(path, lines)
    bad = first_bad(lines)
    try:
        rankings = load_rankings(path, fmt)
    except DataError as exc:
        assert bad is not None, f"a good file was refused: {exc}"
        assert line_in_path(path)(str(exc)) == bad, f"line {bad} is the first bad one: {exc}"
    else:
        assert bad is None, f"line {bad} is bad, yet it was read"
        assert len(rankings) == len(good_lines(lines))
