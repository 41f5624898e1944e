"""Tables of the store. ORM classes for convenience; hot paths use Core bulk statements.

Keys chosen so that imports are idempotent without lookups of generated ids: enterprises are
keyed by USCC, profile snapshots and rulesets by their content hash. A decision is stored as
what the engine decided (outcomes and observed values) against a stored ruleset and a stored
profile; its explanation is rebuilt from them (store.decisions), never stored as text.
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import (JSON, BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Integer,
                        LargeBinary, Numeric, String, Text, TypeDecorator, UniqueConstraint, select)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


class Timestamp(TypeDecorator):
    """A moment: PostgreSQL's timestamptz; on SQLite the microseconds since 1970 UTC as an
    integer (8 bytes instead of 26 of text; ten of them an application: migration 0009).
    Read back in UTC on both, with its zone (the API once wrote SQLite's moments without one,
    which a reader in Beijing took for local time)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(BigInteger() if dialect.name == "sqlite" else DateTime(timezone=True))

    def process_bind_param(self, value, dialect):
        if value is None or dialect.name != "sqlite":
            return value
        if value.tzinfo is not None:        # a moment without a zone is UTC already
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return (value - _EPOCH) // _MICROSECOND

    def process_result_value(self, value, dialect):
        if value is None or dialect.name != "sqlite":
            return value
        return (_EPOCH + value * _MICROSECOND).replace(tzinfo=timezone.utc)


class Digest(TypeDecorator):
    """A digest: the code reads and writes it as hex, the database keeps its bytes (migration
    0010). A snapshot's key (`digest`) is 16 bytes, an evaluation's input key 8
    (store.evaluation.input_key), an access code's hash 16 (store.applications.code_hash)."""

    impl = LargeBinary(32)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else bytes.fromhex(value)

    def process_result_value(self, value, dialect):
        return None if value is None else bytes(value).hex()


class Coded(TypeDecorator):
    """A word of a fixed vocabulary (an application's state, its channel, where an enterprise
    became known), kept as one letter: the code reads and writes the word, the database holds
    the letter (2 bytes on PostgreSQL instead of up to 12, in rows that are rewritten whole
    at every state change; migration 0020). A word outside the vocabulary is refused."""

    impl = String(16)
    cache_ok = True

    def __init__(self, codes: tuple[tuple[str, str], ...]):
        super().__init__()
        self.codes = codes
        self._letter = dict(codes)
        self._word = {v: k for k, v in codes}

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        try:
            return self._letter[value]
        except KeyError:
            raise ValueError(f"not a word of this vocabulary: {value!r}") from None

    def process_result_value(self, value, dialect):
        return None if value is None else self._word.get(value, value)


# received|judged|correction|corrected|publicized|awarded|refused|failed (engine.vocabulary)
APPLICATION_STATES = (("received", "r"), ("judged", "j"), ("correction", "c"), ("corrected", "d"),
                      ("publicized", "p"), ("awarded", "a"), ("refused", "x"), ("failed", "f"))
CHANNEL_CODES = (("web", "w"), ("import", "i"), ("api", "a"))
SOURCE_CODES = (("registry", "r"), ("application", "a"))


def digest(data: bytes) -> str:
    """The key of a profile snapshot: the first 16 bytes of SHA-256, as hex. An application
    carries five (the snapshot's key in its row and in its index, the snapshot it applied
    with, its enterprise's newest and its evaluation's profile): 80 bytes less than 32 bytes
    each (migration 0014). 128 bits keep an accidental collision out of reach (below 10^-26
    for a million snapshots) and a made one at 2^64 hashes, for keys that name content, not
    secrets."""
    return hashlib.sha256(data).hexdigest()[:32]


