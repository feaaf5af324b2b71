"""Pages (filled in by the pages work of issue #5)."""

urlpatterns: list = []
