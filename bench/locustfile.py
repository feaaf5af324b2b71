"""Locust users for the load scenario (``bench.load``): students autosaving and submitting mastery
checks, teachers opening their section's dashboard, through the JSON API with token authentication.

Configuration comes from the JSON file named by ``BENCH_LOAD_CONFIG`` (written by ``bench.load``):
``{"assessment": id, "students": [token, ...], "teachers": [[token, section_id], ...]}``. Each
student user records what the server acknowledged (the last answer saved per attempt and item, and
the attempts submitted); at the end the records go to the JSON file named by ``BENCH_LOAD_SENT``, so
that ``bench.load`` can check every one of them against the database.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
from pathlib import Path

from locust import HttpUser, between, events, task

API = "/api/v1"
#: Each attempt: this many autosaves (some items answered twice, as students change their minds),
#: then the submit.
AUTOSAVES_PER_ATTEMPT = int(os.environ.get("BENCH_LOAD_AUTOSAVES", "6"))

_lock = threading.Lock()
_config: dict = {}
_students: itertools.cycle | None = None
_teachers: itertools.cycle | None = None
#: Acknowledged by the server: attempt id -> {item id: answer}, and the attempts submitted.
SAVED: dict[int, dict[int, object]] = {}
SUBMITTED: set[int] = set()
#: Sent but not acknowledged (an error or a lost connection): attempt id -> {item id: [answers]}. The
#: server may still have committed them, so the check tells "overwritten by an unacknowledged save"
#: apart from "lost".
UNACKNOWLEDGED: dict[int, dict[int, list]] = {}
COUNTS = {"autosaves": 0, "submits": 0, "starts": 0}


def load_config(path: str | None = None) -> dict:
    """Read the configuration (once) and set up the round-robin of logins."""
    global _students, _teachers
    with _lock:
        if not _config:
            _config.update(json.loads(Path(path or os.environ["BENCH_LOAD_CONFIG"]).read_text()))
            _students = itertools.cycle(_config["students"])
            _teachers = itertools.cycle(_config["teachers"])
    return _config


def answer_for(item: dict, rng: random.Random) -> object:
    """A plausible answer: a choice id for choice items, a number as text for numeric items."""
    if item.get("choices"):
        ids = [choice["id"] for choice in item["choices"]]
        if item.get("type") == "multiple_choice":
            return sorted(rng.sample(ids, k=rng.randint(1, len(ids))))
        return rng.choice(ids)
    return str(rng.randint(1, 9))


def record_saved(attempt_id: int, item_id: int, answer: object) -> None:
    with _lock:
        SAVED.setdefault(attempt_id, {})[item_id] = answer
        COUNTS["autosaves"] += 1


def record_unacknowledged(attempt_id: int, item_id: int, answer: object) -> None:
    with _lock:
        UNACKNOWLEDGED.setdefault(attempt_id, {}).setdefault(item_id, []).append(answer)


#: Sent and not answered yet: attempt id -> {item id: answer}. A save still in flight when locust quits
#: may have been committed (its answer never reached us): it counts as unacknowledged.
IN_FLIGHT: dict[int, dict[int, object]] = {}


def record_in_flight(attempt_id: int, item_id: int, answer: object) -> None:
    with _lock:
        IN_FLIGHT.setdefault(attempt_id, {})[item_id] = answer


def record_answered(attempt_id: int, item_id: int) -> None:
    with _lock:
        IN_FLIGHT.get(attempt_id, {}).pop(item_id, None)


def record_submitted(attempt_id: int) -> None:
    with _lock:
        SUBMITTED.add(attempt_id)
        COUNTS["submits"] += 1


def sent_records() -> dict:
    """What the server acknowledged, JSON-ready (item ids as keys become strings)."""
    with _lock:
        return {
            "saved": {
                str(attempt): {str(item): answer for item, answer in items.items()}
                for attempt, items in SAVED.items()
            },
            "submitted": sorted(SUBMITTED),
            "unacknowledged": _unacknowledged_with_in_flight(),
            "counts": dict(COUNTS),
        }


def _unacknowledged_with_in_flight() -> dict:
    """UNACKNOWLEDGED plus what was still in flight (called with ``_lock`` held)."""
    merged = {
        attempt: {item: list(answers) for item, answers in items.items()}
        for attempt, items in UNACKNOWLEDGED.items()
    }
    for attempt, items in IN_FLIGHT.items():
        for item, answer in items.items():
            merged.setdefault(attempt, {}).setdefault(item, []).append(answer)
    return {
        str(attempt): {str(item): answers for item, answers in items.items()}
        for attempt, items in merged.items()
    }


@events.quitting.add_listener
def _write_sent(**_: object) -> None:
    path = os.environ.get("BENCH_LOAD_SENT")
    if path:
        Path(path).write_text(json.dumps(sent_records()))


class StudentUser(HttpUser):
    """A student: start a mastery check, autosave answers as they go, submit, start again."""

    weight = 300
    wait_time = between(*(float(bound) for bound in os.environ.get("BENCH_LOAD_WAIT", "2.0,6.0").split(",")))

    def on_start(self) -> None:
        config = load_config()
        with _lock:
            token = next(_students)
        self.client.headers["Authorization"] = f"Token {token}"
        self.assessment_id = config["assessment"]
        self.rng = random.Random(token)
        self.attempt_id: int | None = None
        self.items: list[dict] = []
        self.saves = 0

    def begin_attempt(self) -> None:
        with self.client.post(
            f"{API}/assessments/{self.assessment_id}/attempts/", json={}, name="start", catch_response=True
        ) as response:
            if response.status_code != 201:
                response.failure(f"start: {response.status_code} {response.text[:200]}")
                return
            body = response.json()
        self.attempt_id, self.items, self.saves = body["id"], body["items"], 0
        with _lock:
            COUNTS["starts"] += 1

    @task
    def work(self) -> None:
        if self.attempt_id is None:
            self.begin_attempt()
            return
        if self.saves < AUTOSAVES_PER_ATTEMPT and self.items:
            item = (
                self.items[self.saves % len(self.items)]
                if self.saves < len(self.items)
                else self.rng.choice(self.items)
            )
            answer = answer_for(item, self.rng)
            record_in_flight(self.attempt_id, item["id"], answer)
            with self.client.put(
                f"{API}/attempts/{self.attempt_id}/responses/{item['id']}/",
                json={"answer": answer},
                name="autosave",
                catch_response=True,
            ) as response:
                record_answered(self.attempt_id, item["id"])
                if response.status_code != 200:
                    response.failure(f"autosave: {response.status_code} {response.text[:200]}")
                    record_unacknowledged(self.attempt_id, item["id"], answer)
                else:
                    record_saved(self.attempt_id, item["id"], answer)
            self.saves += 1
            return
        with self.client.post(
            f"{API}/attempts/{self.attempt_id}/submit/", json={}, name="submit", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"submit: {response.status_code} {response.text[:200]}")
            else:
                record_submitted(self.attempt_id)
        self.attempt_id = None


class TeacherUser(HttpUser):
    """A teacher opening their section's dashboard: the heatmap and the open flags."""

    fixed_count = int(os.environ.get("BENCH_LOAD_TEACHERS", "8"))
    wait_time = between(2.0, 5.0)

    def on_start(self) -> None:
        load_config()
        with _lock:
            token, self.section_id = next(_teachers)
        self.client.headers["Authorization"] = f"Token {token}"

    @task(3)
    def heatmap(self) -> None:
        self.client.get(f"{API}/sections/{self.section_id}/heatmap/", name="dashboard: heatmap")

    @task(1)
    def flags(self) -> None:
        self.client.get(f"{API}/flags/?section={self.section_id}&status=open", name="dashboard: flags")
