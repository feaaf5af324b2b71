"""Fixtures of the fault tests: a private Redis broker and real Celery workers on it."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.faults.support import PrivateRedis, redis_skip_reason
from tests.worker_support import RealWorker, _reset_producer_connections, broker_for_tests


def worker_skip_reason() -> str | None:
    if connection.vendor != "postgresql":
        return "needs PostgreSQL: the worker is a second process on the test database"
    return redis_skip_reason()


@pytest.fixture
def private_redis():
    """A Redis of this test's own (never the shared one), the broker of this process and its workers:
    ``.delay`` here really publishes to it. Stopped at teardown."""
    reason = worker_skip_reason()
    if reason:
        pytest.skip(reason)
    redis = PrivateRedis().start()
    try:
        with broker_for_tests(redis.url):
            try:
                yield redis
            finally:
                if redis.process is None:  # a test left it stopped: the block's exit flushes it
                    redis.start()
                    _reset_producer_connections()
    finally:
        redis.stop()


@pytest.fixture
def workers(private_redis):
    """``workers(**extra_env)`` starts a real worker on the private broker; all are stopped at teardown."""
    started: list[RealWorker] = []

    def start(**extra_env: str) -> RealWorker:
        worker = RealWorker(broker_url=private_redis.url, extra_env=extra_env)
        started.append(worker)
        return worker.start()

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


def pytest_terminal_summary(terminalreporter) -> None:
    from tests.faults.hostile import TRIED

    if not TRIED:
        return
    terminalreporter.section("hostile inputs tried")
    for name in sorted({name for name, _ in TRIED}):
        outcomes = {outcome: count for (entry, outcome), count in sorted(TRIED.items()) if entry == name}
        terminalreporter.write_line(f"{name}: {sum(outcomes.values())} ({outcomes})")
    terminalreporter.write_line(f"total: {sum(TRIED.values())}")
