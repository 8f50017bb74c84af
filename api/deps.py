"""What every route may depend on: the services, who is asking, and what their role allows.

A missing, unknown, expired or revoked token is 401; a valid one asking for what its role
may not do is 403. Each route names the roles it admits, so a route without a check cannot
be written by accident: `Allowed(...)` is the only way to get a `Principal`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.accounts import Issued, LoginPausedError, LoginRefusedError, LoginThrottle, Principal, resolve, revoke
from api.settings import ApiSettings
from api.uploads import UploadStore
from cases.casebook import Casebook
from cases.db import Database
from cases.states import Role
from models.registry import ModelRegistry
from pipelines.fume import MonitorService
from pipelines.survey_service import SurveyService

SESSION_COOKIE = "nonsite_session"
PARTY_COOKIE = "nonsite_party"  # its own, so a party portal login in the same browser leaves the console's alone

OFFICERS = frozenset({Role.OFFICER, Role.HEAD})
CASE_READERS = frozenset({Role.OFFICER, Role.HEAD, Role.LEGAL_REVIEWER})
CAMERA_READERS = frozenset({Role.OFFICER, Role.HEAD, Role.LEGAL_REVIEWER, Role.ENGINEER, Role.ADMIN})
CAMERA_EDITORS = frozenset({Role.ENGINEER, Role.ADMIN})
DETECTION_READERS = frozenset({Role.OFFICER, Role.HEAD, Role.LEGAL_REVIEWER, Role.ENGINEER})
MODEL_READERS = frozenset({Role.ENGINEER, Role.ADMIN, Role.HEAD})
ADMINS = frozenset({Role.ADMIN})
MODEL_EDITORS = frozenset({Role.ENGINEER, Role.ADMIN})
#: drone pilots are officers or engineers in most bureaus
SURVEY_STARTERS = frozenset({Role.OFFICER, Role.HEAD, Role.ENGINEER, Role.ADMIN})
SURVEY_READERS = SURVEY_STARTERS | {Role.LEGAL_REVIEWER}
REGISTRARS = frozenset({Role.HEAD, Role.ADMIN})
PREMISES_READERS = CASE_READERS | ADMINS
ANY_USER = frozenset(Role) - {Role.SYSTEM}


@dataclass
class Services:
    db: Database
    casebook: Casebook
    health_dir: Path
    settings: ApiSettings
    models_dir: Path
    model_path: Path | None
    throttle: LoginThrottle
    uploads: UploadStore
    monitors: MonitorService | None
    registry: ModelRegistry | None = None
    surveys: SurveyService | None = None


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
_bearer = HTTPBearer(auto_error=False, description="A session, device or party token")


def authenticate(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Whoever the bearer token (or the console's session cookie) speaks for; 401 if nobody."""
    cookie = PARTY_COOKIE if request.url.path.startswith("/api/party/") else SESSION_COOKIE
    token = credentials.credentials if credentials is not None else request.cookies.get(cookie)
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "log in first", headers={"WWW-Authenticate": "Bearer"})
    principal = resolve(services.db, token=token)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "the token is unknown, expired or revoked; log in again",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def users(roles: frozenset[Role]) -> Callable[[Principal], Principal]:
    """A dependency admitting users with one of `roles` (devices and parties are refused)."""

    def check(principal: PrincipalDep) -> Principal:
        if principal.kind != "user" or principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"{principal.name} ({principal.role or principal.kind}) may not do this; "
                f"it needs one of: {', '.join(sorted(roles))}",
            )
        return principal

    return check


def throttled_login(throttle: LoginThrottle, key: str, attempt: Callable[[], Issued]) -> Issued:
    """Run a login attempt under the throttle of `key`: 429 while it is paused, 401 when refused
    (and counted against it)."""
    try:
        throttle.check(key)
    except LoginPausedError as e:
        retry = str(int(e.retry_after_s) + 1)
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(e), headers={"Retry-After": retry}) from e
    try:
        issued = attempt()
    except LoginRefusedError as e:
        throttle.failed(key)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(e)) from e
    throttle.succeeded(key)
    return issued


def end_session(principal: Principal, services: Services, cookie: str) -> Response:
    """Revoke the token the request came with and clear its cookie."""
    if principal.token_id is not None:
        revoke(services.db, token_id=principal.token_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(cookie)
    return response


def invalid(where: str, name: str, message: str) -> RequestValidationError:
    """A 422 in the shape FastAPI documents for every route (`detail`: a list of errors), for
    what a route checks itself: `where` is body, query or path."""
    return RequestValidationError([{"loc": (where, name), "msg": message, "type": "value_error"}])


def party(principal: PrincipalDep) -> Principal:
    if principal.kind != "party":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the party portal takes a case access code login")
    return principal


Officer = Annotated[Principal, Depends(users(OFFICERS))]
CaseReader = Annotated[Principal, Depends(users(CASE_READERS))]
CameraReader = Annotated[Principal, Depends(users(CAMERA_READERS))]
CameraEditor = Annotated[Principal, Depends(users(CAMERA_EDITORS))]
DetectionReader = Annotated[Principal, Depends(users(DETECTION_READERS))]
ModelReader = Annotated[Principal, Depends(users(MODEL_READERS))]
ModelEditor = Annotated[Principal, Depends(users(MODEL_EDITORS))]
SurveyStarter = Annotated[Principal, Depends(users(SURVEY_STARTERS))]
SurveyReader = Annotated[Principal, Depends(users(SURVEY_READERS))]
Admin = Annotated[Principal, Depends(users(ADMINS))]
Registrar = Annotated[Principal, Depends(users(REGISTRARS))]
PremisesReader = Annotated[Principal, Depends(users(PREMISES_READERS))]
AnyUser = Annotated[Principal, Depends(users(ANY_USER))]
Party = Annotated[Principal, Depends(party)]
