"""The security tests share one world (tests/security/world.py), built once per module."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client

from tests.security.world import build_world


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module inside a transaction that is rolled back at the end; each test runs
    in a savepoint inside it (the ``db`` fixture), so what one test writes never reaches the next."""
    with django_db_blocker.unblock():
        if connection.connection is not None and not connection.is_usable():
            connection.close()  # an earlier module left it broken; the next query reconnects
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            built = build_world()
            for role, user in built.users.items():
                client = Client()
                client.force_login(user)
                built.cookies[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
            yield built
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


#: Figures the security tests leave for the end of the run (matrix size, cells asserted, examples).
SUMMARY: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.section("security figures")
        for line in SUMMARY.values():
            terminalreporter.write_line(line)
