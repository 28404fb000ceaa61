"""Users, passwords, sessions and log-in throttling of the web console.

* Passwords are hashed with argon2id (``argon2-cffi``); an unknown user name costs the same
  hash as a known one, so timing does not tell which names exist.
* Sessions are server-side: the cookie holds a random token, the database only its SHA-256,
  with a per-session CSRF token and an expiry.
* Throttling: after :data:`MAX_FAILURES_PER_USER` failed log-ins for one name, or
  :data:`MAX_FAILURES_PER_CLIENT` from one address, within :data:`THROTTLE_WINDOW`, further
  attempts are refused until the window has passed (even with the right password).
* Roles are ranked ``viewer < operator < supervisor < admin``; a route names the lowest role
  it needs.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from controlroom.audit import utcnow
from controlroom.db.schema import LoginAttempt, User, WebSession
from controlroom.errors import AuthError

ROLES: Final = ("viewer", "operator", "supervisor", "admin")
SESSION_LIFETIME: Final = timedelta(hours=8)
THROTTLE_WINDOW: Final = timedelta(minutes=15)
MAX_FAILURES_PER_USER: Final = 5
MAX_FAILURES_PER_CLIENT: Final = 20
MIN_PASSWORD: Final = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password, only spends the same time")


class ThrottledError(AuthError):
    """Too many failed log-ins; ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


def role_rank(role: str) -> int:
    """0 for viewer ... 3 for admin; raises ValueError for an unknown role."""
    return ROLES.index(role)


def has_role(role: str, needed: str) -> bool:
    """True when *role* is at least *needed*."""
    return role in ROLES and role_rank(role) >= role_rank(needed)


def create_user(session: Session, username: str, password: str, role: str) -> User:
    """Add a user; raises :class:`AuthError` for a bad name, weak password or unknown role."""
    if not _NAME.match(username):
        raise AuthError(f"bad user name {username!r} (2-64 letters, digits, _.@-)")
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"password too short (at least {MIN_PASSWORD} characters)")
    exists = session.execute(select(User.id).where(User.username == username)).first()
    if exists:
        raise AuthError(f"user {username!r} exists already")
    user = User(
        username=username,
        password_hash=_hasher.hash(password),
        role=role,
        created_at=utcnow(),
        disabled=False,
    )
    session.add(user)
    session.flush()
    return user


def _failures(session: Session, column: Any, value: str) -> tuple[int, Any]:
    since = utcnow() - THROTTLE_WINDOW
    n, oldest = session.execute(
        select(func.count(LoginAttempt.id), func.min(LoginAttempt.at)).where(
            column == value,
            LoginAttempt.ok.is_(False),
            LoginAttempt.at > since,
        )
    ).one()
    return int(n), oldest


def check_throttle(session: Session, username: str, client: str) -> None:
    """Raise :class:`ThrottledError` when this name or address failed too often lately."""
    for column, value, limit in (
        (LoginAttempt.username, username[:64], MAX_FAILURES_PER_USER),
        (LoginAttempt.client, client[:64], MAX_FAILURES_PER_CLIENT),
    ):
        n, oldest = _failures(session, column, value)
        if n >= limit:
            wait = THROTTLE_WINDOW - (utcnow() - oldest)
            raise ThrottledError(
                "too many failed log-ins; try again later", max(1, int(wait.total_seconds()))
            )


def authenticate(session: Session, username: str, password: str, client: str) -> User | None:
    """The user for these credentials, or None; records the attempt either way (commit the
    session even on None). Raises :class:`ThrottledError` while throttled."""
    check_throttle(session, username, client)
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    ok = False
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        ok = user is not None and not user.disabled
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    session.add(LoginAttempt(username=username[:64], client=client[:64], at=utcnow(), ok=ok))
    if not ok or user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def start_session(session: Session, user: User) -> tuple[str, str]:
    """A new session for *user*: ``(cookie token, csrf token)``."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.add(
        WebSession(
            token_hash=_digest(token),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return token, csrf


@dataclass(frozen=True)
class Identity:
    """Who is making a request."""

    user_id: int
    username: str
    role: str
    csrf: str
    session_hash: str


def identify(session: Session, token: str | None) -> Identity | None:
    """The identity behind a session cookie, or None (unknown, expired, user disabled)."""
    if not token or len(token) > 200:
        return None
    row = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _digest(token))
    ).first()
    if row is None:
        return None
    ws, user = row
    if ws.expires_at < utcnow() or user.disabled:
        return None
    return Identity(user.id, user.username, user.role, ws.csrf_token, ws.token_hash)


def end_session(session: Session, session_hash: str) -> None:
    """Log out: forget the session."""
    session.execute(delete(WebSession).where(WebSession.token_hash == session_hash))


def csrf_ok(identity: Identity, presented: str | None) -> bool:
    """Constant-time comparison of a presented CSRF token with the session's."""
    return bool(presented) and secrets.compare_digest(identity.csrf, str(presented))
