"""The authorization matrix: every URL pattern of the project, each with a declared policy.

The patterns are read from ``django.urls.get_resolver()`` when the tests are collected, so a new
endpoint or page that has no policy here, or whose URL parameters the matrix does not know how to fill,
makes ``test_every_pattern_has_a_policy`` fail with its route.

A policy says, per method, the status an allowed caller gets, and who is allowed: ``scope`` maps a
role kind (anonymous, student, teacher, staff) to how far it reaches:

- ``all``: any object (or the page has no object);
- ``self``: the caller's own objects (a student's attempts, flags, progress);
- ``teaches``: objects of students in the caller's sections (or the sections themselves);
- ``district``: objects of the caller's district (the catalog; staff's view of their students);
- ``published``: the CASE provider's public objects (published frameworks of any district).

A role kind not in ``scope`` is refused whatever the object: the API answers 403 (401/403 for
anonymous), a page answers 404 (a redirect to the login page for anonymous). An object outside the
caller's reach answers 404, exactly as a missing id does.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

from tests.security.world import DISTRICT_OWNERS, PERSON_OWNERS, ROLE_TABLE, Role, district_of

EXCLUDED_PREFIXES = ("admin/", "api/schema/", "api/docs/", "static/", "media/", "__debug__/")

PERSON_KINDS = {"attempt", "submitted_attempt", "student", "flag", "section", "response", "form_item"}
DISTRICT_KINDS = {
    "assessment",
    "done_assessment",
    "item",
    "extended_item",
    "rescore_job",
    "resource",
    "framework",
    "competency",
    "second_competency",
}
CASE_KINDS = {"case_document", "case_item", "case_association"}
LITERALS = {"flag_action": "acknowledge"}

#: URL parameter names that say what they hold.
PARAM_KINDS = {
    "section_pk": "section",
    "section_id": "section",
    "student_pk": "student",
    "student_id": "student",
    "attempt_pk": "attempt",
    "attempt_id": "attempt",
    "item_id": "form_item",
    "item_pk": "item",
    "flag_pk": "flag",
    "response_pk": "response",
    "response_id": "response",
    "assessment_pk": "assessment",
    "assessment_id": "assessment",
    "competency_pk": "competency",
    "competency_id": "competency",
    "framework_pk": "framework",
    "job_pk": "rescore_job",
    "resource_pk": "resource",
    "action": "flag_action",
}

#: ``pk`` and ``identifier`` take their kind from the path segment before them.
SEGMENT_KINDS = {
    "assessments": "assessment",
    "attempts": "attempt",
    "items": "item",
    "rescore-jobs": "rescore_job",
    "rescoring": "rescore_job",
    "students": "student",
    "resources": "resource",
    "sections": "section",
    "flags": "flag",
    "frameworks": "framework",
    "competencies": "competency",
    "learn": "competency",
    "responses": "response",
    "CFDocuments": "case_document",
    "CFPackages": "case_document",
    "CFItems": "case_item",
    "CFAssociations": "case_association",
    "CFItemAssociations": "case_item",
}

#: For a "mixed" owner (the first object the caller's own, a later one someone else's): where the
#: later one comes from (by default the same kind, of a2 for people's objects, of B for the catalog).
MIXED_SOURCES = {"form_item": ("extended_item", "A")}


def mixed_source(kind: str) -> tuple[str, str]:
    return MIXED_SOURCES.get(kind, (kind, "B" if kind in DISTRICT_KINDS else "a2"))


STUDENT = {"student": "self"}
TEACHER = {"teacher": "teaches"}
STAFF = {"staff": "district"}
SIGNED_IN = {"student": "all", "teacher": "all", "staff": "all"}
EVERYONE = {"anonymous": "all", **SIGNED_IN}
CASE = {"anonymous": "published", "student": "published", "teacher": "published", "staff": "published"}


def _week_ahead() -> str:
    return (datetime.date.today() + datetime.timedelta(days=7)).isoformat()


def _override_body(world, owner: str) -> dict[str, Any]:
    competency = world.get("competency", "B" if owner == "b" else "A")
    return {"competency": competency.pk, "action": "unlocked", "note": "matrix override"}


def _grade_body(world, owner: str) -> dict[str, Any]:
    response = world.get("response", "a1" if owner in ("missing", "mixed") else owner)
    level = response.item.rubric_levels.order_by("pk").first()
    return {f"response-{response.pk}-level": level.pk, f"response-{response.pk}-feedback": "ok"}


@dataclass(frozen=True)
class Policy:
    api: bool
    methods: dict[str, int]
    scope: dict[str, str]
    kinds: dict[str, str] = field(default_factory=dict)
    bodies: dict[str, Any] = field(default_factory=dict)
    leak_check: bool = True
    keys_hidden: bool = True


def api(methods, scope, **kwargs) -> Policy:
    return Policy(True, methods, scope, **kwargs)


def page(methods, scope, **kwargs) -> Policy:
    return Policy(False, methods, scope, **kwargs)


_CASE_POLICY = api({"GET": 200}, CASE, leak_check=False)
_CASE_LIST = api({"GET": 200}, {kind: "all" for kind in CASE}, leak_check=False)

POLICIES: dict[str, Policy] = {
    # --- API ------------------------------------------------------------------------------------
    "api/v1/auth/token/": api(
        {"POST": 400}, {**EVERYONE}, bodies={"POST": {"username": "nobody", "password": "wrong"}}
    ),
    "api/v1/frameworks/": api({"GET": 200}, {"staff": "all"}),
    "api/v1/frameworks/<int:pk>/competencies/": api({"GET": 200}, STAFF),
    "api/v1/assessments/<int:pk>/attempts/": api({"POST": 201}, {"student": "district"}),
    "api/v1/attempts/<int:pk>/": api({"GET": 200}, STUDENT),
    "api/v1/attempts/<int:pk>/responses/<int:item_id>/": api(
        {"PUT": 200}, STUDENT, bodies={"PUT": {"answer": "matrix answer"}}
    ),
    "api/v1/attempts/<int:pk>/submit/": api({"POST": 200}, STUDENT),
    "api/v1/items/": api(
        {"GET": 200, "POST": 201},
        {"staff": "all"},
        bodies={"POST": {"type": "short_text", "stem": "New item", "accepted": ["x"], "points": "1"}},
    ),
    "api/v1/items/<int:pk>/": api(
        {"GET": 200, "PATCH": 200}, STAFF, bodies={"PATCH": {"stem": "Changed by the matrix"}}
    ),
    "api/v1/rescore-jobs/<int:pk>/": api({"GET": 200}, STAFF),
    "api/v1/me/path/": api({"GET": 200}, {"student": "all"}),
    "api/v1/students/<int:pk>/progress/": api(
        {"GET": 200}, {"student": "self", "teacher": "teaches", "staff": "district"}
    ),
    "api/v1/resources/<int:pk>/viewed/": api({"POST": 200}, {"student": "district"}),
    "api/v1/sections/": api({"GET": 200}, {"teacher": "all"}),
    "api/v1/sections/<int:pk>/heatmap/": api({"GET": 200}, TEACHER),
    "api/v1/sections/<int:pk>/groups/": api({"GET": 200}, TEACHER),
    "api/v1/flags/": api({"GET": 200}, {"teacher": "all"}),
    "api/v1/flags/<int:pk>/acknowledge/": api({"POST": 200}, TEACHER, bodies={"POST": {"note": "seen"}}),
    "api/v1/flags/<int:pk>/resolve/": api({"POST": 200}, TEACHER, bodies={"POST": {"note": "done"}}),
    "api/v1/flags/<int:pk>/snooze/": api(
        {"POST": 200},
        TEACHER,
        bodies={"POST": lambda world, owner: {"note": "later", "until": _week_ahead()}},
    ),
    # --- the CASE provider (public, published frameworks only) ----------------------------------
    **{
        f"ims/case/{version}/{route}": policy
        for version in ("v1p0", "v1p1")
        for route, policy in [
            ("CFDocuments", _CASE_LIST),
            ("CFDocuments/<str:identifier>", _CASE_POLICY),
            ("CFPackages/<str:identifier>", _CASE_POLICY),
            ("CFItems/<str:identifier>", _CASE_POLICY),
            ("CFAssociations/<str:identifier>", _CASE_POLICY),
            ("CFItemAssociations/<str:identifier>", _CASE_POLICY),
        ]
    },
    # --- pages ----------------------------------------------------------------------------------
    "": page({"GET": 302}, SIGNED_IN),
    "healthz/": page({"GET": 200}, EVERYONE),
    "accounts/login/": page({"GET": 200}, EVERYONE),
    "accounts/logout/": page({"POST": 302}, EVERYONE),
    "teach/": page({"GET": 200}, {"teacher": "all"}),
    "teach/sections/<int:pk>/": page({"GET": 200}, TEACHER),
    "teach/sections/<int:pk>/heatmap.csv": page({"GET": 200}, TEACHER),
    "teach/flags/<int:pk>/<slug:action>/": page({"POST": 302}, TEACHER, bodies={"POST": {"note": "seen"}}),
    "path/": page({"GET": 200}, {"student": "all"}),
    "assessments/<int:pk>/": page({"GET": 200}, {"student": "district"}),
    "assessments/<int:pk>/start/": page({"POST": 302}, {"student": "district"}),
    "attempts/<int:pk>/": page({"GET": 200, "POST": 302}, STUDENT),
    "attempts/<int:pk>/submit/": page({"GET": 200, "POST": 302}, STUDENT),
    "attempts/<int:pk>/result/": page(
        {"GET": 200}, STUDENT, kinds={"pk": "submitted_attempt"}, keys_hidden=False
    ),
    "teach/sections/<int:pk>/scale.css": page({"GET": 200}, TEACHER),
    "teach/sections/<int:pk>/students/<int:student_pk>/": page({"GET": 200}, TEACHER),
    "teach/sections/<int:pk>/students/<int:student_pk>/override/": page(
        {"POST": 302}, TEACHER, bodies={"POST": _override_body}
    ),
    "teach/sections/<int:section_pk>/grading/": page({"GET": 200}, TEACHER),
    "teach/grading/<int:response_pk>/": page(
        {"GET": 200, "POST": 302}, TEACHER, bodies={"POST": _grade_body}, keys_hidden=False
    ),
    "results/": page({"GET": 200}, {"student": "all"}),
    "learn/<int:competency_pk>/": page({"GET": 200}, {"student": "district"}),
    "learn/<int:competency_pk>/resources/<int:resource_pk>/watched/": page(
        {"POST": 302}, {"student": "district"}
    ),
    "staff/": page({"GET": 200}, {"staff": "all"}),
    "staff/rescoring/": page({"GET": 200}, {"staff": "all"}),
}


# --- reading the URL configuration ---------------------------------------------------------------

_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def project_routes() -> list[str]:
    """Every route of the project but Django admin, the schema and its docs, in URLconf order."""
    seen: dict[str, None] = {}
    for route in _walk(get_resolver().url_patterns):
        if route.startswith(EXCLUDED_PREFIXES) or route.startswith("^"):
            continue
        seen.setdefault(route, None)
    return list(seen)


def route_params(route: str) -> list[str]:
    return [match["name"] for match in _PARAM.finditer(route)]


def param_kind(route: str, name: str, policy: Policy | None) -> str | None:
    if policy is not None and name in policy.kinds:
        return policy.kinds[name]
    if name in PARAM_KINDS:
        return PARAM_KINDS[name]
    before = route[: route.index(f"{name}>")].rsplit("<", 1)[0]
    segments = [segment for segment in before.split("/") if segment]
    return SEGMENT_KINDS.get(segments[-1]) if segments else None


def known_kind(kind: str | None) -> bool:
    return kind is not None and (kind in PERSON_KINDS | DISTRICT_KINDS | CASE_KINDS or kind in LITERALS)


def route_problem(route: str) -> str | None:
    """Why the matrix cannot test ``route``, or None."""
    policy = POLICIES.get(route)
    if policy is None:
        return f"{route!r} has no policy in tests/security/matrix.py POLICIES"
    for name in route_params(route):
        kind = param_kind(route, name, policy)
        if not known_kind(kind):
            return f"{route!r}: the matrix cannot fill the URL parameter {name!r} (kind {kind!r})"
    return None


def object_params(route: str) -> list[tuple[str, str]]:
    policy = POLICIES[route]
    return [
        (name, kind)
        for name in route_params(route)
        if (kind := param_kind(route, name, policy)) is not None and kind not in LITERALS
    ]


def owners_for(route: str) -> list[str]:
    params = object_params(route)
    if not params:
        return ["-"]
    first = params[0][1]
    if first in CASE_KINDS:
        return ["A", "B", "draft", "missing"]
    owners = [*(DISTRICT_OWNERS if first in DISTRICT_KINDS else PERSON_OWNERS), "missing"]
    if len(params) > 1:
        owners.append("mixed")
    return owners


# --- the expected outcome of a cell --------------------------------------------------------------


def reaches(role: Role, scope: str, owner: str) -> bool:
    if owner == "-":
        return True
    if owner in ("missing", "mixed", "draft"):
        return False
    if scope in ("all", "published"):
        return True
    if scope == "self":
        return owner in role.own
    if scope == "teaches":
        return owner in role.taught
    if scope == "district":
        return role.district is not None and district_of(owner) == role.district
    raise AssertionError(f"unknown scope {scope!r}")


def expected(route: str, method: str, role_name: str, owner: str) -> str:
    """``allowed``, ``anonymous`` (sign in first), ``role`` (the role may not use it at all) or
    ``hidden`` (the object is not the caller's: the same answer as a missing id)."""
    policy = POLICIES[route]
    role = ROLE_TABLE[role_name]
    scope = policy.scope.get(role.kind)
    if scope is None:
        return "anonymous" if role.kind == "anonymous" else "role"
    return "allowed" if reaches(role, scope, owner) else "hidden"


def cells() -> list[tuple[str, str, str, str]]:
    """(route, method, role, owner) for every route the matrix can test."""
    rows = []
    for route in project_routes():
        if route_problem(route):
            continue
        for method in POLICIES[route].methods:
            for role in ROLE_TABLE:
                for owner in owners_for(route):
                    rows.append((route, method, role, owner))
    return rows
