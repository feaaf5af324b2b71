"""Every page of the site, found by walking the URLconf, opened in chromium by the role that owns it and
checked with axe-core (no serious or critical violation) at desktop and phone widths.

Nothing is listed by hand: each URL pattern outside admin and the APIs is filled from the demo district
(``mastery.demo``) by the names of its parameters, probed as each role, and a pattern that answers a
full HTML page is checked in the browser. A pattern whose parameters cannot be filled, or that no role
can open, fails the test by name, so a new page cannot escape the check. Patterns that are not pages
(POST-only actions, CSV or JSON, htmx fragments, pure redirects) are listed in the output, with why.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from assessments import services as assessment_services
from assessments.models import Assessment, Attempt, Item, RescoreJob, Response
from competencies.models import Competency, Framework, LearningResource
from mastery import demo
from progress import grid
from progress.models import InterventionFlag
from roster.models import Enrollment, ImportRun, School, Section, User
from tests.browser.conftest import DESKTOP, PHONE, _new_page, assert_accessible, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Not pages for this check: Django admin (its own templates), the JSON APIs, the CASE provider, static.
SKIPPED_PREFIXES = ("admin/", "api/", "ims/", "static/", "media/", "__debug__/")
ROLES = ("anonymous", "student", "teacher", "district_staff")
LOGINS = {"student": "demo-student", "teacher": "demo-teacher", "district_staff": "demo-staff"}
# The object a ``pk``/``id`` parameter names, by the literal path segment before it.
SEGMENT_KINDS = {
    "learn": ["competency", "resource"],
    "lesson": ["competency", "resource"],
    "lessons": ["competency", "resource"],
    "path": ["competency"],
    "results": ["attempt"],
    "result": ["attempt"],
    "grading": ["response", "attempt"],
    "grade": ["response", "attempt"],
    "queue": ["response"],
    "jobs": ["rescore_job"],
    "rescoring": ["rescore_job"],
    "rescore-jobs": ["rescore_job"],
    "imports": ["import_run"],
    "children": ["student"],
    "people": ["user"],
}
MAX_COMBINATIONS = 24


@dataclass
class Pattern:
    name: str  # "namespace:name", or the route when unnamed
    route: str
    kwargs: list[str]
    is_named: bool


@dataclass
class Probe:
    pattern: Pattern
    role: str | None = None
    url: str | None = None
    outcomes: list[str] = field(default_factory=list)
    kind: str = ""  # "page", or why it is not one
    problem: str = ""


def _route_text(pattern: Any) -> str:
    text = str(pattern.pattern)
    return text.lstrip("^").rstrip("$").replace("\\Z", "")


def _kwarg_names(pattern: Any) -> list[str]:
    converters = getattr(pattern.pattern, "converters", None)
    if converters:
        return list(converters)
    regex = getattr(pattern.pattern, "regex", None)
    return list(regex.groupindex) if regex is not None else []


def walk(resolver: URLResolver | None = None, prefix: str = "", namespace: str = "") -> Iterator[Pattern]:
    """Every URL pattern under the root URLconf, with its full route and namespaced name."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + _route_text(entry)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}" if namespace and entry.namespace else entry.namespace
            yield from walk(entry, route, inner or namespace)
        elif isinstance(entry, URLPattern):
            kwargs = [*_kwargs_of_prefix(prefix), *_kwarg_names(entry)]
            if entry.name:
                name = f"{namespace}:{entry.name}" if namespace else entry.name
                yield Pattern(name=name, route=route, kwargs=kwargs, is_named=True)
            else:
                yield Pattern(name=route, route=route, kwargs=kwargs, is_named=False)


def _kwargs_of_prefix(prefix: str) -> list[str]:
    return re.findall(r"<(?:\w+:)?(\w+)>", prefix) + re.findall(r"\(\?P<(\w+)>", prefix)


def object_kinds(route: str, kwarg: str) -> list[str]:
    """What a parameter names: ``section_pk`` a section; ``pk`` the object of the segment before it
    (``teach/sections/<int:pk>/`` a section, ``learn/<int:pk>/`` a competency or a resource)."""
    name = re.sub(r"_(pk|id)$", "", kwarg)
    if name not in ("pk", "id"):
        return [name]
    before = re.split(rf"<(?:\w+:)?{kwarg}>|\(\?P<{kwarg}>", route)[0]
    segments = [part for part in before.split("/") if part and "<" not in part and "(" not in part]
    if not segments:
        return []
    segment = segments[-1]
    if segment in SEGMENT_KINDS:
        return SEGMENT_KINDS[segment]
    singular = re.sub(r"ies$", "y", segment) if segment.endswith("ies") else segment.removesuffix("s")
    return [singular.replace("-", "_")]


