"""Smoke test of the load scenario's parts (bench/load.py, bench/locustfile.py): locust's student and
teacher users against a live server for a few seconds, then the check that every acknowledged answer
is in the database, and that the check notices an answer that is not. Timing is not asserted (speed
goes in bench/ only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from assessments.models import Attempt, Response
from bench.load import setup_world, verify_answers

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    # the live server and locust are separate connections: PostgreSQL
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
]

ROOT = Path(__file__).resolve().parent.parent.parent
LOCUST = Path(sys.executable).with_name("locust")


def test_the_locust_users_save_and_submit_and_every_answer_is_verified(live_server, tmp_path):
    config = setup_world(students=2, teachers=1)
    config_path, sent_path = tmp_path / "config.json", tmp_path / "sent.json"
    config_path.write_text(json.dumps(config))
    result = subprocess.run(
        [str(LOCUST), "-f", str(ROOT / "bench" / "locustfile.py"), "--headless", "--users", "3",
         "--spawn-rate", "3", "--run-time", "20s", "--host", live_server.url, "--only-summary",
         "--stop-timeout", "5", "--loglevel", "WARNING"],
        cwd=ROOT,
        env={**os.environ, "BENCH_LOAD_CONFIG": str(config_path), "BENCH_LOAD_SENT": str(sent_path),
             "BENCH_LOAD_TEACHERS": "1", "BENCH_LOAD_AUTOSAVES": "2", "BENCH_LOAD_WAIT": "0,0.1"},
        capture_output=True,
        text=True,
        timeout=50,
    )  # fmt: skip
    assert sent_path.exists(), result.stderr[-3000:]
    sent = json.loads(sent_path.read_text())
    output = result.stdout + result.stderr
    assert "dashboard: heatmap" in output or "dashboard: flags" in output, output[-3000:]

    verified = verify_answers(sent)
    assert verified["answers_sent"] > 0 and verified["submits_sent"] > 0, (verified, output[-3000:])
    assert verified["answers_found"] == verified["answers_sent"]
    assert verified["submits_found"] == verified["submits_sent"]
    assert (verified["missing"], verified["overwritten"]) == ([], 0)
    assert Attempt.objects.filter(pk__in=sent["submitted"], status=Attempt.Status.IN_PROGRESS).count() == 0

    # The check is real: an answer changed behind the server's back is reported, by attempt and item.
    attempt_id, items = next(iter(sent["saved"].items()))
    item_id = next(iter(items))
    Response.objects.filter(attempt_id=int(attempt_id), item_id=int(item_id)).update(answer="tampered")
    again = verify_answers(sent)
    assert again["answers_found"] == verified["answers_sent"] - 1
    assert again["missing"] == [(int(attempt_id), int(item_id))]
