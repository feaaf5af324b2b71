"""Indexes the district-scale query plans use (``make bench``; see bench/district_scenarios.py).

``mastery_student_state``: the flag refresh reads a student's mastery rows and the ready or in-progress
rows of the student's classmates (``student_id IN (...) AND state IN (...)``). Without it PostgreSQL
ANDs the student index with a scan of the whole (competency, state) index, which grows with the
district (4.5 million rows at 30,000 students x 150 competencies); with it, one index range per
classmate.

Plain SQL (no model state): the model's Meta belongs to the progress models' owner; the index is
invisible to the ORM and needs no change there.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("progress", "0002_resource_view")]

    operations = [
        migrations.RunSQL(
            sql=(
                "CREATE INDEX IF NOT EXISTS mastery_student_state "
                "ON progress_competencymastery (student_id, state)"
            ),
            reverse_sql="DROP INDEX IF EXISTS mastery_student_state",
        ),
    ]
