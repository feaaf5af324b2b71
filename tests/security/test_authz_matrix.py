"""Authorization matrix (issue #7): every API endpoint and page x role x object owner.

Each cell asks one URL as one role about one object and checks the declared policy
(``tests/security/matrix.py``): allowed callers get the policy's status; anonymous callers are asked to
sign in; other roles are refused; an object outside the caller's reach answers 404 exactly as a missing
id does; a refused write changes no row of any project table; and no response carries a leak token of
a person or district the caller may not see, nor (to a student) an answer key.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.test import Client

from tests.security import matrix
from tests.security.conftest import SUMMARY
from tests.security.world import (
    KEY_TOKEN,
    PERSON_OWNERS,
    ROLE_TABLE,
    World,
    district_token,
    identifier_of,
    missing_value,
    person_token,
)

CELLS = matrix.cells()
ROUTES = matrix.project_routes()
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SNAPSHOT_APPS = ("roster", "competencies", "assessments", "progress", "mastery", "authtoken")

STATS: dict[str, int] = {"asserted": 0}


def matrix_size() -> dict[str, int]:
    tested = sorted({route for route, *_ in CELLS})
    return {
        "endpoints": len(tested),
        "endpoint_methods": len({(route, method) for route, method, *_ in CELLS}),
        "roles": len(ROLE_TABLE),
        "cells": len(CELLS),
    }


def _url(world: World, route: str, owner: str) -> str:
    """The route with every parameter filled for ``owner``."""
    params = matrix.object_params(route)
    values: dict[str, str] = {}
    for index, (name, kind) in enumerate(params):
        if owner == "missing":
            values[name] = (
                missing_value(kind) if index == 0 else identifier_of(kind, _object(world, kind, "a1"))
            )
        elif owner == "mixed" and index > 0:
            source_kind, source_owner = matrix.mixed_source(kind)
            values[name] = identifier_of(kind, _object(world, source_kind, source_owner))
        else:
            first = params[0][1] in matrix.DISTRICT_KINDS
            own = ("A" if first else "a1") if owner == "mixed" else owner
            values[name] = identifier_of(kind, _object(world, kind, own))
    policy = matrix.POLICIES[route]

    def fill(match) -> str:
        name = match["name"]
        if name in values:
            return values[name]
        return matrix.LITERALS[matrix.param_kind(route, name, policy)]

    return "/" + matrix._PARAM.sub(fill, route)


def _object(world: World, kind: str, owner: str) -> Any:
    if kind in matrix.DISTRICT_KINDS and owner in PERSON_OWNERS:
        owner = "B" if owner == "b" else "A"
    return world.get(kind, owner)


def _snapshot_models() -> list:
    models = []
    for label in SNAPSHOT_APPS:
        try:
            models += list(apps.get_app_config(label).get_models())
        except LookupError:
            continue
    return models


def snapshot() -> dict[str, Any]:
    """Every row of every project table (history tables included), in primary-key order. One query on
    PostgreSQL (each table as JSON); one query per table elsewhere."""
    models = _snapshot_models()
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        columns = ", ".join(
            f"(SELECT json_agg(t ORDER BY t.{quote(model._meta.pk.column)})::text "
            f"FROM {quote(model._meta.db_table)} t)"
            for model in models
        )
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {columns}")
            values = cursor.fetchone()
        return {model._meta.label: value for model, value in zip(models, values, strict=True)}
    return {model._meta.label: list(model.objects.order_by("pk").values_list()) for model in models}


def _request(client: Client, method: str, url: str, policy: matrix.Policy, world: World, owner: str):
    body = policy.bodies.get(method)
    if callable(body):
        body = body(world, owner)
    if policy.api:
        data = json.dumps(body) if body is not None else ""
        return client.generic(method, url, data=data, content_type="application/json")
    if method == "GET":
        return client.get(url)
    return client.generic(
        method, url, data=_form_encode(body or {}), content_type="application/x-www-form-urlencoded"
    )


def _form_encode(body: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode(body)


def _client(world: World, role: str) -> Client:
    """A client signed in as ``role`` (with the session made when the world was built)."""
    client = Client()
    if role != "anonymous":
        client.cookies[settings.SESSION_COOKIE_NAME] = world.cookies[role]
    return client


def _text(response) -> str:
    content_type = response.get("Content-Type", "")
    if not content_type.startswith(("text/", "application/json", "application/problem+json")):
        return ""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode("utf-8", errors="replace")


def _forbidden_tokens(role_name: str, policy: matrix.Policy) -> list[str]:
    role = ROLE_TABLE[role_name]
    tokens: list[str] = []
    if policy.leak_check:
        tokens += [person_token(owner) for owner in PERSON_OWNERS if not role.sees_person(owner)]
        tokens += [district_token(name) for name in ("A", "B") if not role.sees_district(name)]
    if role.kind == "student" and policy.keys_hidden:
        tokens.append(KEY_TOKEN)
    return tokens


def _describe(response) -> str:
    text = _text(response)[:300]
    return f"{response.status_code} {response.get('Location', '')} {text!r}"


def test_every_pattern_has_a_policy():
    """A route the matrix cannot test fails here, by name (add it to POLICIES, or teach the matrix
    how to fill its parameters)."""
    problems = [problem for route in ROUTES if (problem := matrix.route_problem(route))]
    assert problems == []


def test_policies_name_only_existing_routes():
    """A policy for a route that no longer exists is a stale promise."""
    assert sorted(set(matrix.POLICIES) - set(ROUTES)) == []


def test_matrix_size(record_property):
    size = matrix_size()
    for key, value in size.items():
        record_property(key, value)
    line = (
        "authorization matrix: {endpoints} endpoints ({endpoint_methods} endpoint x method) x "
        "{roles} roles x owners = {cells} cells".format(**size)
    )
    print(line)
    SUMMARY["matrix"] = line
    assert size["roles"] == 7
    assert size["cells"] == len(CELLS) > 0


@pytest.mark.parametrize(
    ("route", "method", "role", "owner"), CELLS, ids=[f"{m} /{r} as {ro} on {o}" for r, m, ro, o in CELLS]
)
def test_cell(world, db, route, method, role, owner):
    policy = matrix.POLICIES[route]
    outcome = matrix.expected(route, method, role, owner)
    client = _client(world, role)
    url = _url(world, route, owner)
    is_write = method in WRITE_METHODS
    before = snapshot() if is_write and outcome != "allowed" else None

    response = _request(client, method, url, policy, world, owner)
    status = response.status_code

    if outcome == "allowed":
        assert status == policy.methods[method], f"{method} {url}: {_describe(response)}"
    elif outcome == "anonymous":
        if policy.api:
            assert status in (401, 403), f"{method} {url}: {_describe(response)}"
        else:
            assert status == 302, f"{method} {url}: {_describe(response)}"
            assert response["Location"].startswith("/accounts/login/"), response["Location"]
    elif outcome == "role":
        assert status == (403 if policy.api else 404), f"{method} {url}: {_describe(response)}"
    else:
        assert outcome == "hidden"
        assert status == 404, f"{method} {url}: {_describe(response)}"
        if owner != "missing":
            missing = _request(client, method, _url(world, route, "missing"), policy, world, "missing")
            assert missing.status_code == 404
            if policy.api:
                assert response.json() == missing.json()

    text = _text(response)
    leaked = [token for token in _forbidden_tokens(role, policy) if token in text]
    assert leaked == [], f"{method} {url} as {role}: {leaked} in {text[:500]!r}"

    if before is not None:
        after = snapshot()
        changed = sorted(label for label in before if before[label] != after.get(label))
        assert changed == [], f"refused {method} {url} as {role} changed {changed}"
    STATS["asserted"] += 1
    SUMMARY["matrix cells"] = f"authorization matrix: {STATS['asserted']} cells asserted in this run"
