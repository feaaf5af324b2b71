"""Load: 300 simulated students autosaving and submitting, teachers opening dashboards, through
gunicorn on loopback, while a rescoring job runs on a Celery worker (``make bench``).

    DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6379/5 .venv/bin/python -m bench.load
    .venv/bin/python -m bench.load --students 50 --duration 20

PostgreSQL and Redis. It creates a dedicated database next to the given one (``<name>_load``),
migrates it and fills it: a district, a mastery scale and framework, a mastery check drawing four
items (three single-choice, one numeric), sections of about 40 students with a teacher each, an API
token per person; and, beside them, a rescoring world (one item answered ``--rescore`` times) whose
key changes when the load starts. Then:

1. gunicorn (``mastery.wsgi``, gthread workers) on a free loopback port, and two Celery workers on
   ``REDIS_URL``: one for ``bulk`` (the rescoring job), one for ``live`` and ``nightly`` (mastery
   recompute after each submit);
2. locust, headless (bench/locustfile.py): the students start an attempt, autosave six answers,
   submit and start again, one request every 2 to 6 seconds each (a student answering); the
   teachers open their section's heatmap and flag queue; for ``--duration`` seconds;
3. afterwards every answer the server acknowledged (the last saved per attempt and item) is looked up
   in the database, and every acknowledged submit must be a submitted or completed attempt.

Rows: autosave p95 (< 100 ms), submit p95 (< 300 ms), errors (0), answers verified (all), with the
rescoring job's progress during the load in the notes. Everything started is stopped at the end and
the database dropped.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = Path(__file__).resolve().parent / "results-load.json"
STUDENTS = 300
TEACHERS = 8
DURATION = 60
RESCORE_RESPONSES = 100_000
AUTOSAVE_P95_MS = 100.0
SUBMIT_P95_MS = 300.0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=STUDENTS)
    parser.add_argument("--teachers", type=int, default=TEACHERS)
    parser.add_argument("--duration", type=int, default=DURATION, help="seconds of load")
    parser.add_argument("--rescore", type=int, default=RESCORE_RESPONSES, help="responses the job rescores")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--keep-db", action="store_true")
    return parser.parse_args(argv)


# --- data -------------------------------------------------------------------------------------------


def setup_world(*, students: int, teachers: int) -> dict:
    """The district under load; returns the locust configuration (tokens, assessment, sections)."""
    from rest_framework.authtoken.models import Token

    from assessments.models import Assessment, BlueprintRule, Item, ItemAlignment, ItemChoice
    from competencies.models import Competency, Framework, MasteryLevel, MasteryScale
    from roster.models import District, Enrollment, School, Section, User

    district = District.objects.create(name="Load district")
    scale = MasteryScale.objects.create(name="Load scale", district=district)
    for points, is_mastery in ((4, False), (3, True), (2, False), (1, False)):
        MasteryLevel.objects.create(scale=scale, name=f"L{points}", points=points, is_mastery=is_mastery)
    framework = Framework.objects.create(
        title="Load framework", district=district, mastery_scale=scale, status=Framework.Status.PUBLISHED
    )
    competency = Competency.objects.create(framework=framework, code="L.1", statement="Load", position=1)
    items = []
    for index in range(3):
        item = Item.objects.create(
            district=district, type=Item.Type.SINGLE_CHOICE, stem=f"Pick a ({index})", status="active"
        )
        for position, text in enumerate("abcd", start=1):
            ItemChoice.objects.create(item=item, text=text, is_correct=text == "a", position=position)
        items.append(item)
    items.append(
        Item.objects.create(
            district=district, type=Item.Type.NUMERIC, stem="5?", status="active", answer_value=5
        )
    )
    for item in items:
        ItemAlignment.objects.create(item=item, competency=competency, points=1)
    assessment = Assessment.objects.create(
        district=district,
        title="Load check",
        competency=competency,
        status=Assessment.Status.ACTIVE,
        kind=Assessment.Kind.MASTERY_CHECK,
    )
    rule = BlueprintRule.objects.create(assessment=assessment, competency=competency, draw_count=len(items))
    rule.items.set(items)
    school = School.objects.create(district=district, name="Load school")
    people = User.objects.bulk_create(
        [
            User(username=f"load-student-{index}", role=User.Role.STUDENT, district=district, password="!")
            for index in range(students)
        ]
        + [
            User(username=f"load-teacher-{index}", role=User.Role.TEACHER, district=district, password="!")
            for index in range(teachers)
        ]
    )
    pupils, staff = people[:students], people[students:]
    sections = [
        Section.objects.create(school=school, title=f"Load section {index}") for index in range(teachers)
    ]
    Enrollment.objects.bulk_create(
        [
            Enrollment(section=sections[index % teachers], user=pupil, role=Enrollment.Role.STUDENT)
            for index, pupil in enumerate(pupils)
        ]
        + [
            Enrollment(section=section, user=teacher, role=Enrollment.Role.TEACHER, is_primary=True)
            for section, teacher in zip(sections, staff, strict=True)
        ]
    )
    tokens = Token.objects.bulk_create([Token(user=person, key=Token.generate_key()) for person in people])
    by_user = {token.user_id: token.key for token in tokens}
    return {
        "assessment": assessment.pk,
        "students": [by_user[pupil.pk] for pupil in pupils],
        "teachers": [
            [by_user[teacher.pk], section.pk] for teacher, section in zip(staff, sections, strict=True)
        ],
        "items": [item.pk for item in items],
    }


def verify_answers(sent: dict) -> dict:
    """Every acknowledged answer (the last saved per attempt and item) against the Response rows,
    and every acknowledged submit against the attempt's status. Two queries per 5,000 attempts."""
    from assessments.models import Attempt, Response

    saved = {
        int(attempt): {int(item): answer for item, answer in items.items()}
        for attempt, items in sent["saved"].items()
    }
    attempt_ids = sorted(saved)
    stored: dict[tuple[int, int], object] = {}
    for start in range(0, len(attempt_ids), 5_000):
        chunk = attempt_ids[start : start + 5_000]
        for attempt_id, item_id, answer in Response.objects.filter(attempt_id__in=chunk).values_list(
            "attempt_id", "item_id", "answer"
        ):
            stored[(attempt_id, item_id)] = answer
    unacknowledged = {
        (int(attempt), int(item)): answers
        for attempt, items in sent.get("unacknowledged", {}).items()
        for item, answers in items.items()
    }
    answers = sum(len(items) for items in saved.values())
    missing, overwritten = [], []
    for attempt_id, items in saved.items():
        for item_id, answer in items.items():
            key = (attempt_id, item_id)
            if key in stored and stored[key] == answer:
                continue
            if key in stored and stored[key] in unacknowledged.get(key, []):
                overwritten.append(key)  # a save the client saw fail was committed after all
            else:
                missing.append(key)
    submitted = set(sent["submitted"])
    done = set(
        Attempt.objects.filter(
            pk__in=list(submitted), status__in=[Attempt.Status.SUBMITTED, Attempt.Status.COMPLETED]
        ).values_list("pk", flat=True)
    )
    return {
        "answers_sent": answers,
        "answers_found": answers - len(missing) - len(overwritten),
        "missing": missing[:20],
        "overwritten": len(overwritten),
        "submits_sent": len(submitted),
        "submits_found": len(done & submitted),
    }


