"""Users, their logins and tokens, camera device tokens, and party access codes.

Database logic only (keyword-only arguments, domain errors); the routers turn these into
HTTP answers. Tokens and codes are random and stored only as their SHA-256, so a copy of
the database lets nobody log in.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from api.security import (
    digest,
    hash_password,
    needs_rehash,
    new_access_code,
    new_token,
    normalize_code,
    verify_password,
)
from cases.casebook import utc_now
from cases.db import Database
from cases.models import ApiToken, Camera, Case, CaseAccessCode, Monitor, User
from cases.states import Role

USER_ROLES = tuple(r for r in Role if r is not Role.SYSTEM)
MIN_PASSWORD = 10
MAX_THROTTLED = 10_000  # usernames with recent failed logins kept in memory


class AccountError(Exception):
    """A request about accounts that cannot be granted; the message says why."""


class UnknownAccountError(AccountError):
    pass


class LoginRefusedError(AccountError):
    pass


class LoginPausedError(AccountError):
    def __init__(self, username: str, retry_after_s: float) -> None:
        super().__init__(f"too many failed logins for {username!r}; try again in {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request speaks for: a user with a role, a camera device, or the party of one case."""

    kind: str  # user | device | party
    name: str  # username, device label, or party:<case number>
    role: str | None = None
    camera_id: str | None = None
    monitor_id: str | None = None
    case_id: int | None = None
    case_number: str | None = None
    token_id: int | None = None


@dataclass(frozen=True, slots=True)
class Issued:
    token: str  # shown once, never stored
    expires_at: datetime
    principal: Principal


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters, but this one has {len(password)}")


def create_user(db: Database, *, username: str, role: str, password: str | None, display_name: str = "") -> User:
    """Add a user who can log in (or, without a password, who cannot yet)."""
    if role not in USER_ROLES:
        raise AccountError(f"role must be one of {', '.join(USER_ROLES)}, but got {role!r}")
    if password is not None:
        check_password(password)
    with db.session() as s:
        if s.scalar(select(User).where(User.username == username)) is not None:
            raise AccountError(f"user {username!r} exists already")
        user = User(
            username=username,
            display_name=display_name or username,
            role=role,
            active=True,
            created_at=utc_now(),
            password_hash=hash_password(password) if password is not None else None,
        )
        s.add(user)
        return user


def update_user(
    db: Database,
    *,
    username: str,
    display_name: str | None = None,
    role: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> User:
    """Change what is given; deactivating a user or changing their password ends their sessions."""
    if role is not None and role not in USER_ROLES:
        raise AccountError(f"role must be one of {', '.join(USER_ROLES)}, but got {role!r}")
    if password is not None:
        check_password(password)
    now = utc_now()
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is None or user.role == Role.SYSTEM:
            raise UnknownAccountError(f"no user {username!r}")
        losing_admin = user.role == Role.ADMIN and (active is False or (role is not None and role != Role.ADMIN))
        if losing_admin and not s.scalar(
            select(User.id).where(User.role == Role.ADMIN.value, User.active.is_(True), User.id != user.id).limit(1)
        ):
            raise AccountError(f"{username} is the last active admin; make another admin first")
        if display_name is not None:
            user.display_name = display_name
        if role is not None:
            user.role = role
        if active is not None:
            user.active = active
        if password is not None:
            user.password_hash = hash_password(password)
        if active is False or password is not None or role is not None:
            for token in s.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))):
                token.revoked_at = now
        return user


def ensure_user(db: Database, *, username: str, role: str, password: str, display_name: str = "") -> bool:
    """Make the user if it does not exist (its password is set only then); True if it was made."""
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        if user is not None:
            if user.password_hash is None:
                user.password_hash = hash_password(password)
            return False
    create_user(db, username=username, role=role, password=password, display_name=display_name)
    return True


class LoginThrottle:
    """Pauses a username after repeated failures, so that passwords cannot be guessed at speed."""

    def __init__(self, attempts: int, pause_s: float) -> None:
        self.attempts = attempts
        self.pause_s = pause_s
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def check(self, username: str) -> None:
        with self._lock:
            recent = [t for t in self._failures.get(username, []) if time.monotonic() - t < self.pause_s]
            self._failures[username] = recent
            if len(recent) >= self.attempts:
                raise LoginPausedError(username, self.pause_s - (time.monotonic() - recent[0]))

    def failed(self, username: str) -> None:
        with self._lock:
            now = time.monotonic()
            if len(self._failures) > MAX_THROTTLED:  # made-up names must not grow it without end
                self._failures = {k: v for k, v in self._failures.items() if v and now - v[-1] < self.pause_s}
            self._failures.setdefault(username, []).append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username, None)


