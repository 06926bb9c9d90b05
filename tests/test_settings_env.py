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
    env = {**os.environ, name: value}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_debug_off_without_a_secret_key_refuses_to_start():
    env = {**os.environ, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": ""}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "DJANGO_SECRET_KEY must be set" in result.stderr
