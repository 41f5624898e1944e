"""Read access to the award ledger for self-checks (the grant's `already_awarded` fact)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from store.db import Database
from store.models import Award


def awarded_subjects(db: Database) -> set[str] | None:
    """Every `benefit_id|subject_id` in the ledger; None when the store cannot answer (no
    database, no schema): the engine then reports the criterion as unknown, never a pass."""
    try:
        with db.read_session() as s:
            return {f"{b}|{sub}" for b, sub in s.execute(select(Award.benefit_id, Award.subject_id))}
    except SQLAlchemyError:
        return None


def awarded_among(db: Database, subject_ids: list[str]) -> set[str] | None:
    """The ledger entries (`benefit_id|subject_id`) for these subjects only — what a self-check
    of one profile needs; None when the store cannot answer."""
    if not subject_ids:
        return set()
    try:
        with db.read_session() as s:
            rows = s.execute(select(Award.benefit_id, Award.subject_id)
                             .where(Award.subject_id.in_(sorted(set(subject_ids)))))
            return {f"{b}|{sub}" for b, sub in rows}
    except SQLAlchemyError:
        return None
