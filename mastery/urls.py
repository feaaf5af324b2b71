from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authtoken.views import obtain_auth_token

from mastery import views

admin.site.site_header = "Mastery: district administration"
admin.site.site_title = "Mastery admin"
admin.site.index_title = "Catalog, rosters and assessments"

api_v1 = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("", include("competencies.api_urls")),
    path("", include("assessments.api_urls")),
    path("", include("progress.api_urls")),
    path("", include("progress.api_teacher_urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz/", views.healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI (vendored by drf-spectacular-sidecar) runs no inline script; it does set inline styles.
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="schema")
        ),
        name="api-docs",
    ),
    path("ims/case/", include("competencies.case_urls")),
    path("staff/", include("mastery.staff_urls")),
    path("", include("assessments.urls")),
    path("", include("assessments.grading_urls")),
    path("", include("progress.urls")),
    path("", include("progress.student_urls")),
]
