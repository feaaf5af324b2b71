"""API fuzzing (issue #7): schemathesis against the OpenAPI schema drf-spectacular serves at
/api/schema/, in process against the WSGI app, as each role (token authentication).

For every operation and role, a bounded number of generated requests (``EXAMPLES``): never a 500,
every response conforms to the schema (status code documented, content type, body), and no response
to a student carries an answer-key field or value.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security import matrix
from tests.security.conftest import SUMMARY
from tests.security.world import KEY_TOKEN, identifier_of

pytestmark = [pytest.mark.fuzz]

EXAMPLES = 10
FUZZ_ROLES = ("anonymous", "student", "teacher", "staff")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

#: Field names that hold an answer key somewhere in the project (assessments models and the staff
#: serializers): none may appear in anything a student reads.
KEY_FIELDS = {
    "correct",
    "is_correct",
    "accepted",
    "accepted_answers",
    "answer_value",
    "answer_tolerance",
    "tolerance",
    "rubric",
    "rubric_levels",
    "key",
    "key_version",
    "partial_credit",
}

EXAMPLES_RUN: Counter[str] = Counter()


def _load_schema():
    from mastery.wsgi import application

    loaded = schemathesis.openapi.from_wsgi("/api/schema/", application)
    # Valid requests only (a path parameter that is not an integer never reaches the API: Django's URL
    # resolver answers its HTML 404), from the examples and the fuzzing phases; the coverage phase's
    # hundreds of boundary cases per operation do not fit the time budget.
    loaded.config.generation.update(modes=[GenerationMode.POSITIVE], max_examples=EXAMPLES, no_shrink=True)
    loaded.config.phases.coverage.enabled = False
    return loaded


schema = _load_schema()


def key_fields_in(payload: Any, path: str = "$") -> list[str]:
    """Paths of answer-key fields anywhere in a JSON payload."""
    found = []
    if isinstance(payload, dict):
        for name, value in payload.items():
            if name in KEY_FIELDS:
                found.append(f"{path}.{name}")
            found += key_fields_in(value, f"{path}.{name}")
    elif isinstance(payload, list):
        for index, value in enumerate(payload):
            found += key_fields_in(value, f"{path}[{index}]")
    return found


def test_key_fields_in_finds_nested_keys():
    payload = {"items": [{"id": 1, "choices": [{"id": 2, "text": "a", "correct": True}]}], "key": None}
    assert key_fields_in(payload) == ["$.items[0].choices[0].correct", "$.key"]
    assert key_fields_in({"items": [{"answer": "4", "score": "1.00"}]}) == []


@pytest.fixture(autouse=True, scope="module")
def _requests_keep_the_test_connection():
    """The WSGI app closes the database connection at the end of every request (CONN_MAX_AGE 0),
    which would end the test's transaction; Django's test client unhooks the same receivers."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(world, db) -> dict[str, dict[str, str]]:
    headers = {"anonymous": {}}
    for role in FUZZ_ROLES[1:]:
        token, _ = Token.objects.get_or_create(user=world.users[role])
        headers[role] = {"Authorization": f"Token {token.key}"}
    return headers


def _aim_at_real_objects(case, world) -> None:
    """Most generated path ids are replaced by ids of the world's objects (the caller's own and
    everyone else's, chosen by the generated value), so that the requests reach real attempts, flags,
    items and sections instead of 404 alone."""
    route = case.path.replace("{", "<").replace("}", ">")
    for name, value in list((case.path_parameters or {}).items()):
        kind = matrix.param_kind(route, name, None)
        if kind not in world.objects:
            continue
        candidates = [identifier_of(kind, obj) for obj in world.objects[kind].values()]
        number = value if isinstance(value, int) else sum(map(ord, str(value)))
        slot = number % (len(candidates) + 1)
        if slot < len(candidates):
            case.path_parameters[name] = int(candidates[slot]) if isinstance(value, int) else candidates[slot]


def _exercise(case, role: str, headers: dict[str, str], world) -> None:
    _aim_at_real_objects(case, world)
    response = case.call(headers=headers)
    EXAMPLES_RUN[role] += 1
    case.validate_response(response, checks=CHECKS)
    if role == "student" and response.headers.get("Content-Type", [""])[0].startswith("application/json"):
        text = response.text
        assert KEY_TOKEN not in text, f"{case.method} {case.formatted_path}: answer key in {text[:300]}"
        leaked = key_fields_in(json.loads(text)) if text else []
        assert leaked == [], f"{case.method} {case.formatted_path}: {leaked}"


def _fuzz_as(role: str):
    # The CASE provider answers everyone alike (no login): fuzzed once, anonymously.
    operations = schema if role == "anonymous" else schema.exclude(path_regex="^/ims/case/")

    @operations.parametrize()
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def test(case, tokens, world):
        _exercise(case, role, tokens[role], world)

    test.__name__ = f"test_api_as_{role}"
    return test


test_api_as_anonymous = _fuzz_as("anonymous")
test_api_as_student = _fuzz_as("student")
test_api_as_teacher = _fuzz_as("teacher")
test_api_as_staff = _fuzz_as("staff")


def test_examples_run_per_role(record_property):
    """Runs after the fuzzing above (same module, later in file order): the figures for the report."""
    for role in FUZZ_ROLES:
        record_property(f"examples_{role}", EXAMPLES_RUN[role])
    line = f"schemathesis examples run per role: {dict(EXAMPLES_RUN)} (total {sum(EXAMPLES_RUN.values())})"
    print(line)
    SUMMARY["fuzz"] = line
    if EXAMPLES_RUN:
        assert all(EXAMPLES_RUN[role] > 0 for role in FUZZ_ROLES)