def _ids(queryset) -> list[Any]:
    return list(queryset.values_list("pk", flat=True)[:3])


def seeded_values() -> tuple[dict[str, list[Any]], dict[str, User]]:
    """Candidate values per object kind from the demo district, the ones each role owns first."""
    demo.demo_seed()
    users = {role: User.objects.get(username=username) for role, username in LOGINS.items()}
    student, teacher = users["student"], users["teacher"]
    district = student.district
    # Stored or derived (blank rows are not stored: ``progress.grid``).
    states = grid.student_states(
        student_id=student.pk,
        competency_ids=list(Competency.objects.order_by("pk").values_list("pk", flat=True)),
    )
    by_state = {
        state: [competency_id for competency_id, value in states.items() if value == state][:2]
        for state in ("ready", "in_progress", "mastered", "locked")
    }
    competencies = by_state["ready"] + by_state["in_progress"] + by_state["mastered"] + by_state["locked"]
    competencies = competencies or _ids(Competency.objects.filter(framework__district=district))
    # An attempt in progress for the attempt page: the demo student's ready mastery check, opened now.
    in_progress: list[int] = []
    for assessment in Assessment.objects.filter(competency_id__in=by_state["ready"]):
        try:
            attempt = assessment_services.attempt_start(assessment=assessment, student=student)
        except assessment_services.AttemptRefused:  # the gate may refuse one; try the next
            continue
        in_progress.append(attempt.pk)
        break
    attempts = in_progress + _ids(
        Attempt.objects.filter(student=student).exclude(pk__in=in_progress).order_by("-pk")
    )
    sections = list(
        Enrollment.objects.filter(
            user=teacher, role=Enrollment.Role.TEACHER, section__enrollments__user=student
        )
        .values_list("section_id", flat=True)
        .distinct()
    )
    # Written answers (rubric items) of submitted attempts in the teacher's sections, ungraded first.
    written = Response.objects.filter(
        attempt__student__enrollments__section_id__in=sections,
        attempt__status__in=[Attempt.Status.SUBMITTED, Attempt.Status.COMPLETED],
        item__type=Item.Type.EXTENDED_TEXT,
    )
    ungraded = written.filter(score__isnull=True)
    values: dict[str, list[Any]] = {
        "section": sections + _ids(Section.objects.filter(school__district=district)),
        "student": [student.pk],
        "user": [student.pk],
        "competency": competencies,
        "resource": _ids(LearningResource.objects.filter(competency_id__in=competencies[:1]))
        + _ids(LearningResource.objects.filter(competency__framework__district=district)),
        "assessment": _ids(Assessment.objects.filter(competency_id__in=by_state["ready"]))
        + _ids(Assessment.objects.filter(district=district)),
        "attempt": attempts,
        "response": _ids(ungraded) + _ids(written) + _ids(Response.objects.filter(attempt__student=student)),
        "flag": _ids(InterventionFlag.objects.filter(student=student, status="open"))
        + _ids(InterventionFlag.objects.filter(student__district=district)),
        "item": _ids(Item.objects.filter(district=district)),
        "framework": _ids(Framework.objects.filter(district=district)),
        "school": _ids(School.objects.filter(district=district)),
        "rescore_job": _ids(RescoreJob.objects.all()),
        "import_run": _ids(ImportRun.objects.filter(district=district)),
        "action": ["acknowledge", "snooze", "resolve"],
        "kind": ["case", "csv"],
        "format": ["csv"],
        "date": [timezone.localdate().isoformat()],
    }
    # Drop duplicates, keep the order: the owner's objects first.
    return {kind: list(dict.fromkeys(ids)) for kind, ids in values.items()}, users


def _candidate_urls(pattern: Pattern, values: dict[str, list[Any]]) -> tuple[list[str], str]:
    per_kwarg = []
    for kwarg in pattern.kwargs:
        kinds = object_kinds(pattern.route, kwarg)
        options = [value for kind in kinds for value in values.get(kind, [])]
        if not options:
            return [], (
                f"{pattern.name} ({pattern.route}): no known way to fill <{kwarg}> "
                f"(kinds tried: {kinds or 'none'}); teach object_kinds()/seeded_values() in "
                "tests/browser/test_every_page_accessible.py"
            )
        per_kwarg.append(list(dict.fromkeys(options)))
    urls = []
    for combination in itertools.islice(itertools.product(*per_kwarg), MAX_COMBINATIONS):
        kwargs = dict(zip(pattern.kwargs, combination, strict=True))
        if pattern.is_named:
            urls.append(reverse(pattern.name, kwargs=kwargs))
        else:
            url = pattern.route
            for kwarg, value in kwargs.items():
                url = re.sub(rf"<(?:\w+:)?{kwarg}>", str(value), url)
            urls.append("/" + url)
    return urls, ""


