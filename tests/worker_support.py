"""A real Celery worker for tests: a subprocess on Redis, pointed at the *test* database.

Usage (a test marked ``worker`` and ``django_db(transaction=True)``, so that the worker sees what the
test commits)::

    def test_something(real_worker):          # the fixture in tests/assessments/test_rescore_worker.py
        ...                                   # .delay() now goes to Redis and the worker runs it

or by hand::

    broker_url = worker_broker_url()
    with broker_for_tests(broker_url):
        worker = RealWorker(broker_url=broker_url).start()
        try:
            ...
        finally:
            worker.stop()

The broker is a dedicated Redis database (``WORKER_TEST_REDIS_DB``, default 15) of ``REDIS_URL``,
flushed before and after, so that no other process's worker takes the test's tasks and no stale
message survives the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from django.db import connection

from mastery.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent
CELERY = Path(sys.executable).with_name("celery")
QUEUES = "bulk,live,nightly"


def worker_tests_skip_reason() -> str | None:
    """Why worker tests cannot run here, or ``None``."""
    if not os.environ.get("REDIS_URL"):
        return "needs REDIS_URL (a real Celery worker on Redis)"
    if connection.vendor != "postgresql":
        return "needs PostgreSQL: the worker is a second process on the test database"
    return None


def worker_broker_url() -> str:
    """``REDIS_URL`` with the dedicated test database number."""
    parts = urlsplit(os.environ["REDIS_URL"])
    database = os.environ.get("WORKER_TEST_REDIS_DB", "15")
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def redis_flush(broker_url: str) -> None:
    import redis

    client = redis.Redis.from_url(broker_url)
    try:
        client.flushdb()
    finally:
        client.close()


def _reset_producer_connections() -> None:
    """Forget pooled broker connections (this process only), so that the next ``.delay`` connects to
    the current broker URL. kombu keeps its pools in a process-wide registry: reset that too."""
    from kombu import pools

    pools.reset()
    celery_app._pool = None
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@contextmanager
def broker_for_tests(broker_url: str) -> Iterator[None]:
    """Within the block, ``.delay`` in this process really sends to ``broker_url`` (no eager tasks)."""
    previous = (celery_app.conf.task_always_eager, celery_app.conf.broker_url)
    redis_flush(broker_url)
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = broker_url
    _reset_producer_connections()
    try:
        yield
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.broker_url = previous
        _reset_producer_connections()
        redis_flush(broker_url)


def database_url_for_worker() -> str:
    """A DATABASE_URL naming the database this test process uses (the test database)."""
    settings = connection.settings_dict
    user = quote(settings.get("USER") or "", safe="")
    password = quote(settings.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings.get("HOST") or "127.0.0.1"
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{settings['NAME']}"


class RealWorker:
    """One ``celery worker --pool solo`` subprocess consuming the bulk, live and nightly queues."""

    def __init__(self, *, broker_url: str, queues: str = QUEUES, extra_env: dict[str, str] | None = None):
        self.broker_url = broker_url
        self.queues = queues
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, timeout: float = 60.0) -> RealWorker:
        env = {
            **os.environ,
            "DATABASE_URL": database_url_for_worker(),
            "DATABASE_CONN_MAX_AGE": "0",
            "CELERY_BROKER_URL": self.broker_url,
            "REDIS_URL": self.broker_url,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "MASTERY_ENV": "test",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self.process = subprocess.Popen(
            [
                str(CELERY),
                "-A",
                "mastery",
                "worker",
                "-Q",
                self.queues,
                "--pool",
                "solo",
                "-c",
                "1",
                "-n",
                self.name,
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_until_ready(timeout)
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        hostname = self.name.replace("%h", _hostname())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"The worker exited with {self.process.returncode}:\n{self.output()}")
            replies = celery_app.control.ping(destination=[hostname], timeout=0.5) or []
            if any(hostname in reply for reply in replies):
                return
        self.stop()
        raise RuntimeError(f"The worker did not answer a ping within {timeout}s:\n{self.output()}")

    def kill(self) -> None:
        """``kill -9``: no clean-up, no acknowledgement, as when a machine dies."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, *, timeout: float = 10.0) -> None:
        """Warm shutdown, then kill whatever is left of the worker's process group."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-5000:]


def _hostname() -> str:
    import socket

    return socket.gethostname()
