"""A catalog version for the live recompute's per-process catalog cache (``progress.catalog``).

Every statement that writes a table the mastery calculation reads (competencies, frameworks,
prerequisites, scale levels, fitted BKT parameters) sets the one row of ``progress_catalog_version`` to
the next value of a sequence: statement-level triggers, so bulk writes and TRUNCATE count too, and a
sequence, so a rolled-back change never hands its number to another catalog. PostgreSQL only: on
SQLite the table is absent and the live recompute reads the catalog every time.
"""

from django.db import migrations

TABLES = (
    "competencies_competency",
    "competencies_framework",
    "competencies_prerequisite",
    "competencies_masterylevel",
    "progress_bktparameters",
)

FORWARD = [
    "CREATE SEQUENCE progress_catalog_version_seq",
    "CREATE TABLE progress_catalog_version (id integer PRIMARY KEY CHECK (id = 1), version bigint NOT NULL)",
    "INSERT INTO progress_catalog_version VALUES (1, nextval('progress_catalog_version_seq'))",
    """
    CREATE FUNCTION progress_catalog_bump() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE progress_catalog_version SET version = nextval('progress_catalog_version_seq') WHERE id = 1;
        RETURN NULL;
    END $$
    """,
    *(
        f"CREATE TRIGGER {table}_catalog_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION progress_catalog_bump()"
        for table in TABLES
    ),
]
BACKWARD = [
    *(f"DROP TRIGGER IF EXISTS {table}_catalog_bump ON {table}" for table in TABLES),
    "DROP FUNCTION IF EXISTS progress_catalog_bump()",
    "DROP TABLE IF EXISTS progress_catalog_version",
    "DROP SEQUENCE IF EXISTS progress_catalog_version_seq",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("progress", "0003_district_indexes"),
        ("competencies", "0001_initial"),
    ]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
