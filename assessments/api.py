"""The assessments API: students take attempts; district staff keep the item bank.

Student payloads are built from the ``Student*`` serializers only, which have no key field (correct
flags, accepted answers, numeric value or tolerance, rubric): the test suite walks them to be sure.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from assessments import rescoring, selectors, services
from assessments.markdown import render_stem
from assessments.models import (
    Attempt,
    AttemptCompetencyScore,
    AttemptItem,
    Item,
    ItemChoice,
    RescoreJob,
)
from assessments.models import Response as ResponseRow
from roster.permissions import ERROR_ANSWER, ErrorAnswersSchema, IsDistrictStaff, IsStudent

DETAIL = inline_serializer("Detail", fields={"detail": serializers.CharField()})


# --- student payloads -----------------------------------------------------------------------------


class StudentChoiceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()


class StudentFormItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    type = serializers.ChoiceField(choices=Item.Type.choices)
    stem = serializers.CharField(help_text="Sanitised HTML; math left as \\( \\) or $$ $$ text.")
    points = serializers.DecimalField(max_digits=8, decimal_places=2)
    choices = StudentChoiceSerializer(many=True)


class StudentResponseSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    answer = serializers.JSONField(allow_null=True)
    saved_at = serializers.DateTimeField()
    score = serializers.DecimalField(
        max_digits=8, decimal_places=2, allow_null=True, required=False, help_text="After submit only."
    )
    needs_grading = serializers.BooleanField(required=False, help_text="After submit only.")
    feedback = serializers.CharField(required=False, help_text="The grader's note; after submit only.")


class StudentCompetencyResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    score = serializers.DecimalField(max_digits=8, decimal_places=2, help_text="On the mastery scale.")
    level = serializers.DecimalField(max_digits=8, decimal_places=2, allow_null=True)
    met = serializers.BooleanField()


class StudentAttemptStartSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    assessment = serializers.IntegerField()
    number = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Attempt.Status.choices)
    started_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField(allow_null=True)
    items = StudentFormItemSerializer(many=True)


class StudentAttemptSerializer(StudentAttemptStartSerializer):
    submitted_at = serializers.DateTimeField(allow_null=True)
    score = serializers.DecimalField(max_digits=8, decimal_places=2, allow_null=True)
    max_score = serializers.DecimalField(max_digits=8, decimal_places=2)
    competencies = StudentCompetencyResultSerializer(many=True)
    responses = StudentResponseSerializer(many=True)


class AnswerSerializer(serializers.Serializer):
    answer = serializers.JSONField(
        allow_null=True,
        help_text="single_choice: a choice id; multiple_choice: a list of choice ids; numeric: a number; "
        "short_text, extended_text: a string; null clears the answer.",
    )


#: Stems rendered to sanitised HTML, by their Markdown text. Rendering builds a Markdown parser each
#: time (about a millisecond a stem), and every start, submit and attempt payload lists the form's
#: stems: under load that was a good part of a submit's own work. Keyed by the text, so an edited stem
#: is simply a new entry; bounded, so a large bank cannot grow a process without limit.
_stem_html = functools.lru_cache(maxsize=4096)(render_stem)


def _form_payload(
    attempt_items: Sequence[AttemptItem], choices: Mapping[int, Sequence[ItemChoice]] | None = None
) -> list[dict[str, Any]]:
    """The form as a student sees it. ``choices`` (item id -> choices in order) when the caller has
    them; otherwise each item's prefetched ``choices``."""
    return [
        {
            "id": attempt_item.item.pk,
            "position": attempt_item.position,
            "type": attempt_item.item.type,
            "stem": _stem_html(attempt_item.item.stem),
            "points": attempt_item.item.max_points,
            "choices": [
                {"id": choice.pk, "text": choice.text}
                for choice in (
                    choices.get(attempt_item.item.pk, ())
                    if choices is not None
                    else attempt_item.item.choices.all()
                )
            ]
            if attempt_item.item.has_choices
            else [],
        }
        for attempt_item in attempt_items
    ]