# --- processes --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _process(command: list[str], env: dict, log: Path):
    """A subprocess in its own session, stopped (TERM, then KILL) at the end of the block."""
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"gunicorn did not answer {url} within {timeout}s:\n{log.read_text()[-3000:]}")


def _stats(path: Path) -> dict[str, dict]:
    """Locust's ``<prefix>_stats.csv`` by request name."""
    rows = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            rows[row["Name"]] = row
    return rows


def _number(row: dict | None, column: str) -> float:
    if not row:
        return 0.0
    value = row.get(column) or "0"
    return 0.0 if value == "N/A" else float(value)


def run_load(*, conn_url: str, database: str, broker_url: str, config: dict, students: int, teachers: int,
             duration: int, rescore_job_id: int | None, workdir: Path) -> dict:  # fmt: skip
    """gunicorn, two workers, locust; returns the locust stats, what was sent and the job's progress."""
    from assessments import tasks
    from assessments.models import RescoreJob
    from bench.rescore import _database_url

    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(database),
        "CELERY_BROKER_URL": broker_url,
        "REDIS_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "MASTERY_ENV": "development",
        "DJANGO_DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    sent_path = workdir / "sent.json"
    host = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        web = stack.enter_context(
            _process(
                [str(BIN / "gunicorn"), "mastery.wsgi:application", "--bind", f"127.0.0.1:{port}",
                 "--workers", "3", "--worker-class", "gthread", "--threads", "8", "--timeout", "120",
                 # Students pause 2-6 s between requests: with gunicorn's 2 s default the server closes
                 # connections the client is about to reuse (resets counted as errors).
                 "--keep-alive", "10", "--log-level", "warning"],
                env,
                workdir / "gunicorn.log",
            )
        )  # fmt: skip
        for queues in ("bulk", "live,nightly"):
            stack.enter_context(
                _process(
                    [str(BIN / "celery"), "-A", "mastery", "worker", "-Q", queues, "--pool", "solo", "-c", "1",
                     "-n", f"load-{queues.replace(',', '-')}-{port}@%h", "--without-gossip", "--without-mingle",
                     "--loglevel", "WARNING"],
                    env,
                    workdir / f"worker-{queues.replace(',', '-')}.log",
                )
            )  # fmt: skip
        _wait_for_http(f"{host}/healthz/", web, workdir / "gunicorn.log")
        if rescore_job_id is not None:
            from bench.rescore import _sending_to

            with _sending_to(broker_url):
                tasks.rescore_job_run.delay(rescore_job_id)
        started = time.monotonic()
        locust = subprocess.run(
            [str(BIN / "locust"), "-f", str(ROOT / "bench" / "locustfile.py"), "--headless",
             "--users", str(students + teachers), "--spawn-rate", str(max(10, (students + teachers) // 10)),
             "--run-time", f"{duration}s", "--host", host, "--csv", str(workdir / "load"), "--only-summary",
             "--stop-timeout", "10", "--loglevel", "WARNING"],
            cwd=ROOT,
            env={**env, "BENCH_LOAD_CONFIG": str(config_path), "BENCH_LOAD_SENT": str(sent_path),
                 "BENCH_LOAD_TEACHERS": str(teachers)},
            capture_output=True,
            text=True,
            timeout=duration + 120,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        job = None
        if rescore_job_id is not None:
            job = RescoreJob.objects.values("status", "done", "total").get(pk=rescore_job_id)
    (workdir / "locust.log").write_text(locust.stdout + locust.stderr)
    if os.environ.get("BENCH_LOAD_DEBUG"):
        print(locust.stdout[-3000:], locust.stderr[-5000:], file=sys.stderr)
    if not sent_path.exists():
        raise RuntimeError(f"locust wrote no records (exit {locust.returncode}):\n{locust.stderr[-3000:]}")
    return {
        "stats": _stats(workdir / "load_stats.csv"),
        "failures": (workdir / "load_failures.csv").read_text()
        if (workdir / "load_failures.csv").exists()
        else "",
        "sent": json.loads(sent_path.read_text()),
        "elapsed": elapsed,
        "job": job,
    }


# --- the scenario -----------------------------------------------------------------------------------


def _row(scenario: str, size: int, seconds: float | None, **fields) -> dict:
    row = {
        "scenario": scenario,
        "size": size,
        "seconds": None if seconds is None else round(seconds, 4),
        "rows_per_second": None,
        "floor_seconds": None,
        "ratio": None,
        "target": "",
        "met": None,
        "notes": "",
    }
    row.update(fields)
    return row


def _failures(text: str, limit: int = 300) -> str:
    """Locust's failures CSV on one line (the table's notes are one line a row): the header dropped,
    rows joined by '; '."""
    lines = [line.strip() for line in text.splitlines()[1:] if line.strip()]
    return "; ".join(lines)[:limit]


def scenario(students: int = STUDENTS, conn_url: str | None = None, *, teachers: int = TEACHERS,
             duration: int = DURATION, rescore_responses: int = RESCORE_RESPONSES, keep_db: bool = False) -> list[dict]:  # fmt: skip
    """The load scenario at ``students`` simulated students; rows as ``bench.rescore.scenario``'s."""
    from bench.rescore import _broker_url, _django_setup, dedicated_database, key_change, populate, vacuum

    _django_setup(conn_url)
    from django.db import connection

    if connection.vendor != "postgresql":
        raise RuntimeError("The load bench needs PostgreSQL: give a postgres:// URL.")
    broker_url = _broker_url()
    if not broker_url:
        raise RuntimeError("The load bench needs REDIS_URL (the Celery workers' broker).")
    with (
        dedicated_database(keep_db, suffix="load") as database,
        tempfile.TemporaryDirectory(prefix="bench-load-") as tmp,
    ):
        config = setup_world(students=students, teachers=teachers)
        job_id = None
        if rescore_responses:
            world = populate(rescore_responses)
            vacuum()
            job_id = key_change(world).pk
        run = run_load(
            conn_url=conn_url or "",
            database=database,
            broker_url=broker_url,
            config=config,
            students=students,
            teachers=teachers,
            duration=duration,
            rescore_job_id=job_id,
            workdir=Path(tmp),
        )
        verified = verify_answers(run["sent"])
    stats = run["stats"]
    autosave, submit, total = stats.get("autosave"), stats.get("submit"), stats.get("Aggregated")
    errors = int(_number(total, "Failure Count"))
    job = run["job"]
    job_note = (
        f"rescoring job {job['status']}, {job['done']:,} of {job['total']:,} responses done during the load"
        if job
        else "no rescoring job"
    )
    common = f"{students} students, {teachers} teachers, {run['elapsed']:.0f}s through gunicorn; {job_note}"
    autosave_p95 = _number(autosave, "95%")
    submit_p95 = _number(submit, "95%")
    rows = [
        _row(
            "load: autosave p95",
            int(_number(autosave, "Request Count")),
            autosave_p95 / 1000,
            rows_per_second=round(_number(autosave, "Requests/s"), 1),
            target=f"p95 under {AUTOSAVE_P95_MS:g} ms",
            met=bool(autosave) and autosave_p95 < AUTOSAVE_P95_MS,
            notes=f"median {_number(autosave, '50%'):.0f} ms, p99 {_number(autosave, '99%'):.0f} ms; {common}",
        ),
        _row(
            "load: submit p95",
            int(_number(submit, "Request Count")),
            submit_p95 / 1000,
            rows_per_second=round(_number(submit, "Requests/s"), 1),
            target=f"p95 under {SUBMIT_P95_MS:g} ms",
            met=bool(submit) and submit_p95 < SUBMIT_P95_MS,
            notes=f"median {_number(submit, '50%'):.0f} ms, p99 {_number(submit, '99%'):.0f} ms",
        ),
        _row(
            "load: errors",
            int(_number(total, "Request Count")),
            None,
            rows_per_second=round(_number(total, "Requests/s"), 1),
            target="no errors",
            met=errors == 0,
            notes=f"{errors} failed requests" + (f": {_failures(run['failures'])}" if errors else ""),
            errors=errors,
        ),
        _row(
            "load: answers kept",
            verified["answers_sent"],
            None,
            target="every acknowledged answer and submit in the database",
            met=verified["answers_found"] + verified["overwritten"] == verified["answers_sent"]
            and verified["submits_found"] == verified["submits_sent"],
            notes=(
                f"{verified['answers_found']:,} of {verified['answers_sent']:,} answers as acknowledged, "
                f"{verified['overwritten']:,} overwritten by a later-committed save whose reply was lost, "
                f"{verified['submits_found']:,} of {verified['submits_sent']:,} submits found"
                + (f"; missing {verified['missing']}" if verified["missing"] else "")
            ),
        ),
    ]
    return rows


def main(argv: list[str] | None = None) -> int:
    options = _arguments(argv)
    conn_url = os.environ.get("DATABASE_URL", "")
    if not conn_url.startswith("postgres"):
        print(
            "The load bench needs PostgreSQL and Redis: set DATABASE_URL=postgres://... and REDIS_URL.",
            file=sys.stderr,
        )
        return 2
    from bench.rescore import print_rows

    rows = scenario(
        options.students,
        conn_url,
        teachers=options.teachers,
        duration=options.duration,
        rescore_responses=options.rescore,
        keep_db=options.keep_db,
    )
    print_rows(rows)
    options.output.write_text(
        json.dumps(
            {
                "rows": rows,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            },
            indent=2,
        )
        + "\n"
    )
    print(f"Results written to {options.output}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