def login(db: Database, *, username: str, password: str, hours: float) -> Issued:
    """A session token for a user whose password matches; refusals do not say which part was wrong."""
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        hashed = user.password_hash if user is not None and user.active and user.role != Role.SYSTEM else None
        if not verify_password(password, hashed) or user is None:
            raise LoginRefusedError("wrong username or password, or the account is disabled")
        now = utc_now()
        if hashed and needs_rehash(hashed):
            user.password_hash = hash_password(password)
        user.last_login_at = now
        token = new_token()
        row = ApiToken(
            token_sha256=digest(token),
            kind="session",
            user_id=user.id,
            label="login",
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
        s.add(row)
        s.flush()
        return Issued(token, row.expires_at, Principal("user", user.username, role=user.role, token_id=row.id))


def issue_device_token(
    db: Database, *, camera_id: str | None = None, monitor_id: str | None = None, label: str, days: int
) -> Issued:
    """A token a camera worker uses to report its camera's health and snapshots, or a fume
    monitor to send its readings; it can do nothing else."""
    if (camera_id is None) == (monitor_id is None):
        raise AccountError("a device token is for one camera or one fume monitor")
    now = utc_now()
    with db.session() as s:
        if camera_id is not None and s.get(Camera, camera_id) is None:
            raise UnknownAccountError(f"no camera {camera_id!r}")
        if monitor_id is not None and s.get(Monitor, monitor_id) is None:
            raise UnknownAccountError(f"no fume monitor {monitor_id!r}")
        token = new_token()
        device = camera_id or monitor_id
        row = ApiToken(
            token_sha256=digest(token),
            kind="device",
            camera_id=camera_id,
            monitor_id=monitor_id,
            label=label or str(device),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        s.add(row)
        s.flush()
        principal = Principal(
            "device", f"device:{row.label}", camera_id=camera_id, monitor_id=monitor_id, token_id=row.id
        )
        return Issued(token, row.expires_at, principal)


def revoke(db: Database, *, token_id: int) -> None:
    with db.session() as s:
        row = s.get(ApiToken, token_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = utc_now()


def resolve(db: Database, *, token: str) -> Principal | None:
    """Who a bearer token speaks for, or None if it is unknown, expired, revoked, or its user disabled."""
    now = utc_now()
    with db.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_sha256 == digest(token)))
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            return None
        if row.kind == "session":
            user = row.user
            if user is None or not user.active:
                return None
            return Principal("user", user.username, role=user.role, token_id=row.id)
        if row.kind == "device":
            return Principal(
                "device", f"device:{row.label}", camera_id=row.camera_id, monitor_id=row.monitor_id, token_id=row.id
            )
        case = s.get(Case, row.case_id)
        if case is None:
            return None
        return Principal("party", f"party:{case.number}", case_id=case.id, case_number=case.number, token_id=row.id)


def issue_access_code(db: Database, *, case_number: str, by: str, days: int) -> tuple[str, datetime]:
    """A new code that opens this one case to its party; earlier codes of the case stop working."""
    now = utc_now()
    with db.session() as s:
        case = s.scalar(select(Case).where(Case.number == case_number))
        if case is None:
            raise UnknownAccountError(f"no case {case_number!r}")
        for old in s.scalars(
            select(CaseAccessCode).where(CaseAccessCode.case_id == case.id, CaseAccessCode.revoked_at.is_(None))
        ):
            old.revoked_at = now
        for session in s.scalars(  # and the portal sessions the old codes opened
            select(ApiToken).where(ApiToken.kind == "party", ApiToken.case_id == case.id, ApiToken.revoked_at.is_(None))
        ):
            session.revoked_at = now
        code = new_access_code()
        expires = now + timedelta(days=days)
        s.add(
            CaseAccessCode(
                case_id=case.id,
                code_sha256=digest(normalize_code(code)),
                created_by=by,
                created_at=now,
                expires_at=expires,
            )
        )
        return code, expires


def party_login(db: Database, *, case_number: str, code: str, hours: float) -> Issued:
    """A portal session for the party holding a live code of this case; any mismatch is one refusal."""
    now = utc_now()
    with db.session() as s:
        row = s.scalar(select(CaseAccessCode).where(CaseAccessCode.code_sha256 == digest(normalize_code(code))))
        case = s.get(Case, row.case_id) if row is not None else None
        if (
            row is None
            or case is None
            or case.number != case_number.strip()
            or row.revoked_at is not None
            or row.expires_at <= now
        ):
            raise LoginRefusedError("this access code does not open that case, or it has expired")
        token = new_token()
        session = ApiToken(
            token_sha256=digest(token),
            kind="party",
            case_id=case.id,
            label=f"party of {case.number}",
            created_at=now,
            expires_at=min(row.expires_at, now + timedelta(hours=hours)),
        )
        s.add(session)
        s.flush()
        principal = Principal(
            "party", f"party:{case.number}", case_id=case.id, case_number=case.number, token_id=session.id
        )
        return Issued(token, session.expires_at, principal)


DEMO_USERS = (
    ("officer-li", Role.OFFICER, "李警官 Officer Li"),
    ("officer-wang", Role.OFFICER, "王警官 Officer Wang"),
    ("head-chen", Role.HEAD, "陈队长 Head Chen"),
    ("legal-zhao", Role.LEGAL_REVIEWER, "赵法制 Legal reviewer Zhao"),
    ("engineer-sun", Role.ENGINEER, "孙工 Engineer Sun"),
)


def seed_accounts(db: Database, *, admin_password: str, development: bool) -> list[str]:
    """Make the `admin` account, and in development the demo officers, all with the
    development password; returns the usernames made now."""
    made = []
    if ensure_user(db, username="admin", role=Role.ADMIN, password=admin_password, display_name="管理员 Admin"):
        made.append("admin")
    if development:
        for username, role, name in DEMO_USERS:
            if ensure_user(db, username=username, role=role, password=admin_password, display_name=name):
                made.append(username)
    return made
