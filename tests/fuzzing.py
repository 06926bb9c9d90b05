"""Hypothesis profiles for the fuzz tests (tests/test_fuzz_*.py), which import this module.

- "ci" (the default): derandomized, so every run tries the same examples and a failure
  in CI is a failure on every machine; no example database (nothing written beside the
  checkout); 20 examples a test, so that all fuzz tests together take under a minute on
  a 2-core machine (about 40 s of CPU on SQLite, start-up and migrations included). No
  deadline: a database round trip on a busy machine is slow now and then, which is not
  what these tests look for. The bugs they found are pinned by tests/test_bad_input.py,
  whatever examples a profile draws.
- "dev": more examples, random each run, for a longer hunt by hand:
  ``HYPOTHESIS_PROFILE=dev pytest tests/test_fuzz_*.py``.

The fuzz tests take pytest-django's function-scoped ``db`` fixtures: each example runs in
the test's one transaction and undoes its own writes (``rolled_back``), so the health
check against function-scoped fixtures is suppressed on purpose.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from django.apps import apps
from django.db import connection, transaction
from hypothesis import HealthCheck, settings

PROFILE_ENV = "HYPOTHESIS_PROFILE"
_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=20,
    database=None,
    suppress_health_check=_QUIET,
    print_blob=True,
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=300,
    suppress_health_check=_QUIET,
    print_blob=True,
)
settings.load_profile(os.environ.get(PROFILE_ENV, "ci"))


@contextmanager
def rolled_back():
    """A savepoint undone at the end: each example starts from the test's own data."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def labeling_counts() -> dict[str, int]:
    """Rows of every labeling model: what "nothing was written" is checked against. One
    query (a count per table), as examples run hundreds of times."""
    models = list(apps.get_app_config("labeling").get_models())
    quote = connection.ops.quote_name
    counts = ", ".join(f"(SELECT COUNT(*) FROM {quote(m._meta.db_table)})" for m in models)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        row = cursor.fetchone()
    return {model.__name__: n for model, n in zip(models, row, strict=True)}


def growth(before: dict[str, int]) -> dict[str, int]:
    """The models whose row counts changed since ``before``, and by how much."""
    after = labeling_counts()
    return {name: after[name] - before[name] for name in after if after[name] != before[name]}
