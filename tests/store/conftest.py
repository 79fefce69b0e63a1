"""The store tests share the audit tests' backends: SQLite in a temporary folder, and PostgreSQL at
BASTION_TEST_POSTGRES_URL with a schema of its own for each test, dropped afterwards."""

from tests.audit.conftest import backend

__all__ = ["backend"]
