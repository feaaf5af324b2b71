"""Mastery is stored sparsely: what a missing row means, derived on read.

``CompetencyMastery`` holds a row only for a (student, competency) with something to say: evidence, a
score, work in progress, mastery, a teacher's override or unlock, or an explanation of its own. A row
that would only say "locked" or "ready" with no evidence (a *blank* row) is not stored: in a district
of 30,000 students x 150 competencies that is ~95% of the grid, and writing it made a district recompute
write twenty times the rows its evidence calls for. Its state follows from the stored rows around it, by
the recompute's own rules (``services.mastery_recompute``):

- a leaf is ready when every prerequisite is mastered (a teacher's unlock is a stored row), else locked;
- an inner node is ready when any child is ready or its own prerequisites are all mastered, else locked
  (a child in progress or mastered gives the node activity or a score, hence a stored row; the rule
  below still follows the recompute if a caller asks about such a node before its recompute).

Its other values are the same for every student: no score, no level, no evidence, the competency's
method, and the calculation's words with no evidence (``blank_values``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from django.db.models import Subquery

from competencies.models import Competency, Prerequisite
from progress import catalog
from progress.models import CompetencyMastery

State = CompetencyMastery.State
_STARTED = (State.IN_PROGRESS, State.MASTERED)


def blank_states(
    *,
    student_ids: Sequence[int],
    competency_ids: Sequence[int],
    stored: Mapping[tuple[int, int], str],
) -> dict[tuple[int, int], str]:
    """The derived state ("ready" or "locked") of every (student, competency) pair of the two lists that
    is not in ``stored``.

    ``stored`` maps the stored rows' (student id, competency id) to their state; it must hold every
    stored row of these students for these competencies. Two queries (the competencies of the same
    frameworks, the prerequisite edges), a third only when a prerequisite or a descendant lies outside
    ``competency_ids`` (its stored states), none when nothing is missing.
    """
    wanted = list(dict.fromkeys(competency_ids))
    missing = [
        (student_id, competency_id)
        for student_id in student_ids
        for competency_id in wanted
        if (student_id, competency_id) not in stored
    ]
    if not missing:
        return {}
    frameworks = Competency.objects.filter(pk__in=wanted).values("framework_id")
    children: dict[int, list[int]] = defaultdict(list)
    for competency_id, parent_id in (
        Competency.objects.filter(framework_id__in=Subquery(frameworks))
        .order_by("position", "pk")
        .values_list("pk", "parent_id")
    ):
        if parent_id is not None:
            children[parent_id].append(competency_id)
    prerequisites: dict[int, list[int]] = defaultdict(list)
    for competency_id, prerequisite_id in (
        Prerequisite.objects.filter(competency__framework_id__in=Subquery(frameworks))
        .order_by()
        .values_list("competency_id", "prerequisite_id")
    ):
        prerequisites[competency_id].append(prerequisite_id)

    # Every competency whose state a wanted one may read: its prerequisites, its descendants and theirs.
    needed: set[int] = set()
    stack = list(wanted)
    while stack:
        competency_id = stack.pop()
        if competency_id in needed:
            continue
        needed.add(competency_id)
        stack.extend(children.get(competency_id, ()))
        needed.update(prerequisites.get(competency_id, ()))
    states: dict[tuple[int, int], str] = dict(stored)
    extra = needed - set(wanted)
    if extra:
        states.update(
            ((student_id, competency_id), state)
            for student_id, competency_id, state in CompetencyMastery.objects.filter(
                student_id__in=list(student_ids), competency_id__in=sorted(extra)
            )
            .order_by()
            .values_list("student_id", "competency_id", "state")
        )
    return _derive(student_ids, wanted, states, children, prerequisites)


def _derive(
    student_ids: Sequence[int],
    wanted: list[int],
    states: Mapping[tuple[int, int], str],
    children: Mapping[int, list[int]],
    prerequisites: Mapping[int, list[int]],
) -> dict[tuple[int, int], str]:
    """``derived_state`` for every missing wanted pair, the fast way for a page of students: the
    competencies once in an order where parts and prerequisites come first, then one pass per student
    over a plain dict (a heatmap's 40 x 150 in a few milliseconds)."""
    order: list[int] = []
    seen: set[int] = set()

    def visit(competency_id: int) -> None:
        if competency_id in seen:
            return
        seen.add(competency_id)
        for part in children.get(competency_id, ()):
            visit(part)
        for prerequisite_id in prerequisites.get(competency_id, ()):
            visit(prerequisite_id)
        order.append(competency_id)

    for competency_id in wanted:
        visit(competency_id)
    wanted_set = set(wanted)
    plan = [
        (
            competency_id,
            tuple(prerequisites.get(competency_id, ())),
            tuple(children.get(competency_id, ())),
            competency_id in wanted_set,
        )
        for competency_id in order
    ]
    out: dict[tuple[int, int], str] = {}
    for student_id in student_ids:
        known: dict[int, str] = {}
        for competency_id, needs, parts, is_wanted in plan:
            state = states.get((student_id, competency_id))
            if state is None:
                state = _rule(
                    all(known.get(prerequisite_id) == State.MASTERED for prerequisite_id in needs),
                    [known[part] for part in parts],
                )
                if is_wanted:
                    out[(student_id, competency_id)] = state
            known[competency_id] = state
    return out


def student_states(*, student_id: int, competency_ids: Sequence[int]) -> dict[int, str]:
    """competency id -> the student's state of it, stored or derived. Three queries (four when a
    prerequisite or a descendant lies outside ``competency_ids``)."""
    stored = {
        (student_id, competency_id): state
        for competency_id, state in CompetencyMastery.objects.filter(
            student_id=student_id, competency_id__in=list(competency_ids)
        ).values_list("competency_id", "state")
    }
    stored.update(blank_states(student_ids=[student_id], competency_ids=competency_ids, stored=stored))
    return {competency_id: stored[(student_id, competency_id)] for competency_id in competency_ids}


def derived_state(
    student_id: int,
    competency_id: int,
    states: dict[tuple[int, int], str],
    children: Mapping[int, list[int]],
    prerequisites: Mapping[int, list[int]],
) -> str:
    """A state, stored or derived from ``states`` (the stored ones, keyed by (student, competency)),
    ``children`` and ``prerequisites``; memoised in ``states``, so a child's serves its parent."""
    key = (student_id, competency_id)
    if key in states:
        return states[key]
    own_ready = all(
        states.get((student_id, prerequisite_id)) == State.MASTERED
        for prerequisite_id in prerequisites.get(competency_id, ())
    )
    part_states = [
        derived_state(student_id, part, states, children, prerequisites)
        for part in children.get(competency_id, ())
    ]
    states[key] = _rule(own_ready, part_states)
    return states[key]


def _rule(own_ready: bool, part_states: list[str]) -> str:
    """The state of a competency with no row, from whether its own prerequisites are all mastered and
    its parts' states (none for a leaf): the recompute's rule (``services.mastery_recompute``)."""
    if not part_states:
        return State.READY if own_ready else State.LOCKED
    if all(part == State.MASTERED for part in part_states):
        return State.MASTERED
    if any(part in _STARTED for part in part_states):
        return State.IN_PROGRESS
    if own_ready or State.READY in part_states:
        return State.READY
    return State.LOCKED


def blank_values(competencies: Iterable[Competency]) -> dict[int, tuple[str, str]]:
    """competency id -> (method, explanation) of a blank row: what the recompute stores with no evidence.
    Two queries (the scales' levels and the fitted BKT parameters), whatever the number of competencies;
    the competencies need ``framework`` loaded (``select_related``) and, for inner nodes, their children
    count comes from one more query."""
    # Imported here: services imports this module, and the rules live there.
    from progress.services import _compute_leaf, _method_of

    competencies = list(competencies)
    if not competencies:
        return {}
    ids = [competency.pk for competency in competencies]
    part_counts: dict[int, int] = defaultdict(int)
    for parent_id in Competency.objects.filter(parent_id__in=ids).values_list("parent_id", flat=True):
        part_counts[parent_id] += 1
    scale_ids = {competency.framework.mastery_scale_id for competency in competencies} - {None}
    levels = catalog.levels_by_scale(scale_ids)
    bkt = catalog.bkt_parameters(ids)
    values: dict[int, tuple[str, str]] = {}
    for competency in competencies:
        count = part_counts.get(competency.pk, 0)
        if count:
            values[competency.pk] = ("", roll_up_blank_text(count))
        else:
            leaf = _compute_leaf(
                competency, [], levels.get(competency.framework.mastery_scale_id, []), bkt.get(competency.pk)
            )
            values[competency.pk] = (_method_of(competency)[0], leaf.explanation)
    return values


def roll_up_blank_text(parts: int) -> str:
    """An inner node's calculation in words when none of its parts has a score or is mastered."""
    return f"roll-up: 0 of {parts} parts mastered; no scores yet; mastered when every part is"
