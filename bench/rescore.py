"""Rescoring throughput beside its floor, measured in the same run (``make bench``).

    DATABASE_URL=postgres://... make bench               # 200,000 responses
    DATABASE_URL=postgres://... BENCH_SCALE=50000 make bench
    .venv/bin/python -m bench.rescore --scale 20000 --batch-size 2000

PostgreSQL only (it refuses SQLite). It creates a dedicated database next to DATABASE_URL's
(``<name>_bench``), migrates it, and drops it at the end, so nothing of the real database is touched.

The data: one single-choice item (2 points, choices a-d, a right) answered N times, each on its own
completed attempt whose form also holds a numeric item, by 1,000 students; generated with COPY.
Then, timed in the same run on the same rows:

(a) the floor: ONE raw ``UPDATE assessments_response r SET score = v.score, scored_key_version = 2
    FROM (VALUES ...) v WHERE r.answer = v.answer AND r.item_id = ...`` over all N rows, the least any
    rescoring could do (no batches, no score-change rows, no attempt totals); the rows are then put
    back as they were and the table vacuumed, untimed;
(b) ours: the key changes (b is right) and ``assessments.rescoring.rescore_job_run`` rescores the
    same rows in batches (default 5,000), records the old and new score of the N/2 that change, and
    recomputes the N attempts' totals and competency scores. Mastery recompute (the progress app's
    receiver of ``attempts_rescored``) is separate work on its own queue and is not timed: the
    announcement is sent to a no-op receiver.

It prints a table and writes bench/results.json (figure, size, seconds, rows_per_second,
floor_seconds, ratio, and details).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"
STUDENTS = 1_000
DEFAULT_SCALE = 200_000


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.rescore", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scale",
        type=int,
        default=int(os.environ.get("BENCH_SCALE", DEFAULT_SCALE)),
        help=f"responses to rescore (BENCH_SCALE; default {DEFAULT_SCALE:,})",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="rescoring batch (default 5,000)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--keep-db", action="store_true", help="leave the bench database for a look")
    return parser.parse_args(argv)


@contextmanager
def dedicated_database(keep: bool):
    """A fresh, migrated ``<name>_bench`` database for the duration of the block."""
    from django.conf import settings
    from django.db import connection

    name = connection.settings_dict["NAME"]
    bench_name = f"{name}_bench"
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = bench_name
    connection.settings_dict.setdefault("TEST", {})["NAME"] = bench_name
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    try:
        yield bench_name
    finally:
        if not keep:
            connection.creation.destroy_test_db(name, verbosity=0, keepdb=False)


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if value is None else str(value) for value in row))
        buffer.write("\n")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def populate(scale: int) -> dict:
    """The item, its choices, students, attempts, forms and responses (COPY). Returns ids."""
    from django.db import connection
    from django.utils import timezone

    from assessments.models import Assessment, Item, ItemAlignment, ItemChoice
    from competencies.models import Competency, Framework, MasteryLevel, MasteryScale
    from roster.models import District, User

    district = District.objects.create(name="Bench district")
    scale_row = MasteryScale.objects.create(name="Bench scale", district=district)
    for points, is_mastery in ((4, False), (3, True), (2, False), (1, False)):
        MasteryLevel.objects.create(scale=scale_row, name=f"L{points}", points=points, is_mastery=is_mastery)
    framework = Framework.objects.create(title="Bench framework", district=district, mastery_scale=scale_row)
    competency = Competency.objects.create(framework=framework, code="B.1", statement="Bench", position=1)
    item = Item.objects.create(
        district=district, type=Item.Type.SINGLE_CHOICE, stem="Pick a", status="active", max_points=2
    )
    choices = [
        ItemChoice.objects.create(item=item, text=text, is_correct=text == "a", position=position)
        for position, text in enumerate("abcd", start=1)
    ]
    other = Item.objects.create(
        district=district, type=Item.Type.NUMERIC, stem="5?", status="active", answer_value=5
    )
    ItemAlignment.objects.create(item=item, competency=competency, points=2)
    ItemAlignment.objects.create(item=other, competency=competency, points=1)
    assessment = Assessment.objects.create(district=district, title="Bench check", competency=competency)
    students = User.objects.bulk_create(
        User(username=f"bench-{index}", role=User.Role.STUDENT, district=district, password="!")
        for index in range(STUDENTS)
    )
    now = timezone.now().isoformat()
    answers = [choice.pk for choice in choices] + [None]
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM assessments_attempt")
        first_attempt = cursor.fetchone()[0] + 1
        attempt_ids = range(first_attempt, first_attempt + scale)

        def attempts():
            for index, attempt_id in enumerate(attempt_ids):
                target = 2 if answers[index % 5] == choices[0].pk else 0
                extra = 1 if index % 3 else 0
                total = target + extra
                yield (
                    attempt_id, assessment.pk, students[index % STUDENTS].pk, index // STUDENTS + 1, index,
                    "completed", now, now, now, total, 3, "t" if total == 3 else "f",
                )  # fmt: skip

        _copy(
            cursor,
            "assessments_attempt",
            ["id", "assessment_id", "student_id", "number", "seed", "status", "started_at", "submitted_at",
             "completed_at", "score", "max_score", "is_passed"],
            attempts(),
        )  # fmt: skip
        _copy(
            cursor,
            "assessments_attemptitem",
            ["attempt_id", "item_id", "position", "key_version_seen"],
            (
                (attempt_id, form_item, position, 1)
                for attempt_id in attempt_ids
                for position, form_item in ((1, item.pk), (2, other.pk))
            ),
        )

        def responses():
            for index, attempt_id in enumerate(attempt_ids):
                answer = answers[index % 5]
                yield (
                    attempt_id, item.pk, "\\N" if answer is None else json.dumps(answer), now,
                    "2.00" if answer == choices[0].pk else "0.00", 1, "f", "",
                )  # fmt: skip
                yield (
                    attempt_id,
                    other.pk,
                    "5" if index % 3 else "4",
                    now,
                    "1.00" if index % 3 else "0.00",
                    1,
                    "f",
                    "",
                )

        _copy(
            cursor,
            "assessments_response",
            ["attempt_id", "item_id", "answer", "saved_at", "score", "scored_key_version", "needs_grading",
             "feedback"],
            responses(),
        )  # fmt: skip

        def competency_scores():
            for index, attempt_id in enumerate(attempt_ids):
                earned = (2 if answers[index % 5] == choices[0].pk else 0) + (1 if index % 3 else 0)
                scale_score = (Decimal(earned) / 3 * 4).quantize(Decimal("0.01"))
                level = max((p for p in (1, 2, 3, 4) if p <= scale_score), default=None)
                yield (
                    attempt_id, competency.pk, earned, 3, scale_score, level,
                    "t" if level is not None and level >= 3 else "f",
                )  # fmt: skip

        _copy(
            cursor,
            "assessments_attemptcompetencyscore",
            ["attempt_id", "competency_id", "earned", "possible", "score", "level_points", "is_met"],
            competency_scores(),
        )
        for table in ("assessments_attempt",):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
    return {"item": item.pk, "choices": [choice.pk for choice in choices], "scale": scale}


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in (
            "assessments_response",
            "assessments_attempt",
            "assessments_attemptcompetencyscore",
            "assessments_responsescorechange",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")


def floor_update(world: dict) -> float:
    """The least a rescoring could do: one UPDATE ... FROM (VALUES ...) of the same rows."""
    from django.db import connection, transaction

    a, b, c, d = world["choices"]
    values = [
        (json.dumps(a), "0.00"),
        (json.dumps(b), "2.00"),
        (json.dumps(c), "0.00"),
        (json.dumps(d), "0.00"),
        ("null", "0.00"),  # never answered
    ]
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE assessments_response r SET score = v.score, scored_key_version = 2 "
            "FROM (VALUES " + ", ".join(["(%s::jsonb, %s::numeric)"] * len(values)) + ") v (answer, score) "
            "WHERE coalesce(r.answer, 'null'::jsonb) = v.answer AND r.item_id = %s",
            [value for row in values for value in row] + [world["item"]],
        )
        updated = cursor.rowcount
    seconds = time.perf_counter() - started
    with transaction.atomic(), connection.cursor() as cursor:  # put the rows back, untimed
        cursor.execute(
            "UPDATE assessments_response SET scored_key_version = 1, "
            "score = CASE WHEN answer = %s::jsonb THEN 2.00 ELSE 0.00 END WHERE item_id = %s",
            [json.dumps(a), world["item"]],
        )
    world["floor_rows"] = updated
    return seconds


@contextmanager
def announcements_not_followed():
    """Send the rescoring announcements to a no-op receiver: mastery recompute is not timed here."""
    from assessments import signals

    saved = (signals.attempts_rescored.receivers, signals.attempt_scored.receivers)
    signals.attempts_rescored.receivers = []
    signals.attempt_scored.receivers = []
    signals.attempts_rescored.sender_receivers_cache.clear()
    signals.attempt_scored.sender_receivers_cache.clear()

    def no_op(**_: object) -> None:
        return None

    signals.attempts_rescored.connect(no_op, weak=False)
    try:
        yield
    finally:
        signals.attempts_rescored.receivers, signals.attempt_scored.receivers = saved
        signals.attempts_rescored.sender_receivers_cache.clear()
        signals.attempt_scored.sender_receivers_cache.clear()


def rescore(world: dict, batch_size: int | None) -> tuple[float, object]:
    from assessments import rescoring
    from assessments.models import Item, ItemChoice

    a, b, _, _ = world["choices"]
    item = Item.objects.prefetch_related("choices", "rubric_levels", "alignments").get(pk=world["item"])
    before = rescoring.item_key_snapshot(item)
    ItemChoice.objects.filter(pk=a).update(is_correct=False)
    ItemChoice.objects.filter(pk=b).update(is_correct=True)
    item = Item.objects.prefetch_related("choices", "rubric_levels", "alignments").get(pk=world["item"])
    job = rescoring.item_key_change_record(
        item=item, before=before, after=rescoring.item_key_snapshot(item), reason="bench", enqueue=False
    )
    assert job is not None
    with announcements_not_followed():
        started = time.perf_counter()
        job = rescoring.rescore_job_run(job_id=job.pk, batch_size=batch_size)
        seconds = time.perf_counter() - started
    return seconds, job


def main(argv: list[str] | None = None) -> int:
    options = _arguments(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mastery.settings")
    import django

    django.setup()
    from django.db import connection

    from assessments.models import Response

    if connection.vendor != "postgresql":
        print(
            "The rescoring bench needs PostgreSQL (the single-statement path): "
            "set DATABASE_URL=postgres://user@host:5432/name.",
            file=sys.stderr,
        )
        return 2
    scale = options.scale
    print(f"Rescoring bench: {scale:,} responses on PostgreSQL {connection.pg_version // 10000}.")
    with dedicated_database(options.keep_db) as database:
        started = time.perf_counter()
        world = populate(scale)
        vacuum()
        print(f"  data generated in {time.perf_counter() - started:.1f}s (database {database})")
        floor_seconds = floor_update(world)
        vacuum()
        seconds, job = rescore(world, options.batch_size)
        stamped = Response.objects.filter(item_id=world["item"], scored_key_version=2).count()
        assert job.status == "completed" and job.done == scale == stamped == world["floor_rows"], (
            job.status,
            job.done,
            stamped,
        )
        expected_changed = sum(1 for index in range(scale) if index % 5 in (0, 1))
        assert job.changed == expected_changed, (job.changed, expected_changed)

    rows_per_second = scale / seconds
    ratio = seconds / floor_seconds
    results = {
        "figure": "rescore",
        "size": scale,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows_per_second, 1),
        "floor_seconds": round(floor_seconds, 3),
        "floor_rows_per_second": round(scale / floor_seconds, 1),
        "ratio": round(ratio, 2),
        "changed": job.changed,
        "batch_size": options.batch_size or 5_000,
        "attempts_recomputed": scale,
        "database": f"PostgreSQL {connection.pg_version // 10000}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }
    header = f"{'':<34}{'rows':>10}{'seconds':>10}{'rows/s':>12}{'floor s':>10}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    print(
        f"{'floor: one raw UPDATE ... FROM':<34}{scale:>10,}{floor_seconds:>10.2f}{scale / floor_seconds:>12,.0f}"
    )
    print(
        f"{'rescore_job_run (batched, full)':<34}{scale:>10,}{seconds:>10.2f}{rows_per_second:>12,.0f}"
        f"{floor_seconds:>10.2f}{ratio:>7.1f}x"
    )
    print(f"  {job.changed:,} score changes recorded, {scale:,} attempts recomputed.")
    options.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"Results written to {options.output}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
