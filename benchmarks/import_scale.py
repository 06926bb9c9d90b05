"""Importing a public-size hh-rlhf file: time and peak memory on SQLite and PostgreSQL.

    python -m benchmarks.import_scale --rows 160000      # the public train split's size
    python -m benchmarks.import_scale --rows 2000 --backends sqlite --json

Writes ``--rows`` synthetic hh-rlhf rows (1-4 turns, messages of tens to hundreds of
characters, one row of each irregular kind in every ``IRREGULAR_EVERY``: DESIGN §3) to a
temporary JSONL file, the same for the same ``--seed``. For each backend it makes a fresh
empty database (SQLite: a temporary file; PostgreSQL: ``hhh_import_bench_<pid>`` at
``--postgres-url``, dropped afterwards), migrates it, then runs the real
``manage.py import_preferences FILE`` in a process of its own, with a temporary
LAB_VAR_DIR, and takes that process's wall time and peak RSS (``os.wait4``: the import
alone, not the migration). It checks that the database holds N judgments, N conversations
and 2N candidates and that the command reports the irregular rows as written, and exits
non-zero when anything differs.

Prints, per backend: rows, seconds, rows per second, peak RSS in MiB against the goals
(<= 600 s, <= 1024 MiB), and the import's time as a ratio of the baseline measured in the
same run: reading and parsing the same file with ``training.data.iter_hh_rlhf`` (the floor
an import cannot beat; the ratio is what the database writes cost on top). ``--json``
adds one machine-readable line at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from models_backend.dialogue import DIVERGED_EARLY, REGULAR, REPEATED_ROLE, ROW_KINDS
from training.data import iter_hh_rlhf, row_kinds

REPO = Path(__file__).resolve().parent.parent
GOAL_SECONDS = 600
GOAL_MIB = 1024
# Rows per irregular row of each kind (the public harmless-base file: 3 + 3 in 1,812);
# they come first in each run of rows, so any file of 3 rows or more has both kinds.
IRREGULAR_EVERY = 400
TABLES = {  # what the check counts -> its table
    "judgments": "labeling_judgment",
    "conversations": "labeling_conversation",
    "candidates": "labeling_candidateresponse",
}
# The import's settings come from the environment, not from a test run or a demo.
DROPPED_ENV = ("LAB_TEST_VAR_DIR", "LAB_BROKER_DIR", "LAB_PM_DIR", "CELERY_BROKER_URL")
VOCABULARY = (  # the synthetic messages' words
    "the of to and a in is it you that was for on are with as they be at one have this "
    "from or had by not word but what some we can out other were all there when up use "
    "your how said an each she which do their time if will way about many then them would "
    "like so these her long make thing see him two has look more day could go come did "
    "number sound no most people my over know water than call first who may down side "
    "been now find help please sorry sure question answer maybe think really good idea"
)
WORDS = VOCABULARY.split()


@dataclass(frozen=True)
class Written:
    path: Path
    rows: int
    kinds: dict[str, int]  # each of ROW_KINDS -> rows of that kind


@dataclass(frozen=True)
class Measured:
    backend: str
    seconds: float  # wall time of the import process
    peak_mib: float  # its peak resident memory
    counts: dict[str, int]  # each name of TABLES -> rows in the database afterwards
    report: str  # the command's last line of output


def write_rows(path: Path, rows: int, seed: int) -> Written:
    """``rows`` synthetic hh-rlhf rows at ``path``, the same for the same ``seed``."""
    rng = random.Random(seed)
    kinds = dict.fromkeys(ROW_KINDS, 0)
    with open(path, "w", encoding="utf-8") as out:
        for number in range(rows):
            kind = {1: DIVERGED_EARLY, 2: REPEATED_ROLE}.get(number % IRREGULAR_EVERY, REGULAR)
            out.write(json.dumps(synthetic_row(rng, kind)) + "\n")
            kinds[kind] += 1
    return Written(path, rows, kinds)


def synthetic_row(rng: random.Random, kind: str) -> dict[str, str]:
    """One row of ``kind``: DIVERGED_EARLY's ``chosen`` ends with two Assistant messages
    where ``rejected`` has one; REPEATED_ROLE's sides both hold two in a row earlier."""

    def say(role: str) -> tuple[str, str]:
        low, high = (4, 60) if role == "Human" else (10, 140)  # words: ~20-270, ~45-630 chars
        return role, " ".join(rng.choices(WORDS, k=rng.randint(low, high)))

    turns = rng.randint(2 if kind == REPEATED_ROLE else 1, 4)
    context = [say(role) for _ in range(turns - 1) for role in ("Human", "Assistant")]
    if kind == REPEATED_ROLE:
        context.insert(2, say("Assistant"))  # Human, Assistant, Assistant, Human, …
    context.append(say("Human"))
    chosen, rejected = context + [say("Assistant")], context + [say("Assistant")]
    if kind == DIVERGED_EARLY:
        chosen.append(say("Assistant"))
    return {
        "chosen": "".join(f"\n\n{role}: {text}" for role, text in chosen),
        "rejected": "".join(f"\n\n{role}: {text}" for role, text in rejected),
    }


