"""The store: SQLAlchemy models, Alembic migrations (migrations/), application windows,
spreadsheet intake, batch evaluation, the award ledger and exports.

Service functions take a `Database` first (see store.db); the CLI and the HTTP layer both
call them. Errors: store.errors.NotFound / Conflict / ValidationFailed (ImportRejected).
"""
from store.db import Database, default_database, upgrade  # noqa: F401
from store.errors import Conflict, NotFound, RowProblem, ValidationFailed  # noqa: F401