TZDateTime = Timestamp()
BigId = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Enterprise(Base):
    __tablename__ = "enterprises"
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # hash of the newest snapshot; proactive evaluation uses it (no FK: circular)
    latest_snapshot: Mapped[Optional[str]] = mapped_column(Digest)
    source: Mapped[str] = mapped_column(Coded(SOURCE_CODES))  # registry | application
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class ProfileSnapshot(Base):
    """One version of an enterprise's profile; identical profiles are stored once, packed
    (store.profiles), under their content key. An enterprise's versions are told apart by
    when they were stored; the number each once had, and its index, were read by nothing but
    the next number (45 bytes an application on PostgreSQL; migration 0020)."""

    __tablename__ = "profile_snapshots"
    hash: Mapped[str] = mapped_column(Digest, primary_key=True)
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"))
    packed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class ProfileDictionary(Base):
    """A preset dictionary that profile snapshots are packed with, stored once under the
    first 8 bytes of its sha256 (store.profiles)."""

    __tablename__ = "profile_dictionaries"
    key: Mapped[bytes] = mapped_column(LargeBinary(8), primary_key=True)
    dictionary: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class Ruleset(Base):
    """The rule files that decided something, stored once by version (content hash)."""

    __tablename__ = "rulesets"
    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    engine_version: Mapped[str] = mapped_column(String(128))
    files: Mapped[Optional[bytes]] = mapped_column(LargeBinary)  # zlib(JSON {path: text}); None = not archived
    # how this ruleset's decision records are packed (store.decisions.Packing): a zlib preset
    # dictionary (None = plain records) and the key sets of what criteria read (None = rows
    # keep their keys)
    pack_dictionary: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    pack_keys: Mapped[Optional[list]] = mapped_column(JSON)
    # its grant benefits, as its evaluations' grant lists number them (store.decisions.pack_grants)
    grant_ids: Mapped[Optional[list]] = mapped_column(JSON)
    note: Mapped[Optional[str]] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    # its number in this database (1, 2, …, in the order archived), which evaluations refer
    # to instead of repeating the 49-character version (migration 0013)
    seq: Mapped[int] = mapped_column(Integer)
    __table_args__ = (Index("uq_ruleset_seq", "seq", unique=True),)


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
    state: Mapped[str] = mapped_column(String(16), default="open")  # open|publicity|closed
    ruleset_version: Mapped[Optional[str]] = mapped_column(String(128))  # of its latest evaluation
    correction_workdays: Mapped[int] = mapped_column(Integer, default=10)
    publicity_workdays: Mapped[int] = mapped_column(Integer, default=5)
    publicity_from: Mapped[Optional[date]] = mapped_column(Date)
    publicity_until: Mapped[Optional[date]] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    evaluated_at: Mapped[Optional[datetime]] = mapped_column(TZDateTime)
    published_at: Mapped[Optional[datetime]] = mapped_column(TZDateTime)
    closed_at: Mapped[Optional[datetime]] = mapped_column(TZDateTime)
    close_reason: Mapped[Optional[str]] = mapped_column(String(500))


class Application(Base):
    """An application in a window. Every one moves through its states three times in a window
    (judged, publicized or refused, awarded), so no index holds `state` and PostgreSQL leaves
    half of each page free: a state change is then written in the row's own page without new
    index entries (a HOT update). With the (window, state) index every change copied the row
    and its index entries, and the table ended at three times its size (migration 0007)."""

    __tablename__ = "applications"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    window_id: Mapped[str] = mapped_column(ForeignKey("windows.id"))
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"))
    snapshot_hash: Mapped[str] = mapped_column(Digest, ForeignKey("profile_snapshots.hash"))
    claims: Mapped[Optional[list]] = mapped_column(JSON)  # certificate numbers; null = all
    channel: Mapped[str] = mapped_column(Coded(CHANNEL_CODES))  # web | import | api
    submitted_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    access_code_hash: Mapped[str] = mapped_column(Digest)
    state: Mapped[str] = mapped_column(Coded(APPLICATION_STATES), default="received")
    correction_due: Mapped[Optional[date]] = mapped_column(Date)
    revision: Mapped[int] = mapped_column(Integer, default=0)  # optimistic concurrency
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    __table_args__ = (
        UniqueConstraint("window_id", "uscc", name="uq_application_window_enterprise"),
        # fillfactor 50 on PostgreSQL: set by migration 0007 (databases are made by migrations)
    )


