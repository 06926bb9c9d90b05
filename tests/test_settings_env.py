import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from hhh.env import env_bool, env_float, env_int, env_list
from tests.conftest import REPO


def test_env_helpers_read_good_values(monkeypatch):
    monkeypatch.setenv("X_INT", "7")
    monkeypatch.setenv("X_BOOL", "Yes")
    monkeypatch.setenv("X_FLOAT", "0.5")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_int("X_INT", 1) == 7
    assert env_bool("X_BOOL", False) is True
    assert env_float("X_FLOAT", 1.0) == 0.5
    assert env_list("X_LIST", []) == ["a", "b", "c"]
    assert env_int("X_MISSING", 3) == 3


@pytest.mark.parametrize(
    ("reader", "raw", "message"),
    [
        (lambda: env_int("X", 1), "seven", "not an integer"),
        (lambda: env_int("X", 1, minimum=2), "1", "at least 2"),
        (lambda: env_bool("X", True), "maybe", "not a boolean"),
        (lambda: env_float("X", 1.0), "fast", "not a number"),
    ],
)
def test_env_helpers_fail_loudly_on_bad_values(monkeypatch, reader, raw, message):
    monkeypatch.setenv("X", raw)
    with pytest.raises(ImproperlyConfigured, match=message):
        reader()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_URL", "mysql://root@localhost/x", "DATABASE_URL scheme 'mysql'"),
        ("CELERY_BROKER_URL", "sqs://", "CELERY_BROKER_URL scheme 'sqs'"),
        ("LAB_RETRAIN_MIN_COMPARISONS", "lots", "not an integer"),
    ],
)
def test_the_lab_refuses_to_start_with_a_bad_setting(name, value, message):
    result = check_in_a_new_process(**{name: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_without_a_secret_key_the_lab_makes_one_under_var_and_keeps_it(tmp_path):
    env = {**os.environ, "LAB_VAR_DIR": str(tmp_path), "DJANGO_SECRET_KEY": ""}
    script = "from django.conf import settings; print(settings.SECRET_KEY, settings.DEBUG)"
    runs = [
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = "
                f"'hhh.settings'; django.setup(); {script}",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout.split()
        for _ in range(2)
    ]
    key = (tmp_path / "secret_key").read_text()
    assert runs[0] == runs[1] == [key, "False"]  # the same key again, and no debug pages
    assert len(key) >= 50 and (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_the_documented_production_environment_passes_the_deploy_check(tmp_path):
    env = {**os.environ, "LAB_VAR_DIR": str(tmp_path), **PRODUCTION_ENV}
    env["DJANGO_SETTINGS_MODULE"] = "hhh.settings"  # the lab's own, not the suite's
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the suite's, never a deployment's
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


# The README's production environment ("Running it in production"), less the URLs of the
# database and the broker, which the suite already has.
PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "a-long-random-key-only-for-this-test-0123456789abcdefghijklmnop",
    "DJANGO_ALLOWED_HOSTS": "lab.example.org",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://lab.example.org",
    "DJANGO_HTTPS": "1",
    "DJANGO_BEHIND_TLS_PROXY": "1",
}


def check_in_a_new_process(**env) -> subprocess.CompletedProcess:
    """`manage.py check` with ``env`` over the suite's environment."""
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
