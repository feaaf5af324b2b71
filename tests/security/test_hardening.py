"""Hardening: the deploy check under production settings, the security headers and content security
policy on every answer, the admin limited to district staff, and the login throttle (django-axes) on
the login page, the admin login and the API token endpoint."""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from tests.factories import DistrictFactory, StaffFactory, StudentFactory, TeacherFactory
from tests.factories.roster import PASSWORD

EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src https://www.youtube-nocookie.com https://player.vimeo.com; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'self'"
)
LOCKED = (
    "Too many failed sign-ins for this username from this address. Sign-in is blocked for 15 minutes; "
    "try again after that, or ask district staff to unlock the account."
)
PRODUCTION_ENV = {
    "MASTERY_ENV": "production",
    # 50+ characters, many distinct: what Django's security.W009 asks of a real key.
    "DJANGO_SECRET_KEY": "ci-only-0b6f1c9e4d2a7f8e3c5b1a9d7e6f4c2b8a0d3e5f7c9b1a2e4d6f8",
    "DJANGO_ALLOWED_HOSTS": "mastery.district.example",
}


def directives(policy: str) -> dict[str, str]:
    """A policy's directives by name (django-csp does not promise their order)."""
    return dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "MASTERY_"))}
    clean.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- production settings ------------------------------------------------------------------------------


def test_the_deploy_check_is_clean_under_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_the_deploy_check_fails_without_the_production_profile():
    """The gate can fail: the development profile (DEBUG, no HSTS, cookies not secure) does not pass."""
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env={"MASTERY_ENV": "development"})
    assert result.returncode == 1
    for code in ("security.W004", "security.W008", "security.W012", "security.W016", "security.W018"):
        assert code in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "DJANGO_SECRET_KEY"}
    result = run_manage("check", env=env)
    assert result.returncode == 1
    assert "DJANGO_SECRET_KEY must be set when MASTERY_ENV=production." in result.stderr


def test_production_settings_values():
    script = (
        "import json, django; from django.conf import settings as s; django.setup(); print(json.dumps({"
        "k: getattr(s, k) for k in ['DEBUG', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', "
        "'SESSION_COOKIE_HTTPONLY', 'SECURE_SSL_REDIRECT', 'SECURE_PROXY_SSL_HEADER', 'SECURE_HSTS_SECONDS', "
        "'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_HSTS_PRELOAD', 'X_FRAME_OPTIONS', 'SECURE_REFERRER_POLICY', "
        "'SECURE_CROSS_ORIGIN_OPENER_POLICY', 'SECURE_CONTENT_TYPE_NOSNIFF', 'AXES_ENABLED', "
        "'MASTERY_PROXY_COUNT']}))"
    )
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "MASTERY_"))}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**clean, **PRODUCTION_ENV, "DJANGO_SETTINGS_MODULE": "mastery.settings"},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout) == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "X_FRAME_OPTIONS": "DENY",
        "SECURE_REFERRER_POLICY": "same-origin",
        "SECURE_CROSS_ORIGIN_OPENER_POLICY": "same-origin",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "AXES_ENABLED": True,
        "MASTERY_PROXY_COUNT": 1,
    }


# --- headers and policy ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/", "/healthz/", "/api/v1/me/path/"])
def test_every_answer_carries_the_security_headers(client, url):
    response = client.get(url)
    assert directives(response["Content-Security-Policy"]) == directives(EXPECTED_CSP)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.I)


@pytest.mark.django_db
def test_the_login_and_admin_pages_have_no_inline_script_or_style(client):
    staff = StaffFactory()
    pages = [client.get("/accounts/login/").content.decode(), client.get("/admin/login/").content.decode()]
    client.force_login(staff)
    pages.append(client.get("/admin/").content.decode())
    pages.append(client.get(reverse("admin:roster_user_changelist")).content.decode())
    for html in pages:
        assert INLINE_SCRIPT.findall(html) == []
        assert INLINE_HANDLER.findall(html) == []
        assert INLINE_STYLE.findall(html) == []
    assert '<meta name="htmx-config" content=\'{"includeIndicatorStyles": false}\'>' in pages[0]


