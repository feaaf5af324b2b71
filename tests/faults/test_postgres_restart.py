"""PostgreSQL restarts under load: requests answer 503 with Retry-After, then succeed; no partial writes.

The app runs as it does in production, a gunicorn subprocess (one process, four threads, persistent
connections), on a PRIVATE PostgreSQL cluster that the test creates, stops (``-m immediate``: every
connection dropped mid-statement, as in a crash or a fail-over) and starts again. Four client threads
play students: save two answers, submit, open their home page, retrying every 503 as a browser or
the app's JS would. Afterwards every attempt is checked for all-or-nothing: completed with both answers
scored and its competency result, or still open with nothing scored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.faults.support import ROOT, PrivateCluster, free_port, manage, postgres_skip_reason, wait_for_port

pytestmark = [pytest.mark.fault, pytest.mark.postgres]

STUDENTS = 40
THREADS = 4
GUNICORN = Path(sys.executable).with_name("gunicorn")
CHECK_SCRIPT = """
import json
from assessments.models import Attempt, AttemptCompetencyScore, Response
from progress.models import Evidence
rows = []
for attempt in Attempt.objects.filter(student__username__startswith="outage-").order_by("pk"):
    responses = list(Response.objects.filter(attempt=attempt).values_list("score", flat=True))
    rows.append({
        "attempt": attempt.pk,
        "status": attempt.status,
        "score": str(attempt.score),
        "responses": len(responses),
        "scored": sorted(str(score) for score in responses if score is not None),
        "results": AttemptCompetencyScore.objects.filter(attempt=attempt).count(),
        "evidence": Evidence.objects.filter(source="attempt", source_id=attempt.pk).count(),
    })
print(json.dumps(rows))
"""


class Load:
    """The client threads' record: every answer's status, and the Retry-After of every 503."""

    def __init__(self, base: str, students: list[dict], items: list[int]) -> None:
        self.base = base
        self.students = students
        self.items = items
        self.lock = threading.Lock()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.retry_after: Counter[str] = Counter()
        self.submitted: set[int] = set()
        self.done = 0
        self.errors: list[str] = []

    def request(self, phase: list[str], method: str, path: str, **kwargs) -> requests.Response:
        """Retry 503s (as the client is told to, faster than Retry-After) until another answer."""
        for _ in range(600):
            started_in = phase[0]
            try:
                answer = requests.request(
                    method, self.base + path, timeout=30, allow_redirects=False, **kwargs
                )
            except requests.RequestException as error:  # the server itself must stay up
                with self.lock:
                    self.errors.append(f"{method} {path}: {error}")
                raise
            ended_in = phase[0]
            when = started_in if started_in == ended_in else f"{started_in}->{ended_in}"
            with self.lock:
                self.statuses[(when, answer.status_code)] += 1
                if answer.status_code == 503:
                    self.retry_after[answer.headers.get("Retry-After", "missing")] += 1
            if answer.status_code != 503:
                return answer
            time.sleep(0.1)
        raise AssertionError(f"{method} {path} still 503 after a minute")

    def student(self, phase: list[str], student: dict) -> None:
        api = {"Authorization": f"Token {student['token']}"}
        for item_id in self.items:
            answer = self.request(
                phase, "PUT", f"/api/v1/attempts/{student['attempt']}/responses/{item_id}/",
                json={"answer": "5"}, headers=api,
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
        answer = self.request(phase, "POST", f"/api/v1/attempts/{student['attempt']}/submit/", headers=api)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "completed", answer.text
        page = self.request(phase, "GET", "/", cookies={"sessionid": student["session"]})
        assert page.status_code == 302, page.status_code  # a student's home redirects to their path
        with self.lock:
            self.submitted.add(student["attempt"])
            self.done += 1

    def run(self, phase: list[str], index: int) -> None:
        try:
            for student in self.students[index::THREADS]:
                self.student(phase, student)
        except BaseException as error:
            with self.lock:
                self.errors.append(repr(error))


@pytest.fixture
def cluster():
    reason = postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    cluster = PrivateCluster()
    try:
        yield cluster.create()
    finally:
        cluster.destroy()


def test_requests_during_a_postgres_restart_get_503_then_succeed_with_no_partial_write(cluster):
    env = {
        **os.environ,
        "MASTERY_ENV": "test",
        "DATABASE_URL": cluster.url(),
        "DATABASE_CONN_MAX_AGE": "60",
        "CELERY_BROKER_URL": "",
        "REDIS_URL": "",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "FAULT_STUDENTS": str(STUDENTS),
        "PYTHONUNBUFFERED": "1",
    }
    manage("migrate", "--noinput", "--run-syncdb", env=env)
    seeded = json.loads(
        manage("shell", "-c", (ROOT / "tests/faults/outage_seed.py").read_text(), env=env)
        .strip()
        .splitlines()[-1]
    )
    port = free_port()
    log = open(cluster.directory / "gunicorn.log", "w")  # noqa: SIM115 (closed at the end)
    server = subprocess.Popen(
        [str(GUNICORN), "mastery.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "1", "--threads",
         str(THREADS), "--timeout", "60"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_port(port, up=True, timeout=60)
        load = Load(f"http://127.0.0.1:{port}", seeded["students"], seeded["items"])
        phase = ["before"]
        threads = [threading.Thread(target=load.run, args=(phase, index)) for index in range(THREADS)]
        for thread in threads:
            thread.start()
        while load.done < STUDENTS // 4 and not load.errors:
            time.sleep(0.01)
        phase[0] = "stopping"
        cluster.stop("immediate")
        phase[0] = "outage"
        done_at_stop = load.done
        time.sleep(3)  # the load keeps coming while the database is down
        phase[0] = "starting"
        cluster.start()
        phase[0] = "after"
        for thread in threads:
            thread.join(timeout=300)
        assert load.errors == []
        assert server.poll() is None  # the app server never went down
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

    # After the restart the recompute of a submit whose commit raced the stop may be missing: the
    # reconciler catches it up (as beat does every five minutes).
    reconciled = manage("reconcile", env=env)
    rows = json.loads(manage("shell", "-c", CHECK_SCRIPT, env=env).strip().splitlines()[-1])

    statuses = dict(load.statuses)
    print(
        f"\nPostgreSQL restart under load: {sum(statuses.values())} requests {sorted(statuses.items())}; "
        f"Retry-After {dict(load.retry_after)}; {done_at_stop} students done before the stop, "
        f"{load.done - done_at_stop} after it; reconciler: {reconciled.strip()}"
    )
    assert {status for (_, status) in statuses} <= {200, 302, 503}  # never a 500
    assert statuses.get(("outage", 503), 0) >= THREADS  # each thread was refused at least once
    assert set(load.retry_after) == {"5"}  # every 503 says when to retry
    # nothing succeeded without its database
    assert [key for key in statuses if key[0] == "outage" and key[1] != 503] == []
    assert statuses.get(("after", 200), 0) > 0  # and then it works again
    # Nothing lost, nothing half-written: every attempt completed, both answers scored once, its result
    # and its evidence written exactly once.
    assert len(load.submitted) == STUDENTS
    assert rows == [
        {
            "attempt": student["attempt"],
            "status": "completed",
            "score": "2.00",
            "responses": 2,
            "scored": ["1.00", "1.00"],
            "results": 1,
            "evidence": 1,
        }
        for student in sorted(seeded["students"], key=lambda student: student["attempt"])
    ]
