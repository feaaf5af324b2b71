"""Admin for rescoring jobs (registered from assessments/admin.py)."""
