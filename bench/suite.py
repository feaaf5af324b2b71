"""``python -m bench`` (``make bench``): the district-scale benchmark suite, one table and bench/results.json.

    DATABASE_URL=postgres://root@127.0.0.1:5432/bench python -m bench            # all three sizes
    DATABASE_URL=... python -m bench --quick                                       # 1/100 and 1/10
    DATABASE_URL=... python -m bench --sizes hundredth,full

For each size (full: 30,000 students and 3,000,000 responses; tenth; hundredth; ``tiny`` for tests),
smallest first: ``generate_district`` writes the district into the database of DATABASE_URL (everything
in it is replaced), then the scenarios run and each gives rows {scenario, size, seconds,
rows_per_second, floor_seconds, ratio, target, met, notes}:

- district recompute beside a raw ``INSERT ... SELECT ... GROUP BY ... ON CONFLICT`` floor (<= 3x);
- one student's live recompute after a submit (median < 20 ms, p95 < 50 ms);
- the nightly flag sweep over the whole district (< 60 s);
- the section heatmap with its flag queue, and the teacher's home (<= 8 queries, p95 < 60 ms);
- rescoring (``bench.rescore.scenario``: 1,000,000 / 100,000 / 10,000 responses, with the worker's
  memory) and, once, on the largest size, the load test (``bench.load.scenario``), when those modules
  provide them; otherwise a row says 'not available'.

Targets are ratios or limits measured in the same run on a shared, noisy machine: read the figures with
the machine's load in mind (the table prints it).

Time: a line per scenario as it finishes (``-- scenario, size: seconds (suite seconds)``), and the table
ends with the wall time of the setup, each size, the load test and the total (also in results.json,
``wall_seconds``): ``make bench`` must stay under 20 minutes on a fresh clone. The rescore and load
scenarios each work in a fresh database; they are created from one migrated template
(``<name>_template``, made once after migrate, dropped at the end) instead of migrating each from nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"
SIZES = {"hundredth": 0.01, "tenth": 0.1, "full": 1.0}
#: responses of the rescore scenario at each size
RESCORE_RESPONSES = {"tiny": 1_000, "hundredth": 10_000, "tenth": 100_000, "full": 1_000_000}
ORDER = ("tiny", "hundredth", "tenth", "full")
COLUMNS = (
    "scenario",
    "size",
    "seconds",
    "rows_per_second",
    "floor_seconds",
    "ratio",
    "target",
    "met",
    "notes",
)


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        default="hundredth,tenth,full",
        help="comma separated: full, tenth, hundredth, tiny (default: the first three)",
    )
    parser.add_argument("--quick", action="store_true", help="only the two small sizes (hundredth, tenth)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--live-students", type=int, default=200)
    parser.add_argument("--page-requests", type=int, default=30)
    parser.add_argument("--skip-h5", action="store_true", help="skip the rescore and load scenarios")
    parser.add_argument(
        "--no-migrate",
        dest="migrate",
        action="store_false",
        help="the tables exist already (and the rescore and load databases are migrated from nothing)",
    )
    options = parser.parse_args(argv)
    sizes = ["hundredth", "tenth"] if options.quick else [name.strip() for name in options.sizes.split(",")]
    unknown = [name for name in sizes if name not in (*SIZES, "tiny")]
    if unknown:
        parser.error(f"unknown size {unknown[0]!r}; expected full, tenth, hundredth or tiny")
    options.sizes = sorted(set(sizes), key=ORDER.index)
    return options


def size_of(name: str):
    from mastery import district

    if name == "tiny":
        return district.Size(students=45, sections=3, competencies=15, items=60, responses=3_000)
    return district.Size.of(scale=SIZES[name])


def _guarded(scenario: str, size: str, run: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    from bench.district_scenarios import row

    try:
        return run()
    except Exception as error:
        traceback.print_exc()
        return [row(scenario, size, None, met=False, notes=f"error: {error!r}"[:300])]


def _optional(
    module: str, scenario: str, size: str, call: Callable[[Any], list[dict[str, Any]]]
) -> list[dict]:
    """A scenario another module provides: 'not available' until it does."""
    from bench.district_scenarios import row

    try:
        imported = __import__(f"bench.{module}", fromlist=["scenario"])
        function = imported.scenario
    except (ImportError, AttributeError) as error:
        return [row(scenario, size, None, notes=f"not available: {error}"[:300])]
    return _guarded(scenario, size, lambda: call(function))


def run(options: argparse.Namespace, say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every scenario at every size of ``options``; returns the rows (also written to ``options.output``).

    A line per scenario says how long it took as it goes; the table, printed after each size and at
    the end, closes with each size's wall time and the total: the budget of ``make bench``."""
    from django.core.management import call_command
    from django.db import connection

    from bench import district_scenarios as scenarios
    from mastery import district

    if connection.vendor != "postgresql":
        raise SystemExit("python -m bench needs PostgreSQL: DATABASE_URL=postgres://user@host:5432/bench")
    started = time.perf_counter()
    wall: dict[str, float] = {}
    try:
        if options.migrate:
            call_command("migrate", verbosity=0, interactive=False, skip_checks=True)
    except Exception as error:
        say(f"WARNING: migrate failed ({error!r}); going on with the tables as they are.")
    templated = options.migrate and not options.skip_h5
    if templated:
        try:
            _migrated_template(say)
        except Exception as error:  # e.g. another session on the database: migrate each from nothing
            templated = False
            say(f"WARNING: no migrated template ({error!r}); each scenario database is migrated.")
    wall["setup"] = time.perf_counter() - started
    rows: list[dict[str, Any]] = []
    url = os.environ.get("DATABASE_URL", "")

    def timed(scenario: str, size: str, produce: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        begun = time.perf_counter()
        produced = produce()
        say(
            f"-- {scenario}, {size}: {time.perf_counter() - begun:.1f} s "
            f"(suite {time.perf_counter() - started:.0f} s)"
        )
        return produced

    for name in options.sizes:
        size = size_of(name)
        say(f"== {name}: {size.students:,} students, {size.responses:,} responses ==")
        size_started = time.perf_counter()
        begun = time.perf_counter()
        counts = district.generate(size=size, seed=options.seed, progress=say, replace=True)
        generated = time.perf_counter() - begun
        say(f"-- generate district, {name}: {generated:.1f} s (suite {time.perf_counter() - started:.0f} s)")
        rows.append(
            scenarios.row(
                "generate district",
                name,
                generated,
                rows=sum(counts.values()),
                target="(info)",
                notes=(
                    f"{counts['responses']:,} responses, {counts['evidence']:,} evidence rows, COPY, "
                    f"indexes and foreign keys made after the load"
                ),
            )
        )
        rows += timed(
            "district recompute",
            name,
            lambda name=name: _guarded("district recompute", name, lambda: scenarios.recompute(name)),
        )
        rows += timed(
            "live recompute",
            name,
            lambda name=name: _guarded(
                "live recompute after a submit (median)",
                name,
                lambda: scenarios.live_recompute(name, options.live_students),
            ),
        )
        rows += timed(
            "teacher pages",
            name,
            lambda name=name: _guarded(
                "teacher pages", name, lambda: scenarios.teacher_pages(name, options.page_requests)
            ),
        )
        rows += timed(
            "nightly flag sweep",
            name,
            lambda name=name: _guarded("nightly flag sweep", name, lambda: scenarios.flag_sweep(name)),
        )
        if not options.skip_h5:
            rows += timed(
                f"rescore ({RESCORE_RESPONSES[name]:,} responses)",
                name,
                lambda name=name: _optional(
                    "rescore", "rescore", name, lambda function: function(RESCORE_RESPONSES[name], url)
                ),
            )
        wall[name] = time.perf_counter() - size_started
        _write(options.output, rows, started, wall)
        say(table(rows, wall))
    if not options.skip_h5:
        largest = options.sizes[-1]
        begun = time.perf_counter()
        rows += timed(
            "load",
            largest,
            lambda: _optional("load", "load", largest, lambda function: function(conn_url=url)),
        )
        wall["load"] = time.perf_counter() - begun
    if templated:
        _drop_template()
    wall["total"] = time.perf_counter() - started
    _write(options.output, rows, started, wall)
    say(table(rows, wall))
    return rows


def _template_name() -> str:
    from django.db import connection

    return f"{connection.settings_dict['NAME']}_template"


def _migrated_template(say: Callable[[str], None]) -> None:
    """The rescore and load scenarios each run in a fresh database of their own (``bench.rescore.
    dedicated_database``); migrating one from nothing takes half a minute. So the empty, migrated
    tables are copied once into ``<name>_template`` and every such database is created from it
    (``CREATE DATABASE ... TEMPLATE``, Django's ``TEST['TEMPLATE']``): its migrate finds nothing to do.
    The copy is taken just after migrate and before any district is written (the district tables are
    emptied first, in case an earlier run left one)."""
    from django.conf import settings
    from django.db import connection

    from mastery import district

    name, template = connection.settings_dict["NAME"], _template_name()
    begun = time.perf_counter()
    if not district.database_is_empty():
        district.clear_database()
    connection.close()  # CREATE DATABASE ... TEMPLATE needs the source without connections
    quote = connection.ops.quote_name
    with connection.creation._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {quote(template)}")
        cursor.execute(f"CREATE DATABASE {quote(template)} TEMPLATE {quote(name)}")
    for settings_dict in (settings.DATABASES["default"], connection.settings_dict):
        settings_dict.setdefault("TEST", {})["TEMPLATE"] = template
    say(f"-- migrated template {template}: {time.perf_counter() - begun:.1f} s")


def _drop_template() -> None:
    from django.conf import settings
    from django.db import connection

    template = _template_name()
    for settings_dict in (settings.DATABASES["default"], connection.settings_dict):
        settings_dict.get("TEST", {}).pop("TEMPLATE", None)
    with connection.creation._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {connection.ops.quote_name(template)}")


def _write(
    path: Path, rows: list[dict[str, Any]], started: float, wall: dict[str, float] | None = None
) -> None:
    document = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [round(value, 2) for value in os.getloadavg()],
        },
        "total_seconds": round(time.perf_counter() - started, 1),
        "wall_seconds": {name: round(seconds, 1) for name, seconds in (wall or {}).items()},
        "rows": [{column: row.get(column) for column in COLUMNS} for row in rows],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.4f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: list[dict[str, Any]], wall: dict[str, float] | None = None) -> str:
    """The rows as one plain-text table (notes last, unpadded), then, given ``wall`` (seconds by size,
    and 'setup', 'load', 'total' when known), one line of wall times: the budget of ``make bench``."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    cells = [[_cell(row.get(column)) for column in COLUMNS] for row in rows]
    widths = [
        max(len(column), *(len(line[index]) for line in cells)) for index, column in enumerate(COLUMNS[:-1])
    ]
    lines = [
        "  ".join(column.ljust(width) for column, width in zip(COLUMNS[:-1], widths, strict=True))
        + "  notes",
    ]
    lines.append("-" * len(lines[0]))
    for line in cells:
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True))
            + "  "
            + line[-1]
        )
    lines.append(f"(load average {load} on {os.cpu_count()} CPUs while the table was printed)")
    if wall:
        lines.append(
            "wall time: " + ", ".join(f"{name} {_minutes(seconds)}" for name, seconds in wall.items())
        )
    return "\n".join(lines)


def _minutes(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60:02d} s"