def _start_payload(attempt: Attempt) -> dict[str, Any]:
    return StudentAttemptStartSerializer(
        {
            "id": attempt.pk,
            "assessment": attempt.assessment_id,
            "number": attempt.number,
            "status": attempt.status,
            "started_at": attempt.started_at,
            "deadline": attempt.deadline,
            "items": _form_payload(selectors.attempt_form(attempt=attempt)),
        }
    ).data


def _attempt_payload(attempt: Attempt) -> dict[str, Any]:
    """The attempt as stored. Four queries (responses, competency results, form, choices)."""
    return _result_payload(
        attempt,
        responses=selectors.attempt_responses(attempt=attempt).values(),
        competency_scores=selectors.attempt_competency_scores(attempt=attempt),
        form=selectors.attempt_form(attempt=attempt),
    )


def _submitted_payload(submitted: services.Submitted) -> dict[str, Any]:
    """The attempt a submit has just scored, from what the submit read and wrote: no query. The same
    payload as ``_attempt_payload`` gives afterwards (the API tests compare the two)."""
    if submitted.form is None:  # submitted before: the stored result
        return _attempt_payload(submitted.attempt)
    return _result_payload(
        submitted.attempt,
        responses=submitted.responses.values(),
        competency_scores=sorted(
            submitted.competency_scores, key=lambda row: (row.competency.position, row.competency_id)
        ),
        form=submitted.form,
        choices=submitted.choices,
    )


def _result_payload(
    attempt: Attempt,
    *,
    responses: Iterable[ResponseRow],
    competency_scores: Iterable[AttemptCompetencyScore],
    form: Sequence[AttemptItem],
    choices: Mapping[int, Sequence[ItemChoice]] | None = None,
) -> dict[str, Any]:
    is_open = attempt.status == Attempt.Status.IN_PROGRESS
    rows = []
    for response in responses:
        row: dict[str, Any] = {
            "item": response.item_id,
            "answer": response.answer,
            "saved_at": response.saved_at,
        }
        if not is_open:
            row.update(score=response.score, needs_grading=response.needs_grading, feedback=response.feedback)
        rows.append(row)
    competencies = [
        {
            "id": row.competency_id,
            "code": row.competency.code,
            "score": row.score,
            "level": row.level_points,
            "met": row.is_met,
        }
        for row in competency_scores
    ]
    return StudentAttemptSerializer(
        {
            "id": attempt.pk,
            "assessment": attempt.assessment_id,
            "number": attempt.number,
            "status": attempt.status,
            "started_at": attempt.started_at,
            "deadline": attempt.deadline,
            "submitted_at": attempt.submitted_at,
            "score": attempt.score,
            "max_score": attempt.max_score,
            "competencies": competencies,
            "items": _form_payload(form, choices),
            "responses": sorted(rows, key=lambda row: row["item"]),
        }
    ).data


def _not_found() -> Response:
    return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)


def _conflict(reason: str) -> Response:
    return Response({"detail": reason}, status=status.HTTP_409_CONFLICT)


# --- student views --------------------------------------------------------------------------------


