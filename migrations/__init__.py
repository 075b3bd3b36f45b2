"""Alembic migrations (run automatically at start; ``alembic upgrade head`` works too)."""
