import pytest
from django.urls import reverse

from tests.factories import StudentFactory


@pytest.mark.django_db
def test_login_page_renders_and_signs_a_student_in(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Sign in" in response.content
    student = StudentFactory(username="ada")
    response = client.post(reverse("login"), {"username": "ada", "password": "correct-horse-battery"})
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.session["_auth_user_id"] == str(student.pk)