def import_file(backend: str, written: Written, *, postgres_url: str, workdir: Path) -> Measured:
    """Migrate a fresh database of ``backend`` and time ``manage.py import_preferences``."""
    var_dir = Path(tempfile.mkdtemp(prefix=f"var-{backend}-", dir=workdir))
    with _database(backend, postgres_url, var_dir) as url:
        env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
        env.update(DJANGO_SETTINGS_MODULE="hhh.settings", DATABASE_URL=url)
        env.update(LAB_VAR_DIR=str(var_dir), OMP_NUM_THREADS="1")
        _manage(["migrate", "--noinput"], env)
        seconds, peak_kib, output = _manage(["import_preferences", str(written.path)], env)
        counts = _counts(backend, url)
    report = output.strip().splitlines()[-1] if output.strip() else ""
    return Measured(backend, seconds, peak_kib / 1024, counts, report)


def problems(measured: Measured, written: Written) -> list[str]:
    """Each way the database or the command's report differs from the file written."""
    n, found = written.rows, measured.counts
    wrong = [
        f"{measured.backend}: {found[name]} {name} in the database, {want} expected"
        for name, want in {"judgments": n, "conversations": n, "candidates": 2 * n}.items()
        if found[name] != want
    ]
    kinds = ", ".join(f"{kind} {c}" for kind, c in sorted(written.kinds.items()) if c)
    expected = f"imported {n} comparisons into campaign 'imported' ({kinds})"
    if measured.report != expected:
        wrong.append(f"{measured.backend}: the command said {measured.report!r}, not {expected!r}")
    return wrong


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=160_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", action="store_true", help="a JSON line of the results last")
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    if args.rows < 1 or not set(backends) <= {"sqlite", "postgres"}:
        parser.error("--rows must be >= 1 and --backends a list of sqlite, postgres")
    with tempfile.TemporaryDirectory(prefix="hhh-import-scale-") as tmp:
        written = write_rows(Path(tmp) / "hh-rlhf.jsonl", args.rows, args.seed)
        size_mb = written.path.stat().st_size / 1e6
        print(f"{args.rows} synthetic hh-rlhf rows, {size_mb:.0f} MB, {_kinds(written.kinds)}")
        start = time.perf_counter()
        parsed = row_kinds(iter_hh_rlhf(written.path))  # the baseline
        floor = time.perf_counter() - start
        if parsed != written.kinds:
            sys.exit(f"the generator wrote {written.kinds}, the reader found {parsed}")
        print(f"baseline  parse with iter_hh_rlhf: {floor:.1f} s, {args.rows / floor:.0f} rows/s")
        results, failures = [], []
        for backend in backends:
            measured = import_file(backend, written, postgres_url=args.postgres_url, workdir=tmp)
            failures += problems(measured, written)
            results.append(_line(measured, written.rows, floor))
            print(
                f"{backend:<9} rows {written.rows}  {measured.seconds:.1f} s  "
                f"{written.rows / measured.seconds:.0f} rows/s  peak {measured.peak_mib:.0f} MiB  "
                f"{measured.seconds / floor:.1f}x baseline  "
                f"goals: <= {GOAL_SECONDS} s {_pass(results[-1]['time_ok'])}, "
                f"<= {GOAL_MIB} MiB {_pass(results[-1]['memory_ok'])}"
            )
    if args.json:
        print(json.dumps({"rows": args.rows, "baseline_s": round(floor, 2), "results": results}))
    if failures:
        sys.exit("row count check failed:\n" + "\n".join(failures))
    print("row counts match the file on every backend")


def _line(measured: Measured, rows: int, floor: float) -> dict:
    return {
        **asdict(measured),
        "rows_per_s": round(rows / measured.seconds, 1),
        "ratio_vs_parse": round(measured.seconds / floor, 2),
        "time_ok": measured.seconds <= GOAL_SECONDS,
        "memory_ok": measured.peak_mib <= GOAL_MIB,
    }


def _kinds(kinds: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))


def _pass(ok: bool) -> str:
    return "pass" if ok else "FAIL"


@contextlib.contextmanager
def _database(backend: str, postgres_url: str, var_dir: Path):
    """The URL of a fresh empty database; a PostgreSQL one is dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{var_dir / 'bench.sqlite3'}"
        return
    import psycopg

    name = f"hhh_import_bench_{os.getpid()}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:  # CREATE DATABASE needs it
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield urlsplit(postgres_url)._replace(path=f"/{name}").geturl()
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _manage(args: list[str], env: dict) -> tuple[float, int, str]:
    """Run ``manage.py ARGS``; its wall seconds, peak RSS in KiB (its own, from wait4) and
    standard output. A failure exits with its output."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=REPO, env=env, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        if process.returncode:
            sys.exit(f"manage.py {' '.join(args)} failed:\n{out.read()}{err.read()}")
        return seconds, usage.ru_maxrss, out.read()  # ru_maxrss: KiB on Linux


def _counts(backend: str, url: str) -> dict[str, int]:
    if backend == "sqlite":
        connect = contextlib.closing(sqlite3.connect(urlsplit(url).path[1:]))
    else:
        import psycopg

        connect = psycopg.connect(url)
    with connect as db:
        return {
            name: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for name, table in TABLES.items()
        }


if __name__ == "__main__":
    main()
