"""The progress API: the student's path, one student's progress for the adults who may see it, and
recording that a lesson resource was opened. Thin: authorize, call one selector or service, format."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from competencies.models import LearningResource
from progress import selectors, services
from roster.models import User
from roster.permissions import ErrorAnswersSchema, HasRole, IsStudent

DETAIL = inline_serializer("ProgressDetail", fields={"detail": serializers.CharField()})


class AnyRole(HasRole):
    roles = (User.Role.STUDENT, User.Role.TEACHER, User.Role.DISTRICT_STAFF)


class PathResourceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.CharField()
    url = serializers.URLField()
    embed_url = serializers.CharField(allow_null=True)
    duration_minutes = serializers.IntegerField(allow_null=True)


class PathAssessmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=["practice", "mastery_check"])
    can_start = serializers.BooleanField()
    reason = serializers.CharField(allow_null=True, help_text="Why not, in the words the start would give.")


class PathCompetencySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    identifier = serializers.UUIDField()
    code = serializers.CharField()
    statement = serializers.CharField()
    parent = serializers.IntegerField(allow_null=True)
    depth = serializers.IntegerField(help_text="0 for a root of the framework's tree.")
    state = serializers.ChoiceField(choices=["locked", "ready", "in_progress", "mastered"])
    score = serializers.DecimalField(max_digits=8, decimal_places=2, allow_null=True)
    level = serializers.CharField(allow_null=True, help_text="The mastery scale level's name.")
    level_points = serializers.DecimalField(max_digits=8, decimal_places=2, allow_null=True)
    resources = PathResourceSerializer(many=True)
    assessments = PathAssessmentSerializer(many=True)


class MyPathView(APIView):
    permission_classes = [IsStudent]
    schema = ErrorAnswersSchema()

    @extend_schema(
        tags=["progress"],
        summary="My competencies in path order, with state, lessons and what I can start now",
        responses={200: PathCompetencySerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.student_path(student=request.user))


class StudentProgressView(APIView):
    permission_classes = [AnyRole]
    schema = ErrorAnswersSchema()

    @extend_schema(
        tags=["progress"],
        summary="One student's mastery per competency, with its evidence and the calculation shown",
        description="Teachers of the student's sections, district staff of the student's district, and "
        "the student. Anyone else gets 404.",
        responses={
            200: inline_serializer(
                "StudentProgress",
                fields={
                    "student": serializers.DictField(),
                    "competencies": serializers.ListField(child=serializers.DictField()),
                },
            ),
            404: DETAIL,
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        try:
            student = selectors.access_student(user=request.user, student_id=pk)
        except User.DoesNotExist:
            return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
        return Response(selectors.student_progress(student=student))


class ResourceViewedView(APIView):
    permission_classes = [IsStudent]
    schema = ErrorAnswersSchema()

    @extend_schema(
        tags=["progress"],
        summary="Record that I opened a lesson resource (what view_resources remediation asks for)",
        request=None,
        responses={
            200: inline_serializer(
                "ResourceViewed",
                fields={
                    "resource": serializers.IntegerField(),
                    "last_viewed_at": serializers.DateTimeField(),
                },
            ),
            404: DETAIL,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        resource = (
            LearningResource.objects.filter(
                Q(competency__framework__district__isnull=True)
                | Q(competency__framework__district_id=request.user.district_id),
                pk=pk,
            )
            .only("pk")
            .first()
        )
        if resource is None:
            return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
        view = services.lesson_resource_viewed(student=request.user, resource=resource)
        return Response({"resource": resource.pk, "last_viewed_at": view.last_viewed_at})