# --- the admin: district staff only -----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("superuser", 200),
        ("district_staff", 200),
        ("district_staff_without_district", 403),
        ("teacher_marked_staff", 403),
        ("student_marked_staff", 403),
        ("district_staff_not_marked_staff", 302),
        ("teacher", 302),
        ("anonymous", 302),
    ],
)
def test_only_district_staff_may_use_the_admin(client, who, expected):
    district = DistrictFactory()
    users = {
        "superuser": lambda: StaffFactory(district=None, role="teacher"),
        "district_staff": lambda: StaffFactory(district=district, is_superuser=False),
        "district_staff_without_district": lambda: StaffFactory(district=None, is_superuser=False),
        "teacher_marked_staff": lambda: TeacherFactory(district=district, is_staff=True),
        "student_marked_staff": lambda: StudentFactory(district=district, is_staff=True),
        "district_staff_not_marked_staff": lambda: StaffFactory(
            district=district, is_staff=False, is_superuser=False
        ),
        "teacher": lambda: TeacherFactory(district=district),
    }
    if who != "anonymous":
        client.force_login(users[who]())
    for url in ("/admin/", reverse("admin:roster_auditevent_changelist")):
        response = client.get(url)
        assert response.status_code == expected
        if expected == 302:
            assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_the_admin_login_refuses_a_teacher_marked_staff():
    teacher = TeacherFactory(is_staff=True, username="sam")
    staff = StaffFactory(username="dana")
    client = Client()

    refused = client.post("/admin/login/", {"username": "sam", "password": PASSWORD})
    assert refused.status_code == 200
    assert "Please enter the correct username and password for a staff account." in refused.content.decode()
    assert "_auth_user_id" not in client.session
    accepted = client.post("/admin/login/", {"username": "dana", "password": PASSWORD})
    assert accepted.status_code == 302
    assert client.session["_auth_user_id"] == str(staff.pk)
    assert teacher.pk != staff.pk


# --- login throttling -------------------------------------------------------------------------------

THROTTLED = override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=5)


def post_login(client: Client, url: str, username: str, password: str, address: str = "10.0.0.1"):
    if url.startswith("/api/"):
        return client.post(
            url,
            {"username": username, "password": password},
            content_type="application/json",
            REMOTE_ADDR=address,
        )
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.django_db
@THROTTLED
@pytest.mark.parametrize(
    ("url", "refused", "accepted"),
    [("/accounts/login/", 200, 302), ("/admin/login/", 200, 302), ("/api/v1/auth/token/", 400, 200)],
)
def test_five_failed_sign_ins_lock_out_that_username_from_that_address(url, refused, accepted):
    StaffFactory(username="dana")
    StaffFactory(username="lee")
    client = Client()

    for _ in range(4):
        assert post_login(client, url, "dana", "wrong").status_code == refused
    fifth = post_login(client, url, "dana", "wrong")
    assert fifth.status_code == 429
    locked = post_login(client, url, "dana", PASSWORD)  # even the right password now
    assert locked.status_code == 429
    if url.startswith("/api/"):
        assert locked.json() == {"detail": LOCKED}
    else:
        assert locked.content.decode() == LOCKED
    assert locked["Retry-After"] == "900"
    assert "_auth_user_id" not in client.session

    # Another username from the same address, and the same username from another address, still sign in.
    assert post_login(Client(), url, "lee", PASSWORD).status_code == accepted
    assert post_login(Client(), url, "dana", PASSWORD, address="10.0.0.2").status_code == accepted

    # After the cooling-off period the pair may try again.
    AccessAttempt.objects.update(attempt_time=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
    assert post_login(Client(), url, "dana", PASSWORD).status_code == accepted


@pytest.mark.django_db
@THROTTLED
def test_a_successful_sign_in_resets_the_count():
    StaffFactory(username="dana")
    for _ in range(4):
        assert post_login(Client(), "/accounts/login/", "dana", "wrong").status_code == 200
    assert post_login(Client(), "/accounts/login/", "dana", PASSWORD).status_code == 302
    for _ in range(4):
        assert post_login(Client(), "/accounts/login/", "dana", "wrong").status_code == 200
    assert post_login(Client(), "/accounts/login/", "dana", PASSWORD).status_code == 302


@pytest.mark.django_db
@override_settings(AXES_ENABLED=True, MASTERY_PROXY_COUNT=1)
def test_behind_the_proxy_the_address_is_the_one_the_proxy_saw():
    StaffFactory(username="dana")
    for _ in range(5):
        Client().post(
            "/accounts/login/",
            {"username": "dana", "password": "wrong"},
            REMOTE_ADDR="10.9.9.9",
            HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7",
        )
    assert list(AccessAttempt.objects.values_list("username", "ip_address", "failures_since_start")) == [
        ("dana", "203.0.113.7", 5)
    ]