class Evaluation(Base):
    """What the engine decided for one enterprise in one window: every benefit result in
    compact form (outcomes and observed values; no texts), against a stored ruleset and a
    stored profile; and its grant decisions (the park's: status and amount per benefit and
    subject, store.decisions.pack_grants), which a window reads without unpacking the record.
    `input_key` hashes everything the result depends on, so a re-run skips what is current;
    `error` records an evaluation that failed (the window carries on)."""

    __tablename__ = "evaluations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    window_id: Mapped[str] = mapped_column(ForeignKey("windows.id"))
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"))
    application_id: Mapped[Optional[str]] = mapped_column(ForeignKey("applications.id"))
    ruleset_seq: Mapped[int] = mapped_column(ForeignKey("rulesets.seq"))
    profile_hash: Mapped[str] = mapped_column(Digest)
    input_key: Mapped[str] = mapped_column(Digest)
    results: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    grants: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    error: Mapped[Optional[str]] = mapped_column(String(500))
    # (when: the application's history and the window's evaluated_at say; migration 0019)
    # the version of the ruleset that decided, read through its number
    ruleset_version: Mapped[str] = column_property(
        select(Ruleset.version).where(Ruleset.seq == ruleset_seq).scalar_subquery())
    __table_args__ = (
        UniqueConstraint("window_id", "uscc", name="uq_evaluation_window_enterprise"),
    )


class Review(Base):
    """复核: staff confirm the engine's verdict or override it with a written reason."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    benefit_id: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(100), default="")
    engine_status: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))        # the reviewed verdict
    reason: Mapped[Optional[str]] = mapped_column(String(2000))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    evaluation_id: Mapped[int] = mapped_column(BigId)     # the decision it reviewed
    # the amount the reviewer set for an eligible grant the rules gave no amount (else None)
    amount_cny: Mapped[Optional[float]] = mapped_column(Numeric(14, 2))
    __table_args__ = (Index("ix_reviews_application", "application_id"),)


class Material(Base):
    """A file an applicant uploaded for a material the rules name, and its review."""

    __tablename__ = "materials"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    material_id: Mapped[str] = mapped_column(String(64))
    benefit_id: Mapped[str] = mapped_column(String(64))
    # the certificate (subject) it was asked for; "" = the enterprise, or an upload made before
    # materials had a subject (0.2 databases), which then counts for every subject of the benefit
    subject_id: Mapped[str] = mapped_column(String(100), default="", server_default="")
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    uploaded_by: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="pending")   # pending|accepted|rejected
    reason: Mapped[Optional[str]] = mapped_column(String(1000))
    reviewed_by: Mapped[Optional[str]] = mapped_column(String(200))
    reviewed_at: Mapped[Optional[datetime]] = mapped_column(TZDateTime)
    __table_args__ = (Index("ix_materials_application", "application_id"),)


class Commitment(Base):
    """容缺受理、告知承诺: a material promised with a signed commitment, to be supplied later."""

    __tablename__ = "commitments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    material_id: Mapped[str] = mapped_column(String(64))
    benefit_id: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(100), default="", server_default="")  # as Material
    signer: Mapped[str] = mapped_column(String(100))
    signed_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    due_on: Mapped[date] = mapped_column(Date)
    __table_args__ = (UniqueConstraint("application_id", "benefit_id", "subject_id", "material_id",
                                       name="uq_commitment_material"),)


class Objection(Base):
    """An objection raised against an application during 公示."""

    __tablename__ = "objections"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    window_id: Mapped[str] = mapped_column(ForeignKey("windows.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    text: Mapped[str] = mapped_column(String(2000))
    raised_by: Mapped[str] = mapped_column(String(200))
    raised_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    resolution: Mapped[Optional[str]] = mapped_column(String(2000))
    resolved_by: Mapped[Optional[str]] = mapped_column(String(200))
    resolved_at: Mapped[Optional[datetime]] = mapped_column(TZDateTime)


class _Entry:
    """What an entry of an application's history says: when, who, what, and the change of state."""
    at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[Optional[str]] = mapped_column(String(16))
    to_state: Mapped[Optional[str]] = mapped_column(String(16))
    details: Mapped[Optional[dict]] = mapped_column(JSON)


