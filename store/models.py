"""Tables of the store. ORM classes for convenience; hot paths use Core bulk statements.

Keys chosen so that imports are idempotent without lookups of generated ids:
enterprises are keyed by USCC, profile snapshots by their content hash.
"""
from __future__ import annotations

import json
import zlib
from datetime import date, datetime, timezone
from typing import Any, Optional

import orjson

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from store.trace_dict import TRACE_DICT_V1


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class CompressedJSON(TypeDecorator):
    """JSON stored zlib-compressed: full traces repeat the same criterion texts and legal
    bases for every enterprise, so they shrink about tenfold (about 15x with the preset
    dictionary of store.trace_dict). Transparent to callers."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> Optional[bytes]:
        if value is None:
            return None
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)  # already encoded (bulk paths encode once)
        return encode_json(value)

    def process_result_value(self, value: Optional[bytes], dialect) -> Any:
        if value is None:
            return None
        return decode_json(value)


# Traces are compressed with a preset dictionary; the zlib header names it by Adler-32
# (FDICT), so every dictionary ever used stays registered here and plain zlib values
# written before dictionaries existed still decode.
_DICTS = {zlib.adler32(TRACE_DICT_V1): TRACE_DICT_V1}
# Compressor primed with the dictionary once; each value compresses on a copy (priming
# per value costs more than compressing a trace).
_PRIMED = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, TRACE_DICT_V1)


def _json_bytes(value: Any) -> bytes:
    """UTF-8 JSON of a dict or of the engine's result records (dataclasses: orjson
    serialises them field by field in declaration order, exactly like model_dump)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # e.g. an int beyond 64 bits: the standard library handles it
        if hasattr(value, "model_dump"):
            value = value.model_dump(mode="json")
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def encode_json(value: Any) -> bytes:
    co = _PRIMED.copy()
    return co.compress(_json_bytes(value)) + co.flush()


def decode_json(data: bytes) -> Any:
    data = bytes(data)
    if len(data) >= 6 and data[1] & 0x20:  # FDICT: a preset dictionary, id in bytes 2-5
        zdict = _DICTS.get(int.from_bytes(data[2:6], "big"))
        if zdict is None:
            raise ValueError("trace compressed with an unknown dictionary")
        d = zlib.decompressobj(15, zdict=zdict)
        raw = d.decompress(data) + d.flush()
    else:
        raw = zlib.decompress(data)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # integers beyond 64 bits
        return json.loads(raw)


TZDateTime = DateTime(timezone=True)


class Base(DeclarativeBase):
    pass


class Enterprise(Base):
    __tablename__ = "enterprises"
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # hash of the newest snapshot; proactive evaluation uses it (no FK: circular)
    latest_snapshot: Mapped[Optional[str]] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # registry | application
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class ProfileSnapshot(Base):
    """One version of an enterprise's profile; identical profiles are stored once."""

    __tablename__ = "profile_snapshots"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    profile: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    __table_args__ = (UniqueConstraint("uscc", "version", name="uq_snapshot_version"),)


class Window(Base):
    __tablename__ = "windows"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # e.g. 2026-H1
    label: Mapped[str] = mapped_column(String(200))
    opens_on: Mapped[date] = mapped_column(Date)
    closes_on: Mapped[date] = mapped_column(Date)
    as_of: Mapped[date] = mapped_column(Date)
    coverage_from: Mapped[Optional[date]] = mapped_column(Date)
    coverage_to: Mapped[Optional[date]] = mapped_column(Date)
    amounts: Mapped[dict] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open|evaluated|closed
    ruleset_version: Mapped[Optional[str]] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    evaluated_at: Mapped[Optional[datetime]] = mapped_column(TZDateTime)
    closed_at: Mapped[Optional[datetime]] = mapped_column(TZDateTime)
    # evaluation lease: one evaluation of a window at a time
    lease_owner: Mapped[Optional[str]] = mapped_column(String(200))
    lease_until: Mapped[Optional[datetime]] = mapped_column(TZDateTime)


class Application(Base):
    __tablename__ = "applications"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    window_id: Mapped[str] = mapped_column(ForeignKey("windows.id"))
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"))
    snapshot_hash: Mapped[str] = mapped_column(ForeignKey("profile_snapshots.hash"))
    claims: Mapped[Optional[list]] = mapped_column(JSON)  # certificate numbers; null = all
    channel: Mapped[str] = mapped_column(String(16))  # web | import | api | proactive
    submitted_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    access_code_hash: Mapped[str] = mapped_column(String(64))
    __table_args__ = (
        UniqueConstraint("window_id", "uscc", name="uq_application_window_enterprise"),
    )


class Decision(Base):
    """One benefit result for one enterprise (applicant or not) in one window."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    window_id: Mapped[str] = mapped_column(ForeignKey("windows.id"))
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"))
    application_id: Mapped[Optional[str]] = mapped_column(ForeignKey("applications.id"))
    benefit_id: Mapped[str] = mapped_column(String(64))
    benefit_kind: Mapped[str] = mapped_column(String(16))  # grant | tax
    subject_type: Mapped[Optional[str]] = mapped_column(String(16))
    # "" for enterprise-level benefits, so the unique key works (NULLs never collide)
    subject_id: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16))
    amount_cny: Mapped[Optional[float]] = mapped_column(Numeric(14, 2))
    amount_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    trace: Mapped[dict] = mapped_column(CompressedJSON)  # the full BenefitResult
    ruleset_version: Mapped[str] = mapped_column(String(128))
    profile_hash: Mapped[str] = mapped_column(String(64))
    evaluated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    __table_args__ = (
        UniqueConstraint(
            "window_id", "uscc", "benefit_id", "subject_id", name="uq_decision_subject"
        ),
        Index("ix_decisions_window_status", "window_id", "status"),
        Index("ix_decisions_application", "application_id"),
    )


class EvaluationMark(Base):
    """What an enterprise's decisions in a window were computed from. A re-run skips an
    enterprise whose mark matches; an interrupted run leaves the rest unmarked."""

    __tablename__ = "evaluation_marks"
    window_id: Mapped[str] = mapped_column(ForeignKey("windows.id"), primary_key=True)
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"), primary_key=True)
    input_key: Mapped[str] = mapped_column(String(64))


class Award(Base):
    """The award ledger: a benefit is paid once per subject, across all windows."""

    __tablename__ = "awards"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    benefit_id: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(100))  # certificate no, or USCC
    window_id: Mapped[str] = mapped_column(ForeignKey("windows.id"))
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"))
    amount_cny: Mapped[Optional[float]] = mapped_column(Numeric(14, 2))
    amount_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    device_class: Mapped[Optional[str]] = mapped_column(String(4))
    origin: Mapped[Optional[str]] = mapped_column(String(16))
    awarded_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    __table_args__ = (
        UniqueConstraint("benefit_id", "subject_id", name="uq_award_benefit_subject"),
        Index("ix_awards_window", "window_id"),
    )


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    details: Mapped[Optional[dict]] = mapped_column(JSON)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # staff | admin
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(TZDateTime)


class Notice(Base):
    __tablename__ = "notices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_id: Mapped[str] = mapped_column(ForeignKey("windows.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    kind: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(64))
    issued_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    __table_args__ = (
        UniqueConstraint("window_id", "kind", "seq", name="uq_notice_seq"),
        UniqueConstraint("application_id", "kind", name="uq_notice_application_kind"),
    )
