"""Project wiring: settings profiles, health check, schema."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent


def run_check(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SECRET_KEY"}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = run_check({"MASTERY_ENV": "production"})
    assert result.returncode == 1
    assert "DJANGO_SECRET_KEY must be set when MASTERY_ENV=production." in result.stderr


def test_production_starts_with_a_secret_key():
    result = run_check({"MASTERY_ENV": "production", "DJANGO_SECRET_KEY": "x" * 60})
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.django_db
def test_health_check_reports_the_database(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"database": "ok"}


@pytest.mark.django_db
def test_openapi_schema_lists_the_catalog_endpoints(client):
    response = client.get(reverse("schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/frameworks/" in paths
    assert "/api/v1/frameworks/{id}/competencies/" in paths
    assert "/api/v1/auth/token/" in paths
