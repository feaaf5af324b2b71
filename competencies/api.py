"""District staff's read API over the catalog: frameworks and their competencies."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView

from competencies import api_selectors
from competencies.models import Competency, Framework
from roster.permissions import ErrorAnswersSchema, IsDistrictStaff


class FrameworkSerializer(serializers.ModelSerializer):
    competency_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Framework
        fields = [
            "id",
            "identifier",
            "title",
            "version",
            "status",
            "calculation_method",
            "calculation_parameter",
            "mastery_scale",
            "competency_count",
            "updated_at",
        ]


class CompetencySerializer(serializers.ModelSerializer):
    prerequisites = serializers.SerializerMethodField()
    depth = serializers.IntegerField(source="tree_depth", read_only=True)

    class Meta:
        model = Competency
        fields = [
            "id",
            "identifier",
            "code",
            "statement",
            "item_type",
            "education_levels",
            "parent",
            "position",
            "depth",
            "prerequisites",
        ]

    def get_prerequisites(self, competency: Competency) -> list[int]:
        return self.context["prerequisites"].get(competency.pk, [])


@extend_schema(tags=["catalog"], summary="Frameworks of the caller's district")
class FrameworkListView(ListAPIView):
    serializer_class = FrameworkSerializer
    permission_classes = [IsDistrictStaff]
    schema = ErrorAnswersSchema()
    filterset_fields = ["status"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Framework.objects.none()
        return api_selectors.framework_list_for_staff(user=self.request.user)


@extend_schema(tags=["catalog"], summary="A framework's competencies in tree order, with prerequisites")
class FrameworkCompetencyListView(ListAPIView):
    serializer_class = CompetencySerializer
    permission_classes = [IsDistrictStaff]
    schema = ErrorAnswersSchema()
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Competency.objects.none()
        self.framework = get_object_or_404(
            api_selectors.framework_list_for_staff(user=self.request.user), pk=self.kwargs["pk"]
        )
        return api_selectors.competency_list_for_framework(framework=self.framework)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if hasattr(self, "framework"):
            context["prerequisites"] = api_selectors.prerequisite_ids_by_competency(framework=self.framework)
        return context
