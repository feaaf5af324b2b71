"""The accessibility sweep's URLconf walk and parameter filling (tests/browser/test_every_page_accessible.py),
checked without a browser: every page pattern is found, parameters are read by name, and a pattern with
a parameter nobody knows how to fill is named in the failure."""

from __future__ import annotations

from tests.browser.test_every_page_accessible import (
    SKIPPED_PREFIXES,
    Pattern,
    _candidate_urls,
    object_kinds,
    walk,
)


def test_walk_finds_namespaced_patterns_with_their_parameters():
    patterns = {pattern.name: pattern for pattern in walk()}
    assert patterns["staff:overview"].route == "staff/"
    assert patterns["progress:section"].route == "teach/sections/<int:pk>/"
    assert patterns["progress:section"].kwargs == ["pk"]
    assert patterns["login"].kwargs == []
    assert patterns["admin:index"].route.startswith(SKIPPED_PREFIXES)
    assert patterns["api-token"].route == "api/v1/auth/token/"
    assert patterns["api-token"].route.startswith(SKIPPED_PREFIXES)
    assert not patterns["staff:overview"].route.startswith(SKIPPED_PREFIXES)


def test_object_kinds_by_parameter_name_or_the_segment_before_it():
    assert object_kinds("teach/sections/<int:pk>/", "pk") == ["section"]
    assert object_kinds("attempts/<int:pk>/result/", "pk") == ["attempt"]
    assert object_kinds("competencies/<int:id>/", "id") == ["competency"]
    assert object_kinds("learn/<int:pk>/", "pk") == ["competency", "resource"]
    assert object_kinds("teach/sections/<int:pk>/students/<int:student_pk>/", "student_pk") == ["student"]
    assert object_kinds("teach/sections/<int:pk>/students/<int:student_pk>/", "pk") == ["section"]
    assert object_kinds("learn/<int:competency_pk>/resources/<int:resource_pk>/", "resource_pk") == [
        "resource"
    ]
    assert object_kinds("<int:pk>/", "pk") == []


def test_a_parameter_nobody_can_fill_fails_by_name():
    pattern = Pattern(name="progress:cohort", route="teach/cohorts/<int:pk>/", kwargs=["pk"], is_named=True)
    urls, problem = _candidate_urls(pattern, {"section": [1]})
    assert urls == []
    assert problem.startswith("progress:cohort (teach/cohorts/<int:pk>/): no known way to fill <pk>")


def test_parameters_are_filled_from_the_values_of_their_kind():
    pattern = Pattern(
        name="progress:student",
        route="teach/sections/<int:pk>/students/<int:student_pk>/",
        kwargs=["pk", "student_pk"],
        is_named=True,
    )
    urls, problem = _candidate_urls(pattern, {"section": [1, 2], "student": [7]})
    assert (urls, problem) == (["/teach/sections/1/students/7/", "/teach/sections/2/students/7/"], "")
