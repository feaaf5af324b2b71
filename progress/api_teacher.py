"""The teacher's API: their sections as a heatmap, suggested small groups, and the flag queue with its
actions. Only the teacher's own sections and students: anything else answers 404."""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils.dateparse import parse_date
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from progress import dashboard_selectors, flag_services
from progress.groups import section_groups
from progress.models import CompetencyMastery, InterventionFlag
from roster.permissions import ERROR_ANSWER, ErrorAnswersSchema, IsTeacher

POINTS = {"max_digits": 8, "decimal_places": 2, "allow_null": True}


class SectionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    code = serializers.CharField()
    school = serializers.CharField(source="school.name")
    term = serializers.CharField(source="term.title", allow_null=True, default=None)
    student_count = serializers.IntegerField()


class HeatmapCompetencySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()


class HeatmapCellSerializer(serializers.Serializer):
    competency_id = serializers.IntegerField()
    state = serializers.ChoiceField(choices=CompetencyMastery.State.choices)
    level = serializers.DecimalField(**POINTS, help_text="The level's points on the mastery scale.")
    level_name = serializers.CharField(allow_blank=True)
    score = serializers.DecimalField(**POINTS)


class HeatmapStudentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    open_flags = serializers.IntegerField(help_text="Flags not resolved.")
    cells = HeatmapCellSerializer(many=True)


class HeatmapSerializer(serializers.Serializer):
    competencies = HeatmapCompetencySerializer(many=True)
    students = HeatmapStudentSerializer(many=True)


class GroupSerializer(serializers.Serializer):
    competency_id = serializers.IntegerField()
    code = serializers.CharField()
    kind = serializers.ChoiceField(choices=[("stuck", "Stuck"), ("ready", "Ready")])
    reason = serializers.CharField()
    students = serializers.ListField(child=serializers.IntegerField())


class FlagSerializer(serializers.ModelSerializer):
    student_name = serializers.SerializerMethodField()
    competency_code = serializers.CharField(source="competency.code", allow_null=True, default=None)

    class Meta:
        model = InterventionFlag
        fields = [
            "id",
            "student",
            "student_name",
            "competency",
            "competency_code",
            "kind",
            "reason",
            "suggestion",
            "suggestion_data",
            "status",
            "opened_at",
            "snoozed_until",
            "resolved_at",
            "resolution_note",
            "is_auto_resolved",
        ]

    def get_student_name(self, flag: InterventionFlag) -> str:
        return flag.student.get_full_name() or flag.student.username


class FlagActionSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class FlagSnoozeSerializer(FlagActionSerializer):
    until = serializers.CharField(help_text="A date after today, YYYY-MM-DD.")


@extend_schema(tags=["teacher"], summary="The caller's sections", responses=SectionSerializer(many=True))
class SectionListView(APIView):
    permission_classes = [IsTeacher]
    schema = ErrorAnswersSchema()

    def get(self, request: Request) -> Response:
        sections = dashboard_selectors.section_list_for_teacher(user=request.user)
        return Response(SectionSerializer(sections, many=True).data)


@extend_schema(tags=["teacher"], summary="Students x competencies of a section", responses=HeatmapSerializer)
class SectionHeatmapView(APIView):
    permission_classes = [IsTeacher]
    schema = ErrorAnswersSchema()

    def get(self, request: Request, pk: int) -> Response:
        section = dashboard_selectors.access_section(user=request.user, section_id=pk)
        return Response(HeatmapSerializer(dashboard_selectors.section_heatmap(section=section)).data)


@extend_schema(
    tags=["teacher"],
    summary="Suggested small groups: students stuck on, or ready for, the same competency",
    responses=GroupSerializer(many=True),
)
class SectionGroupsView(APIView):
    permission_classes = [IsTeacher]
    schema = ErrorAnswersSchema()

    def get(self, request: Request, pk: int) -> Response:
        section = dashboard_selectors.access_section(user=request.user, section_id=pk)
        return Response(GroupSerializer(section_groups(section=section), many=True).data)


@extend_schema(
    tags=["teacher"],
    summary="Intervention flags of the caller's students",
    parameters=[
        OpenApiParameter("section", int, description="Only this section's students."),
        OpenApiParameter("status", str, enum=InterventionFlag.Status.values),
    ],
    responses={
        200: FlagSerializer(many=True),
        404: OpenApiResponse(ERROR_ANSWER, description="The section is not one of the caller's."),
    },
)
class FlagListView(APIView):
    permission_classes = [IsTeacher]
    schema = ErrorAnswersSchema()

    def get(self, request: Request) -> Response:
        section = request.query_params.get("section")
        status = request.query_params.get("status") or None
        if section is not None and not section.isdigit():
            raise serializers.ValidationError({"section": "A section id."})
        if status is not None and status not in InterventionFlag.Status.values:
            raise serializers.ValidationError(
                {"status": f"One of {', '.join(InterventionFlag.Status.values)}."}
            )
        flags = dashboard_selectors.flag_list_for_teacher(
            user=request.user, section_id=int(section) if section is not None else None, status=status
        )
        return Response(FlagSerializer(flags, many=True).data)


class _FlagActionView(APIView):
    permission_classes = [IsTeacher]
    schema = ErrorAnswersSchema()
    body: ClassVar[type[serializers.Serializer]] = FlagActionSerializer

    def post(self, request: Request, pk: int) -> Response:
        flag = dashboard_selectors.access_flag(user=request.user, flag_id=pk)
        body = self.body(data=request.data)
        body.is_valid(raise_exception=True)
        flag = self.act(flag=flag, user=request.user, **body.validated_data)
        return Response(FlagSerializer(flag).data)

    def act(self, **kwargs: Any) -> InterventionFlag:
        raise NotImplementedError


@extend_schema(
    tags=["teacher"], summary="Acknowledge a flag", request=FlagActionSerializer, responses=FlagSerializer
)
class FlagAcknowledgeView(_FlagActionView):
    def act(self, **kwargs: Any) -> InterventionFlag:
        return flag_services.flag_acknowledge(**kwargs)


@extend_schema(
    tags=["teacher"], summary="Resolve a flag", request=FlagActionSerializer, responses=FlagSerializer
)
class FlagResolveView(_FlagActionView):
    def act(self, **kwargs: Any) -> InterventionFlag:
        return flag_services.flag_resolve(**kwargs)


@extend_schema(
    tags=["teacher"],
    summary="Snooze a flag until a date",
    request=FlagSnoozeSerializer,
    responses=FlagSerializer,
)
class FlagSnoozeView(_FlagActionView):
    body = FlagSnoozeSerializer

    def act(self, *, until: str, **kwargs: Any) -> InterventionFlag:
        try:
            day = parse_date(until)
        except ValueError:
            day = None
        if day is None:
            raise serializers.ValidationError({"until": "A date, YYYY-MM-DD."})
        return flag_services.flag_snooze(until=day, **kwargs)
