"""Logging in and out: session tokens for users (and the console's cookie)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import select

from api.accounts import login
from api.deps import SESSION_COOKIE, AnyUser, PrincipalDep, ServicesDep, end_session, throttled_login
from api.schemas import LoginRequest, SessionToken, UserPublic
from cases.models import User

router = APIRouter(prefix="/api/auth", tags=["auth"])


def user_public(user: User) -> UserPublic:
    return UserPublic(
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        active=user.active,
        last_login_at=user.last_login_at,
    )


@router.post("/login", response_model=SessionToken, responses={401: {}, 429: {}})
def log_in(body: LoginRequest, request: Request, services: ServicesDep, response: Response) -> SessionToken:
    """Exchange a username and password for a bearer token (also set as an HTTP-only cookie)."""
    # failures pause this user from this address only, so nobody can lock an officer out from elsewhere
    key = f"{body.username}|{request.client.host if request.client else '-'}"
    issued = throttled_login(
        services.throttle,
        key,
        lambda: login(
            services.db, username=body.username, password=body.password, hours=services.settings.session_hours
        ),
    )
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=int(services.settings.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=services.settings.secure_cookies,
    )
    with services.db.session() as s:
        user = s.scalar(select(User).where(User.username == issued.principal.name))
        assert user is not None  # it has just logged in
        public = user_public(user)
    return SessionToken(access_token=issued.token, expires_at=issued.expires_at, user=public)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def log_out(principal: PrincipalDep, services: ServicesDep) -> Response:
    """End this token's session (users, devices and parties alike)."""
    return end_session(principal, services, SESSION_COOKIE)


@router.get("/me", response_model=UserPublic)
def me(principal: AnyUser, services: ServicesDep) -> UserPublic:
    with services.db.session() as s:
        user = s.scalar(select(User).where(User.username == principal.name))
        if user is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the user no longer exists")
        return user_public(user)
