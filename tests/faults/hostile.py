"""Shared pieces of the hostile-input tests: counts of the examples tried, the database's row counts
(to prove that a refused import wrote nothing), and strategies that break a valid file."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

from django.apps import apps
from hypothesis import strategies as st

#: Examples tried, per importer or entry point, and how they ended: printed at the end of the session.
TRIED: Counter[tuple[str, str]] = Counter()

#: Apps whose tables an importer may touch.
IMPORT_APPS = ("roster", "competencies", "assessments", "progress")


def row_counts() -> dict[str, int]:
    """The number of rows of every model of the importing apps (history tables included)."""
    return {
        model._meta.label: model._default_manager.count()
        for app in IMPORT_APPS
        for model in apps.get_app_config(app).get_models()
    }


def assert_clear(messages: list[str]) -> None:
    """A refusal lists at least one message, every one a readable sentence (no traceback, no repr)."""
    assert messages, "a refusal without a message"
    for message in messages:
        assert isinstance(message, str) and message.strip(), messages
        assert "Traceback" not in message and "object at 0x" not in message, message


json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _mutate(document: Any, operations: list[tuple[int, str, Any]]) -> Any:
    document = copy.deepcopy(document)
    for pick, operation, value in operations:
        paths = [path for path in _paths(document) if path]
        if not paths:
            return value
        path = paths[pick % len(paths)]
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        if operation == "delete":
            del parent[key]
        elif operation == "replace":
            parent[key] = value
        elif operation == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    return document


def mutated(document: Any) -> st.SearchStrategy:
    """``document`` with up to five random edits: delete, replace with any JSON, duplicate an entry."""
    operation = st.tuples(
        st.integers(0, 10**6), st.sampled_from(["delete", "replace", "replace", "duplicate"]), json_values
    )
    return st.lists(operation, min_size=1, max_size=5).map(lambda operations: _mutate(document, operations))


def as_source(value: Any, encoding: str) -> bytes | str | dict:
    if encoding == "dict" and isinstance(value, dict):
        return value
    text = json.dumps(value, allow_nan=True)
    return text if encoding == "str" else text.encode()