class ApplicationEvent(_Entry, Base):
    """An entry of one application's own history: an action on it alone (store.audit)."""

    __tablename__ = "application_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), index=True)


class EventBatch(_Entry, Base):
    """One step that many applications of a window took together (an import, judging the
    window, 公示, the close), stored once with the list of those applications (`members`,
    store.audit.pack_members), which each one's history reads (store.audit.history). An entry
    of its own for each application cost 124 bytes on SQLite and 184 on PostgreSQL (migration
    0011); a row per member 26 and 130, and 430 bytes an application on PostgreSQL with its
    key index (migration 0017)."""

    __tablename__ = "event_batches"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    window_id: Mapped[Optional[str]] = mapped_column(String(32), index=True)  # None: members of no window
    members: Mapped[bytes] = mapped_column(LargeBinary)


class Award(Base):
    """The award ledger: a benefit is paid once per subject, across all windows."""

    __tablename__ = "awards"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    benefit_id: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(100))  # certificate no, or USCC
    window_id: Mapped[str] = mapped_column(ForeignKey("windows.id"))
    uscc: Mapped[str] = mapped_column(ForeignKey("enterprises.uscc"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    evaluation_id: Mapped[int] = mapped_column(BigId)    # whose grant decision it pays
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
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
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
    expires_at: Mapped[Optional[datetime]] = mapped_column(TZDateTime)    # None: made before tokens expired


class WebSession(Base):
    """A console or enterprise session: the cookie holds a random id, only its hash is
    stored; logout and expiry end it on the server."""

    __tablename__ = "web_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))       # staff | enterprise
    subject: Mapped[str] = mapped_column(String(64))    # token id or application id
    role: Mapped[str] = mapped_column(String(16))       # staff | admin | enterprise
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(TZDateTime)
    ended_at: Mapped[Optional[datetime]] = mapped_column(TZDateTime)


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
    # What a one-time notice was issued on (the evaluation at that moment), so that it reads
    # the same after the 补正 has judged the application again. None: rendered from the current one.
    basis_evaluation_id: Mapped[Optional[int]] = mapped_column(BigId)
    basis_ruleset_version: Mapped[Optional[str]] = mapped_column(String(128))
    basis_profile_hash: Mapped[Optional[str]] = mapped_column(Digest)
    basis_results: Mapped[Optional[bytes]] = mapped_column(LargeBinary)
    __table_args__ = (
        UniqueConstraint("window_id", "kind", "seq", name="uq_notice_seq"),
        UniqueConstraint("application_id", "kind", name="uq_notice_application_kind"),
    )


class Job(Base):
    """A background job (evaluation, impact run, notice bundle, import): its progress,
    result and failure, on both databases. On PostgreSQL the queue is procrastinate's; on
    SQLite an in-process runner reads this table (store.jobs)."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict] = mapped_column(JSON)
    lock_key: Mapped[Optional[str]] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|succeeded|failed|cancelled
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[Optional[str]] = mapped_column(String(500))
    result: Mapped[Optional[dict]] = mapped_column(JSON)
    error: Mapped[Optional[str]] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_token: Mapped[Optional[str]] = mapped_column(String(32))
    worker: Mapped[Optional[str]] = mapped_column(String(200))
    heartbeat_at: Mapped[Optional[datetime]] = mapped_column(TZDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    started_at: Mapped[Optional[datetime]] = mapped_column(TZDateTime)
    finished_at: Mapped[Optional[datetime]] = mapped_column(TZDateTime)
    __table_args__ = (Index("ix_jobs_lock", "lock_key", "state"),)


class JobFile(Base):
    """A file a job produced (a notice bundle, an impact report), kept for download."""

    __tablename__ = "job_files"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(String(500))     # under the data directory
    size: Mapped[int] = mapped_column(BigId)