def _is_full_page(response) -> bool:
    head = response.content[:500].lower()
    return b"<html" in head or b"<!doctype html" in head


def probe(pattern: Pattern, values: dict[str, list[Any]], clients: dict[str, Client]) -> Probe:
    """The first role and URL that answer the pattern with a full HTML page, or why there is none."""
    result = Probe(pattern=pattern)
    urls, problem = _candidate_urls(pattern, values)
    if problem:
        result.problem = problem
        return result
    statuses: set[str] = set()
    for role in ROLES:
        for url in urls:
            response = clients[role].get(url)
            content_type = response.get("Content-Type", "")
            if response.status_code == 200 and content_type.startswith("text/html"):
                if _is_full_page(response):
                    result.role, result.url, result.kind = role, url, "page"
                    return result
                statuses.add("fragment")
            elif response.status_code == 200:
                statuses.add(f"200 {content_type.split(';')[0]}")
            elif 300 <= response.status_code < 400:
                to_login = response["Location"].startswith(resolve_url(settings.LOGIN_URL))
                statuses.add("login" if to_login else "redirect")
            else:
                statuses.add(str(response.status_code))
            result.outcomes.append(f"{role} {url}: {response.status_code}")
    statuses.discard("login")  # anonymous callers of a signed-in page: says nothing about the page
    if statuses <= {"405", "redirect", "404"} and "405" in statuses:
        result.kind = "POST only (405 to GET)"
    elif any(status.startswith("200 ") for status in statuses):
        result.kind = "not HTML: " + ", ".join(sorted(s[4:] for s in statuses if s.startswith("200 ")))
    elif "fragment" in statuses:
        result.kind = "an htmx fragment (no <html>)"
    elif statuses == {"redirect"}:
        result.kind = "a redirect for every role"
    else:
        result.problem = (
            f"{pattern.name} ({pattern.route}): no role could open it with the seeded values; "
            f"answers: {'; '.join(result.outcomes[:8])}"
        )
    return result


def _violations(page) -> list[str]:
    """The serious/critical axe rules on the page with their first elements (axe is already loaded)."""
    results = page.evaluate("async () => await window.axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{rule['id']} ({rule['impact']}) at {[node['target'] for node in rule['nodes'][:3]]}"
        for rule in results["violations"]
        if rule.get("impact") in ("serious", "critical")
    ]


def test_every_page_is_accessible_at_desktop_and_phone_widths(browser, live_server):
    patterns = [pattern for pattern in walk() if not pattern.route.startswith(SKIPPED_PREFIXES)]
    values, users = seeded_values()
    clients = {"anonymous": Client()}
    for role, user in users.items():
        clients[role] = Client()
        clients[role].force_login(user)

    probes = [probe(pattern, values, clients) for pattern in patterns]
    problems = [result.problem for result in probes if result.problem]
    pages = [result for result in probes if result.kind == "page"]

    checked = 0
    contexts = []
    try:
        for role in ROLES:
            role_pages = [result for result in pages if result.role == role]
            if not role_pages:
                continue
            for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                context, page = _new_page(browser, live_server, viewport)
                contexts.append(context)
                if role != "anonymous":
                    log_in(page, LOGINS[role], demo.DEMO_PASSWORD)
                for result in role_pages:
                    response = page.goto(result.url)
                    where = f"{result.pattern.name} {result.url} as {role} at {label} width"
                    if response is None or response.status != 200:
                        problems.append(f"{where}: answered {response and response.status}")
                        continue
                    try:
                        assert_accessible(page, where)
                    except pytest.fail.Exception:
                        problems.append(f"{where}: {'; '.join(_violations(page))}")
                    checked += 1
    finally:
        for context in contexts:
            context.close()

    print(f"\nAccessibility sweep: {len(pages)} pages checked at desktop and phone widths ({checked} views)")
    for result in pages:
        print(f"  page  {result.pattern.name:32} {result.url} as {result.role}")
    for result in probes:
        if result.kind and result.kind != "page":
            print(f"  skip  {result.pattern.name:32} {result.pattern.route}: {result.kind}")
    assert not problems, "\n".join(problems)
    assert len(pages) >= 8, f"only {len(pages)} pages found: the URLconf walk is broken"
