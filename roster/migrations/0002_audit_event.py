"""The append-only audit log: the AuditEvent table and, on PostgreSQL, a trigger that refuses UPDATE and
DELETE on it, so that not even raw SQL rewrites what was recorded. TRUNCATE (the test runner's flush, a
deliberate reset by the database owner) is not a row change and stays possible. (No trigger on SQLite,
the laptop database: its flush is DELETE.)"""

import django.core.serializers.json
from django.db import migrations, models

POSTGRES_CREATE = """
CREATE OR REPLACE FUNCTION roster_auditevent_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'roster_auditevent is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER roster_auditevent_append_only
    BEFORE UPDATE OR DELETE ON roster_auditevent
    FOR EACH ROW EXECUTE FUNCTION roster_auditevent_refuse_change();
"""
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS roster_auditevent_append_only ON roster_auditevent;
DROP FUNCTION IF EXISTS roster_auditevent_refuse_change();
"""


def create_trigger(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_CREATE, params=None)  # no client-side merge: % is PL/pgSQL


def drop_trigger(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("roster", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField(db_index=True)),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("mastery_override", "Mastery override"),
                            ("mastery_unlock", "Competency unlocked"),
                            ("rescore_job_created", "Rescoring job created"),
                            ("flag_acknowledge", "Flag acknowledged"),
                            ("flag_snooze", "Flag snoozed"),
                            ("flag_resolve", "Flag resolved"),
                            ("import_case", "CASE import"),
                            ("import_framework_csv", "Framework CSV import"),
                            ("import_oneroster", "OneRoster import"),
                            ("role_change", "Role change"),
                            ("student_export", "Student data exported"),
                            ("student_anonymise", "Student anonymised"),
                            ("student_delete", "Student deleted"),
                            ("responses_purge", "Old responses purged"),
                        ],
                        max_length=40,
                    ),
                ),
                (
                    "actor_id",
                    models.BigIntegerField(
                        blank=True, help_text="The user who acted (empty: the system).", null=True
                    ),
                ),
                ("actor_username", models.CharField(blank=True, max_length=150)),
                ("district_id", models.BigIntegerField(blank=True, db_index=True, null=True)),
                (
                    "target_type",
                    models.CharField(blank=True, help_text="app_label.model of the object.", max_length=100),
                ),
                ("target_id", models.CharField(blank=True, max_length=64)),
                ("target_repr", models.CharField(blank=True, max_length=255)),
                (
                    "subject_id",
                    models.BigIntegerField(
                        blank=True,
                        db_index=True,
                        help_text="The student the event is about, if any.",
                        null=True,
                    ),
                ),
                (
                    "before",
                    models.JSONField(
                        blank=True, encoder=django.core.serializers.json.DjangoJSONEncoder, null=True
                    ),
                ),
                (
                    "after",
                    models.JSONField(
                        blank=True, encoder=django.core.serializers.json.DjangoJSONEncoder, null=True
                    ),
                ),
                ("note", models.TextField(blank=True)),
            ],
            options={
                "ordering": ["-created_at", "-pk"],
                "indexes": [models.Index(fields=["action", "-created_at"], name="audit_action_created")],
            },
        ),
        migrations.RunPython(create_trigger, drop_trigger),
    ]
