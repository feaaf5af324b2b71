"""Shared fixtures. Tests run on SQLite by default and on PostgreSQL when DATABASE_URL says so."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from celery._state import _set_task_join_will_block
from django.db import connection
from hypothesis import HealthCheck, settings

from mastery.celery import app as celery_app

DATA_DIR = Path(__file__).parent / "data"

# Property-based tests: a bounded, repeatable number of examples in CI; more on demand
# (HYPOTHESIS_PROFILE=thorough). No deadline: this machine is shared and its timing is noisy.
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def _tasks_run_in_process(request):
    """Unit tests run Celery tasks in process; tests marked ``worker`` use a real worker instead."""
    # Celery's eager apply_async guards itself with a process-global "joining would block" flag that it
    # saves and restores; two live-server threads doing that at once (the browser tests) can leave it set,
    # and every later ``.apply().get()`` in this process would then refuse. Each test starts clean.
    _set_task_join_will_block(False)
    if request.node.get_closest_marker("worker"):
        yield
        return
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