class AttemptStartView(APIView):
    permission_classes = [IsStudent]
    schema = ErrorAnswersSchema()

    @extend_schema(
        tags=["attempts"],
        summary="Start an attempt (or resume the open one) on a freshly drawn form",
        request=None,
        responses={
            201: StudentAttemptStartSerializer,
            404: DETAIL,
            409: OpenApiResponse(DETAIL, description="The gate is closed; detail says why."),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        try:
            assessment = selectors.assessment_get_for_student(student=request.user, assessment_id=pk)
        except ObjectDoesNotExist:
            return _not_found()
        try:
            attempt = services.attempt_start(assessment=assessment, student=request.user)
        except services.AttemptRefused as refused:
            return _conflict(refused.reason)
        return Response(_start_payload(attempt), status=status.HTTP_201_CREATED)


class AttemptDetailView(APIView):
    permission_classes = [IsStudent]
    schema = ErrorAnswersSchema()

    @extend_schema(
        tags=["attempts"],
        summary="The attempt: its form, saved answers and, after submit, scores and feedback",
        responses={200: StudentAttemptSerializer, 404: DETAIL},
    )
    def get(self, request: Request, pk: int) -> Response:
        try:
            attempt = selectors.access_attempt(user=request.user, attempt_id=pk)
        except ObjectDoesNotExist:
            return _not_found()
        return Response(_attempt_payload(attempt))


class ResponseSaveView(APIView):
    permission_classes = [IsStudent]
    schema = ErrorAnswersSchema()

    @extend_schema(
        tags=["attempts"],
        summary="Autosave one answer",
        request=AnswerSerializer,
        responses={
            200: StudentResponseSerializer,
            400: ERROR_ANSWER,
            404: DETAIL,
            409: OpenApiResponse(DETAIL, description="Submitted, or the time limit has passed."),
        },
    )
    def put(self, request: Request, pk: int, item_id: int) -> Response:
        has_answer = isinstance(request.data, dict) and "answer" in request.data
        if has_answer:
            try:
                response = services.response_autosave(
                    student=request.user, attempt_id=pk, item_id=item_id, answer=request.data["answer"]
                )
            except services.AttemptClosed as closed:
                return _conflict(closed.reason)
            except ObjectDoesNotExist:
                pass  # not the student's attempt, or not on its form: the checks below say which
            else:
                return _saved(response)
        return self._save_checked(request, pk, item_id, has_answer=has_answer)

    @staticmethod
    def _save_checked(request: Request, pk: int, item_id: int, *, has_answer: bool) -> Response:
        """The autosave one check at a time, for the answers the two-statement autosave cannot give:
        an attempt that is not the student's or an unknown item (404), then no answer sent (400), a
        closed attempt (409), an item not on the form (404), in the order the API promises."""
        try:
            attempt = selectors.access_attempt(user=request.user, attempt_id=pk)
            item = Item.objects.get(pk=item_id)
        except ObjectDoesNotExist:
            return _not_found()
        if not has_answer:
            return Response({"detail": 'Send {"answer": ...}.'}, status=status.HTTP_400_BAD_REQUEST)
        try:
            response = services.response_save(attempt=attempt, item=item, answer=request.data["answer"])
        except services.ItemNotOnForm:
            return _not_found()
        except services.AttemptClosed as closed:
            return _conflict(closed.reason)
        return _saved(response)


def _saved(response: ResponseRow) -> Response:
    return Response(
        StudentResponseSerializer(
            {"item": response.item_id, "answer": response.answer, "saved_at": response.saved_at}
        ).data
    )


class AttemptSubmitView(APIView):
    permission_classes = [IsStudent]
    schema = ErrorAnswersSchema()

    @extend_schema(
        tags=["attempts"],
        summary="Submit and score; repeating it returns the same result",
        request=None,
        responses={200: StudentAttemptSerializer, 404: DETAIL},
    )
    def post(self, request: Request, pk: int) -> Response:
        try:
            submitted = services.attempt_submit_scored(student=request.user, attempt_id=pk)
        except ObjectDoesNotExist:
            return _not_found()
        return Response(_submitted_payload(submitted))


# --- staff item bank ------------------------------------------------------------------------------


class StaffChoiceSerializer(serializers.Serializer):
    id = serializers.IntegerField(required=False, help_text="Send it to keep an existing choice.")
    text = serializers.CharField()
    correct = serializers.BooleanField(default=False)


class StaffNumericAnswerSerializer(serializers.Serializer):
    value = serializers.DecimalField(max_digits=20, decimal_places=6)
    tolerance = serializers.DecimalField(max_digits=20, decimal_places=6, default=0, min_value=0)


class StaffRubricLevelSerializer(serializers.Serializer):
    points = serializers.DecimalField(max_digits=8, decimal_places=2, min_value=0)
    description = serializers.CharField()


class StaffAlignmentSerializer(serializers.Serializer):
    competency = serializers.IntegerField(
        help_text="A competency id of your district's or a shared framework."
    )
    points = serializers.DecimalField(max_digits=8, decimal_places=2, default=1, min_value=Decimal("0.01"))


class StaffItemSerializer(serializers.Serializer):
    """The staff shape: the item with its key. Key fields appear for the types they belong to."""

    id = serializers.IntegerField(read_only=True)
    type = serializers.ChoiceField(choices=Item.Type.choices)
    stem = serializers.CharField(help_text="Markdown.")
    stem_html = serializers.CharField(read_only=True, help_text="The stem as students see it.")
    status = serializers.ChoiceField(choices=Item.Status.choices, default=Item.Status.DRAFT)
    points = serializers.DecimalField(max_digits=8, decimal_places=2, min_value=Decimal("0.01"), default=1)
    key_version = serializers.IntegerField(read_only=True)
    alignments = StaffAlignmentSerializer(many=True, required=False)
    choices = StaffChoiceSerializer(many=True, required=False, help_text="Choice items.")
    partial_credit = serializers.BooleanField(required=False, help_text="Multiple choice.")
    answer = StaffNumericAnswerSerializer(required=False, help_text="Numeric items.")
    accepted = serializers.ListField(
        child=serializers.CharField(max_length=1000), required=False, help_text="Short-text items."
    )
    rubric = StaffRubricLevelSerializer(many=True, required=False, help_text="Extended-text items.")
    reason = serializers.CharField(
        write_only=True,
        required=False,
        max_length=2000,
        help_text="Why the key changes; kept on the rescoring job a key change creates.",
    )

    def validate_alignments(self, alignments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        wanted = {alignment["competency"] for alignment in alignments}
        visible = set(
            selectors.competency_list_for_staff(user=self.context["request"].user)
            .filter(pk__in=wanted)
            .values_list("pk", flat=True)
        )
        missing = sorted(wanted - visible)
        if missing:
            raise serializers.ValidationError(f"Unknown competency: {', '.join(map(str, missing))}.")
        if len(wanted) != len(alignments):
            raise serializers.ValidationError("Each competency may be aligned once.")
        return alignments


class StaffItemChangedSerializer(StaffItemSerializer):
    """The answer to a PATCH: the item, and the rescoring job when the change started one."""

    rescore_job = serializers.IntegerField(
        required=False,
        help_text="Only when the PATCH changed the key, points or alignments: the rescoring job's id "
        "(follow it at rescore-jobs/{id}/).",
    )


def _item_staff_payload(item: Item) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": item.pk,
        "type": item.type,
        "stem": item.stem,
        "stem_html": render_stem(item.stem),
        "status": item.status,
        "points": str(item.max_points),
        "key_version": item.key_version,
        "alignments": [
            {"competency": alignment.competency_id, "points": str(alignment.points)}
            for alignment in item.alignments.all()
        ],
    }
    if item.has_choices:
        payload["choices"] = [
            {"id": choice.pk, "text": choice.text, "correct": choice.is_correct}
            for choice in item.choices.all()
        ]
    if item.type == Item.Type.MULTIPLE_CHOICE:
        payload["partial_credit"] = item.partial_credit
    if item.type == Item.Type.NUMERIC:
        payload["answer"] = {
            "value": None if item.answer_value is None else str(item.answer_value.normalize()),
            "tolerance": str(item.answer_tolerance.normalize()),
        }
    if item.type == Item.Type.SHORT_TEXT:
        payload["accepted"] = list(item.accepted_answers)
    if item.type == Item.Type.EXTENDED_TEXT:
        payload["rubric"] = [
            {"points": str(level.points), "description": level.description}
            for level in sorted(item.rubric_levels.all(), key=lambda level: -level.points)
        ]
    return payload


def _service_arguments(data: dict[str, Any]) -> dict[str, Any]:
    """Serializer data -> keyword arguments of item_create / item_update."""
    arguments: dict[str, Any] = {}
    for field in ("type", "stem", "status", "partial_credit"):
        if field in data:
            arguments[field] = data[field]
    if "points" in data:
        arguments["max_points"] = data["points"]
    if "answer" in data:
        arguments["answer_value"] = data["answer"]["value"]
        arguments["answer_tolerance"] = data["answer"].get("tolerance", 0)
    if "accepted" in data:
        arguments["accepted_answers"] = data["accepted"]
    if "choices" in data:
        arguments["choices"] = [dict(choice) for choice in data["choices"]]
    if "rubric" in data:
        arguments["rubric"] = [dict(level) for level in data["rubric"]]
    if "alignments" in data:
        arguments["alignments"] = [dict(alignment) for alignment in data["alignments"]]
    return arguments


def _invalid(serializer: serializers.Serializer) -> Response:
    return Response({"detail": serializer.errors}, status=status.HTTP_400_BAD_REQUEST)


class ItemListView(APIView):
    permission_classes = [IsDistrictStaff]
    schema = ErrorAnswersSchema()

    @extend_schema(
        tags=["item bank"], summary="The item bank with keys", responses={200: StaffItemSerializer(many=True)}
    )
    def get(self, request: Request) -> Response:
        return Response(
            [_item_staff_payload(item) for item in selectors.item_list_for_staff(user=request.user)]
        )

    @extend_schema(
        tags=["item bank"],
        summary="Add an item to the district's bank",
        request=StaffItemSerializer,
        responses={201: StaffItemSerializer, 400: ERROR_ANSWER},
    )
    def post(self, request: Request) -> Response:
        serializer = StaffItemSerializer(data=request.data, context={"request": request})
        if not serializer.is_valid():
            return _invalid(serializer)
        item = services.item_create(
            district_id=request.user.district_id, **_service_arguments(serializer.validated_data)
        )
        item = selectors.item_list_for_staff(user=request.user).get(pk=item.pk)
        return Response(_item_staff_payload(item), status=status.HTTP_201_CREATED)


class ItemDetailView(APIView):
    permission_classes = [IsDistrictStaff]
    schema = ErrorAnswersSchema()

    @extend_schema(
        tags=["item bank"], summary="One item with its key", responses={200: StaffItemSerializer, 404: DETAIL}
    )
    def get(self, request: Request, pk: int) -> Response:
        try:
            item = selectors.item_list_for_staff(user=request.user).get(pk=pk)
        except ObjectDoesNotExist:
            return _not_found()
        return Response(_item_staff_payload(item))

    @extend_schema(
        tags=["item bank"],
        summary="Change an item; a change to its key, points or alignments raises key_version",
        request=StaffItemSerializer,
        responses={200: StaffItemChangedSerializer, 400: ERROR_ANSWER, 403: DETAIL, 404: DETAIL},
    )
    def patch(self, request: Request, pk: int) -> Response:
        try:
            item = selectors.item_list_for_staff(user=request.user).get(pk=pk)
        except ObjectDoesNotExist:
            return _not_found()
        if item.district_id != request.user.district_id:
            return Response(
                {"detail": "Shared items are read-only for a district."}, status=status.HTTP_403_FORBIDDEN
            )
        serializer = StaffItemSerializer(data=request.data, partial=True, context={"request": request})
        if not serializer.is_valid():
            return _invalid(serializer)
        with transaction.atomic():
            updated = services.item_update(
                item=item,
                data=_service_arguments(serializer.validated_data),
                user=request.user,
                reason=serializer.validated_data.get("reason", ""),
            )
        item = selectors.item_list_for_staff(user=request.user).get(pk=pk)
        payload = _item_staff_payload(item)
        job = getattr(updated, "rescore_job", None)
        if job is not None:
            payload["rescore_job"] = job.pk
        return Response(payload)


# --- rescoring jobs -------------------------------------------------------------------------------


class RescoreJobSerializer(serializers.ModelSerializer):
    items = serializers.PrimaryKeyRelatedField(many=True, read_only=True, help_text="The items rescored.")

    class Meta:
        model = RescoreJob
        fields = [
            "id",
            "status",
            "total",
            "done",
            "changed",
            "reason",
            "items",
            "assessment",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class RescoreJobDetailView(APIView):
    permission_classes = [IsDistrictStaff]
    schema = ErrorAnswersSchema()

    @extend_schema(
        tags=["item bank"],
        summary="A rescoring job's progress: total responses, done so far, how many changed score",
        responses={200: RescoreJobSerializer, 404: DETAIL},
    )
    def get(self, request: Request, pk: int) -> Response:
        try:
            job = rescoring.access_rescore_job(user=request.user, job_id=pk)
        except ObjectDoesNotExist:
            return _not_found()
        return Response(RescoreJobSerializer(job).data)
