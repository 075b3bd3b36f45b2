"""Persistence: SQLAlchemy models, the unit of work with its repositories, migrations at start."""
