"""``python -m bench``: the district-scale benchmark suite (see ``bench.suite``)."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit, urlunsplit


def dedicated_database_url(url: str) -> str:
    """The suite writes (and replaces) a whole district, so it never runs in the database it is pointed
    at: it uses ``<name>_bench`` on the same server, created when missing."""
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or parts.scheme not in ("postgres", "postgresql"):
        raise SystemExit("python -m bench needs PostgreSQL: DATABASE_URL=postgres://user@host:5432/name")
    if name.endswith("_bench"):
        return url
    bench_name = f"{name}_bench"
    try:
        connection = psycopg2.connect(url)
    except psycopg2.OperationalError as error:
        if "does not exist" not in str(error):
            raise
        # The database named does not exist yet: only the server matters, ask it through ``postgres``.
        connection = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [bench_name])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(bench_name)))
    connection.close()
    return urlunsplit(parts._replace(path=f"/{bench_name}"))


def main(argv: list[str] | None = None) -> int:
    if os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = dedicated_database_url(os.environ["DATABASE_URL"])
        print(f"Benchmark database: {urlsplit(os.environ['DATABASE_URL']).path.lstrip('/')}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mastery.settings")
    os.environ.setdefault("MASTERY_ENV", "test")
    # Work the scenarios start in this process stays in it: REDIS_URL is for the rescore and load
    # scenarios' own workers (they send to it explicitly), not a queue to leave tasks in.
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
    from bench import suite

    options = suite.arguments(argv)
    import django

    django.setup()
    suite.run(options)
    print(f"Written to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
