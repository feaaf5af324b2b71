"""The benchmark suite's machinery at a tiny size: every scenario gives its rows (nothing is timed here)."""

from __future__ import annotations

import json
import sys
import types

import pytest
from django.db import connection

from bench import suite

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the suite needs PostgreSQL"),
]


def test_options_choose_sizes():
    assert suite.arguments([]).sizes == ["hundredth", "tenth", "full"]
    assert suite.arguments(["--quick"]).sizes == ["hundredth", "tenth"]
    assert suite.arguments(["--sizes", "full,tiny"]).sizes == ["tiny", "full"]
    with pytest.raises(SystemExit):
        suite.arguments(["--sizes", "huge"])


def test_the_suite_gives_every_row_at_a_tiny_size(tmp_path, monkeypatch):
    calls = []

    def rescore(size_responses: int, conn_url: str) -> list[dict]:
        calls.append(("rescore", size_responses))
        return [{"scenario": "rescore", "size": "tiny", "seconds": 1.0, "notes": "fake"}]

    monkeypatch.setitem(sys.modules, "bench.rescore", types.SimpleNamespace(scenario=rescore))
    # No bench.load.scenario: the suite says so in a row and goes on.
    monkeypatch.setitem(sys.modules, "bench.load", types.SimpleNamespace())
    output = tmp_path / "results.json"
    options = suite.arguments(
        [
            "--sizes",
            "tiny",
            "--output",
            str(output),
            "--live-students",
            "5",
            "--page-requests",
            "2",
            "--no-migrate",
        ]
    )
    said: list[str] = []
    rows = suite.run(options, say=said.append)
    scenarios = [row["scenario"] for row in rows]
    assert scenarios[:5] == [
        "generate district",
        "district recompute",
        "district recompute, nothing changed",
        "live recompute after a submit (median)",
        "section heatmap + flag queue (40 x 12)",  # the 12 leaves of 15 competencies
    ]
    assert scenarios[5:] == ["teacher home (flag queue)", "nightly flag sweep", "rescore", "load"]
    assert calls == [("rescore", 1_000)]
    by_name = {row["scenario"]: row for row in rows}
    recompute = by_name["district recompute"]
    assert recompute["target"] == "<= 3x floor"
    assert recompute["floor_seconds"] > 0
    assert recompute["notes"].startswith(
        "45 students x competencies = 675 states from 600 evidence rows, every method; 301 rows stored "
        "(the rest blank, derived on read); floor writes 202 (student, competency) aggregates into a copy "
        "without foreign keys; into the mastery table itself "
    )
    assert by_name["district recompute, nothing changed"]["notes"] == "0 rows written"
    assert by_name["nightly flag sweep"]["notes"].startswith(
        "whole district, 45 students; 0 masteries changed"
    )
    assert by_name["load"]["notes"].startswith("not available")
    written = json.loads(output.read_text())
    assert [row["scenario"] for row in written["rows"]] == scenarios
    assert set(written["rows"][0]) == set(suite.COLUMNS)
    text = suite.table(rows)
    assert text.splitlines()[0].split() == [*suite.COLUMNS[:-1], "notes"]
    assert len(text.splitlines()) == len(rows) + 3
    # The time budget: a line per scenario as it ends, and the wall time of each part at the end.
    assert [line.split(":")[0] for line in said if line.startswith("-- ")] == [
        "-- generate district, tiny",
        "-- district recompute, tiny",
        "-- live recompute, tiny",
        "-- teacher pages, tiny",
        "-- nightly flag sweep, tiny",
        "-- rescore (1,000 responses), tiny",
        "-- load, tiny",
    ]
    assert list(written["wall_seconds"]) == ["setup", "tiny", "load", "total"]
    assert said[-1].splitlines()[-1].startswith("wall time: setup ")
    assert suite.table(rows, {"tiny": 12.4, "load": 75.0}).splitlines()[-1] == (
        "wall time: tiny 12 s, load 1 min 15 s"
    )
