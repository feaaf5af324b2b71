from __future__ import annotations

import datetime

import factory

from roster.models import District, Enrollment, School, Section, Term, User

PASSWORD = "correct-horse-battery"


class DistrictFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = District

    name = factory.Sequence(lambda n: f"District {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    district = factory.SubFactory(DistrictFactory)
    role = User.Role.STUDENT
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save(update_fields=["password"])


class StudentFactory(UserFactory):
    role = User.Role.STUDENT


class TeacherFactory(UserFactory):
    role = User.Role.TEACHER


class StaffFactory(UserFactory):
    """District staff: signs in to Django admin."""

    role = User.Role.DISTRICT_STAFF
    is_staff = True
    is_superuser = True


class SchoolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = School

    district = factory.SubFactory(DistrictFactory)
    name = factory.Sequence(lambda n: f"School {n}")


class TermFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Term

    district = factory.SubFactory(DistrictFactory)
    title = factory.Sequence(lambda n: f"Term {n}")
    kind = Term.Kind.SCHOOL_YEAR
    start_date = datetime.date(2026, 8, 24)
    end_date = datetime.date(2027, 6, 11)


class SectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Section

    school = factory.SubFactory(SchoolFactory)
    term = factory.SubFactory(TermFactory, district=factory.SelfAttribute("..school.district"))
    title = factory.Sequence(lambda n: f"Section {n}")


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    section = factory.SubFactory(SectionFactory)
    user = factory.SubFactory(StudentFactory, district=factory.SelfAttribute("..section.school.district"))
    role = Enrollment.Role.STUDENT
