"""Shared fixtures. Tests run on SQLite by default and on PostgreSQL when DATABASE_URL says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def _tasks_run_in_process(settings):
    """Unit tests run Celery tasks in process; tests marked ``worker`` use a real worker instead."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
