"""The console's tables (SQLAlchemy 2). The Alembic migrations in ``migrations/`` create them;
a test checks that the migrated database matches these models.

Times are naive UTC ``datetime`` values (the same on SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Row ids: BIGINT on PostgreSQL, INTEGER (the rowid alias, autoincrementing) on SQLite.
RowId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (migrations refer to them)."""

    metadata = MetaData(naming_convention=NAMING)


class Device(Base):
    """One device, keyed by its topic prefix; its retained state as last received."""

    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(200), unique=True)
    post: Mapped[str | None] = mapped_column(String(64), index=True)
    device: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(16))
    status_time: Mapped[datetime | None] = mapped_column(DateTime)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime)
    info: Mapped[str | None] = mapped_column(Text)
    health: Mapped[str | None] = mapped_column(Text)
    alarm: Mapped[str | None] = mapped_column(Text)
    #: Signature state (controlroom.keys.SIGNATURE_STATES) of the latest status and alarm.
    status_signature: Mapped[str | None] = mapped_column(String(16))
    alarm_signature: Mapped[str | None] = mapped_column(String(16))
    announced_key_id: Mapped[str | None] = mapped_column(String(16))
    #: Highest seq seen, and the seq up to which every result is stored (or written off).
    seq_high: Mapped[int | None] = mapped_column(BigInteger)
    seq_contiguous: Mapped[int | None] = mapped_column(BigInteger)


class DeviceKey(Base):
    """A device signing key and the admin's decision on it (pending, approved, rejected)."""

    __tablename__ = "device_keys"
    __table_args__ = (UniqueConstraint("prefix", "key_id"),)
    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(200), index=True)
    key_id: Mapped[str] = mapped_column(String(16))
    public_key: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    first_seen: Mapped[datetime] = mapped_column(DateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)


class Result(Base):
    """One scan result, exactly once per scan_id; ``id`` is the live feed's event id."""

    __tablename__ = "results"
    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    scan_id: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(200), index=True)
    post: Mapped[str] = mapped_column(String(64), index=True)
    device: Mapped[str] = mapped_column(String(64), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    time: Mapped[datetime] = mapped_column(DateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    consignment: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    substance: Mapped[str | None] = mapped_column(String(200), index=True)
    category: Mapped[str | None] = mapped_column(String(64), index=True)
    family: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(8), index=True)
    confidence: Mapped[float] = mapped_column(Float)
    historical: Mapped[bool] = mapped_column(Boolean)
    #: valid, invalid, pending_key, rejected_key, unknown_key
    signature_state: Mapped[str] = mapped_column(String(16), index=True)
    key_id: Mapped[str | None] = mapped_column(String(16))
    payload: Mapped[str] = mapped_column(Text)


Index("ix_results_prefix_seq", Result.prefix, Result.seq)


class Alarm(Base):
    """An alarm raised by a result; acknowledged only once the device confirms the ``ack``."""

    __tablename__ = "alarms"
    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    scan_id: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(200), index=True)
    raised_at: Mapped[datetime] = mapped_column(DateTime)
    substance: Mapped[str | None] = mapped_column(String(200))
    consignment: Mapped[str | None] = mapped_column(String(64))
    #: open, ack_sent, acknowledged, not_active (the device held no such alarm)
    state: Mapped[str] = mapped_column(String(16), index=True)
    ack_requested_by: Mapped[str | None] = mapped_column(String(64))
    ack_requested_at: Mapped[datetime | None] = mapped_column(DateTime)
    ack_correlation: Mapped[str | None] = mapped_column(String(64), index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    confirmed_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(300))


class SeqGap(Base):
    """Missing ``seq`` numbers of one device and the replay requests sent for them."""

    __tablename__ = "seq_gaps"
    __table_args__ = (UniqueConstraint("prefix", "from_seq"),)
    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(200))
    from_seq: Mapped[int] = mapped_column(BigInteger)
    to_seq: Mapped[int] = mapped_column(BigInteger)
    detected_at: Mapped[datetime] = mapped_column(DateTime)
    #: open, filled, lost (the device's archive no longer has them)
    state: Mapped[str] = mapped_column(String(8), index=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    last_request_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)


class Spectrum(Base):
    """A scan's spectrum fetched from its device (``get_spectrum``), for the scan page."""

    __tablename__ = "spectra"
    scan_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    x_unit: Mapped[str | None] = mapped_column(String(32))
    y_unit: Mapped[str | None] = mapped_column(String(32))
    x: Mapped[str] = mapped_column(Text)
    y: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(DateTime)


class RejectedMessage(Base):
    """A message that failed its schema or could not be parsed (kept, shown, never used)."""

    __tablename__ = "rejected_messages"
    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    topic: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(String(300))
    payload: Mapped[str] = mapped_column(Text)


class User(Base):
    """A console user: argon2 password hash and one role."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class WebSession(Base):
    """A server-side session; the cookie holds the token, the table only its SHA-256."""

    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(RowId, ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class LoginAttempt(Base):
    """One log-in attempt, for throttling by user name and by client address."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    ok: Mapped[bool] = mapped_column(Boolean)


class AuditEntry(Base):
    """One operator action; ``hash`` chains it to the previous entry. Append-only (triggers)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(RowId, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """One row: the last entry of the chain. Updating it first serialises appends."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
