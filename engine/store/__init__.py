"""Durable storage of executions through SQLAlchemy Core."""
