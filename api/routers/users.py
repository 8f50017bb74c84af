"""Users and camera device tokens (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy import func, select

from api.accounts import UnknownAccountError, create_user, issue_device_token, revoke, update_user
from api.deps import Admin, CameraEditor, ServicesDep
from api.routers.auth import user_public
from api.schemas import (
    DeviceTokenCreate,
    DeviceTokenIssued,
    DeviceTokenPublic,
    Page,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from cases.models import ApiToken, User
from cases.states import Role

router = APIRouter(tags=["users"])


@router.get("/api/users", response_model=Page[UserPublic])
def list_users(
    _: Admin,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[UserPublic]:
    query = select(User).where(User.role != Role.SYSTEM.value)
    with services.db.session() as s:
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.scalars(query.order_by(User.username).offset(offset).limit(limit))
        return Page[UserPublic](total=total, offset=offset, limit=limit, items=[user_public(u) for u in rows])


@router.post("/api/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED, responses={409: {}})
def add_user(body: UserCreate, _: Admin, services: ServicesDep) -> UserPublic:
    user = create_user(
        services.db, username=body.username, role=body.role, password=body.password, display_name=body.display_name
    )
    return user_public(user)


@router.patch("/api/users/{username}", response_model=UserPublic, responses={404: {}, 409: {}})
def change_user(username: str, body: UserUpdate, _: Admin, services: ServicesDep) -> UserPublic:
    """Change a user; a new password, a new role or deactivation ends the user's sessions."""
    user = update_user(
        services.db,
        username=username,
        display_name=body.display_name,
        role=body.role,
        active=body.active,
        password=body.password,
    )
    return user_public(user)


@router.post(
    "/api/devices/tokens", response_model=DeviceTokenIssued, status_code=status.HTTP_201_CREATED, responses={404: {}}
)
def add_device_token(body: DeviceTokenCreate, _: CameraEditor, services: ServicesDep) -> DeviceTokenIssued:
    """A token for a camera worker (it may report that camera's health and snapshot) or a fume
    monitor (it may send its readings), and nothing else."""
    issued = issue_device_token(
        services.db,
        camera_id=body.camera_id,
        monitor_id=body.monitor_id,
        label=body.label,
        days=body.days or services.settings.device_token_days,
    )
    assert issued.principal.token_id is not None  # it has just been stored
    return DeviceTokenIssued(
        id=issued.principal.token_id,
        token=issued.token,
        camera_id=body.camera_id,
        monitor_id=body.monitor_id,
        expires_at=issued.expires_at,
    )


@router.get("/api/devices/tokens", response_model=Page[DeviceTokenPublic])
def list_device_tokens(
    _: CameraEditor,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[DeviceTokenPublic]:
    """The device tokens issued (never the tokens themselves), newest first, revoked ones too."""
    query = select(ApiToken).where(ApiToken.kind == "device")
    with services.db.session() as s:
        total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.scalars(query.order_by(ApiToken.id.desc()).offset(offset).limit(limit))
        items = [
            DeviceTokenPublic(
                id=t.id,
                label=t.label,
                camera_id=t.camera_id,
                monitor_id=t.monitor_id,
                created_at=t.created_at,
                expires_at=t.expires_at,
                revoked_at=t.revoked_at,
            )
            for t in rows
        ]
    return Page[DeviceTokenPublic](total=total, offset=offset, limit=limit, items=items)


@router.delete(
    "/api/devices/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={404: {}},
)
def revoke_device_token(
    token_id: Annotated[int, Path(ge=1, le=2**31 - 1)], _: CameraEditor, services: ServicesDep
) -> Response:
    """Revoke a device token at once (a camera machine lost or replaced)."""
    with services.db.session() as s:
        row = s.get(ApiToken, token_id)
        if row is None or row.kind != "device":
            raise UnknownAccountError(f"no device token {token_id}")
    revoke(services.db, token_id=token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
