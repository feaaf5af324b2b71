"""Seeds the private cluster of ``test_postgres_restart`` (run by ``manage.py shell``, not collected).

One district, one competency, a mastery check of two numeric items (answer 5, 1 point each) and
``FAULT_STUDENTS`` students, each with an open attempt holding both items, an API token and a logged-in
session. Prints the ids as JSON on the last line.
"""

import json
import os
from decimal import Decimal

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from rest_framework.authtoken.models import Token

from assessments.models import Attempt, AttemptItem, Item
from roster.models import User
from tests.factories import (
    AssessmentFactory,
    CompetencyFactory,
    DistrictFactory,
    FrameworkFactory,
    ItemFactory,
)

count = int(os.environ.get("FAULT_STUDENTS", "40"))
district = DistrictFactory()
competency = CompetencyFactory(framework=FrameworkFactory(district=district))
items = [
    ItemFactory(
        type=Item.Type.NUMERIC,
        district=district,
        answer_value=Decimal(5),
        max_points=Decimal(1),
        aligned_to=competency,
    )
    for _ in range(2)
]
assessment = AssessmentFactory(competency=competency, district=district)
backend = next(path for path in settings.AUTHENTICATION_BACKENDS if path.endswith("ModelBackend"))
now = timezone.now()
students = []
for index in range(count):
    user = User.objects.create(
        username=f"outage-{index}", role=User.Role.STUDENT, district=district, password="!"
    )
    attempt = Attempt.objects.create(
        assessment=assessment, student=user, number=1, seed=index, started_at=now
    )
    for position, item in enumerate(items, start=1):
        AttemptItem.objects.create(attempt=attempt, item=item, position=position, key_version_seen=1)
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = backend
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    students.append(
        {
            "id": user.pk,
            "attempt": attempt.pk,
            "token": Token.objects.create(user=user).key,
            "session": session.session_key,
        }
    )
print(json.dumps({"items": [item.pk for item in items], "students": students}))
