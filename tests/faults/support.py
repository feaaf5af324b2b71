"""Private servers for the fault tests: a Redis and a PostgreSQL cluster each test may stop and restart.

Never the machine's shared servers (other processes use them): every server here runs on a free port
of its own, in a temporary directory, and is torn down when the test ends, whatever happens. A test
skips with the reason when the binaries are missing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PG_BIN_CANDIDATES = [Path(f"/usr/lib/postgresql/{version}/bin") for version in (17, 16, 15, 14, 13)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, *, up: bool, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not go {'up' if up else 'down'} within {timeout}s")


# --- Redis ----------------------------------------------------------------------------------------


def redis_skip_reason() -> str | None:
    return None if shutil.which("redis-server") else "needs redis-server (a private broker to stop)"


class PrivateRedis:
    """``redis-server`` on a free port, no persistence: stopping it loses whatever it held."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, up=True)
        return self

    def stop(self) -> None:
        """``kill -9``: the broker dies with what it held."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            wait_for_port(self.port, up=False)
        self.process = None


# --- PostgreSQL -----------------------------------------------------------------------------------


def pg_bin() -> Path | None:
    for candidate in PG_BIN_CANDIDATES:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def postgres_skip_reason() -> str | None:
    if pg_bin() is None:
        return "needs the PostgreSQL server binaries (initdb, pg_ctl) for a private cluster"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root needs a 'postgres' system user to own the private cluster"
    return None


class PrivateCluster:
    """A throw-away PostgreSQL cluster (initdb into a temporary directory, trust authentication) on a
    free port. As root it runs as the ``postgres`` user, as PostgreSQL requires."""

    def __init__(self) -> None:
        self.bin = pg_bin()
        assert self.bin is not None
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="mastery-faults-pg-"))
        self.data = self.directory / "data"
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *command], check=check, capture_output=True, text=True, cwd=self.directory
        )

    def url(self, database: str = "mastery") -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"

    def create(self) -> PrivateCluster:
        if os.geteuid() == 0:
            shutil.chown(self.directory, user="postgres", group="postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "--auth=trust", "-U", self.user, "-E", "UTF8"
        )
        self.start()
        self._run(
            str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "mastery"
        )
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.directory / "log"),
            "-w", "start",
        )  # fmt: skip
        wait_for_port(self.port, up=True)

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: the server drops every connection at once, as a crash or fail-over does."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)
        wait_for_port(self.port, up=False)

    def destroy(self) -> None:
        with suppress(Exception):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def manage(*arguments: str, env: dict[str, str], timeout: float = 300.0) -> str:
    """Run ``manage.py`` in a subprocess with ``env`` (e.g. a private DATABASE_URL); returns stdout."""
    completed = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(arguments)} failed:\n{completed.stderr[-4000:]}")
    return completed.stdout


# --- workers --------------------------------------------------------------------------------------


def worker_log(worker) -> str:
    """The whole log of a ``tests.worker_support.RealWorker`` (``output()`` keeps only its tail)."""
    worker.log.flush()
    return Path(worker.log.name).read_text(errors="replace")


def task_succeeded(worker, task_id: str) -> int:
    """How many times the worker logged the task message ``task_id`` as succeeded."""
    return sum(1 for line in worker_log(worker).splitlines() if f"[{task_id}] succeeded" in line)


def wait_until(condition, *, timeout: float = 180.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``condition()`` until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
