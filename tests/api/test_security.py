"""The API's security, as a specification: who may call what, what a token is worth once it
is expired, revoked or its user changed, what the party portal opens, and how the API holds
up against hostile input (path traversal, oversized uploads, password guessing, malformed
queries). Every refusal is a 4xx that says why; nothing hostile ever gets a 5xx.

The deployment fixture is costly (sealed evidence, two databases), so a table of inputs that
leave the deployment as they found it is walked inside one test, which fails listing every
row that answered wrongly.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select, update

from api.security import digest
from api.settings import DEVELOPMENT_PASSWORD, ApiSettings
from cases.models import ApiToken, CaseAccessCode, User
from tests.api.conftest import PASSWORD, Deployment

# the only /api operations that answer without a token, besides the public page of the
# inspections (双随机、一公开) under /api/public, open to anyone by design
PUBLIC = {("POST", "/api/auth/login"), ("POST", "/api/party/login"), ("GET", "/api/meta")}
PUBLIC_PREFIX = "/api/public/"
ROLE_USERS = {
    "officer": "officer-li",
    "head": "head-chen",
    "legal_reviewer": "legal-zhao",
    "engineer": "engineer-sun",
    "admin": "admin",
}
# a device token speaks for cam-street, a party token for the cam-street case
PRINCIPALS = (*ROLE_USERS, "device", "party")
JPEG = cv2.imencode(".jpg", np.full((24, 32, 3), 90, np.uint8))[1].tobytes()
LIMIT = 64 * 1024  # the deployment's max_upload_bytes


@pytest.fixture
def client(deployment: Deployment) -> Iterator[TestClient]:
    """The deployment's app answering as a server would: an unhandled error is a 500, not an exception."""
    with TestClient(deployment.client.app, raise_server_exceptions=False) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def fresh_login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """A session of its own (not the deployment's cached one), so that ending it ends nothing else."""
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    client.cookies.clear()  # the request's header alone says who it is
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def device_token(client: TestClient, deployment: Deployment, camera_id: str) -> dict[str, str]:
    response = client.post(
        "/api/devices/tokens", json={"camera_id": camera_id}, headers=deployment.login("engineer-sun")
    )
    assert response.status_code == 201, response.text
    return bearer(response.json()["token"])


def access_code(client: TestClient, deployment: Deployment, case_number: str) -> str:
    response = client.post(f"/api/cases/{case_number}/access-code", headers=deployment.login("officer-li"))
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


def party_login(client: TestClient, case_number: str, code: str) -> tuple[int, dict[str, str]]:
    """The status of a party's login and, when it succeeded, the party's headers."""
    response = client.post("/api/party/login", json={"case_number": case_number, "code": code})
    client.cookies.clear()
    if response.status_code != 200:
        return response.status_code, {}
    return 200, bearer(response.json()["access_token"])


def party_headers(client: TestClient, deployment: Deployment, camera_id: str) -> dict[str, str]:
    number = deployment.cases[camera_id]
    status, headers = party_login(client, number, access_code(client, deployment, number))
    assert status == 200
    return headers


def files_of(client: TestClient, deployment: Deployment, package_id: str) -> list[str]:
    response = client.get(f"/api/evidence/{package_id}", headers=deployment.login("head-chen"))
    assert response.status_code == 200, response.text
    return [f["name"] for f in response.json()["files"]]


def version_of(client: TestClient, deployment: Deployment, case_number: str) -> int:
    response = client.get(f"/api/cases/{case_number}", headers=deployment.login("head-chen"))
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


# --- every route needs a live token ------------------------------------------------------------


def api_operations(client: TestClient) -> list[tuple[str, str]]:
    """Every /api operation, from the app's OpenAPI paths (the console's pages, static files,
    /healthz and /metrics are outside /api and open by design)."""
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return sorted((method.upper(), path) for path, ops in paths.items() if path.startswith("/api") for method in ops)


def concrete(path: str, deployment: Deployment) -> str:
    """`path` with its parameters naming things that exist, so that only the token decides the answer."""
    values = {
        "number": deployment.cases["cam-street"],
        "package_id": deployment.packages["cam-street"],
        "camera_id": "cam-street",
        "zone_name": "sidewalk",
        "username": "officer-wang",
        "name": "keyframe.png",
    }
    # any other parameter: "1" is a fine id or name, since the token is checked before parameters
    return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), "1"), path)


def protected_operations(client: TestClient) -> list[tuple[str, str]]:
    return [op for op in api_operations(client) if op not in PUBLIC and not op[1].startswith(PUBLIC_PREFIX)]


def test_every_api_route_but_login_and_meta_is_401_with_a_bearer_challenge_without_a_token(
    client: TestClient, deployment: Deployment
) -> None:
    assert {op for op in api_operations(client) if op in PUBLIC} == PUBLIC
    assert client.get("/api/meta").status_code == 200
    assert {method for method, path in api_operations(client) if path.startswith(PUBLIC_PREFIX)} <= {"GET"}
    answers = {
        (method, path): client.request(method, concrete(path, deployment))
        for method, path in protected_operations(client)
    }
    assert len(answers) >= 25, "the walk found the API's operations"
    assert {op: r.status_code for op, r in answers.items() if r.status_code != 401} == {}
    assert [op for op, r in answers.items() if r.headers.get("www-authenticate") != "Bearer"] == []


def dead_tokens(client: TestClient, deployment: Deployment) -> dict[str, dict[str, str]]:
    """Headers that once were, or look like, a session, and are worth nothing now."""
    expired, revoked, hashed = (fresh_login(client, "head-chen") for _ in range(3))
    with deployment.casebook.db.session() as s:
        s.execute(
            update(ApiToken)
            .where(ApiToken.token_sha256 == digest(token_of(expired)))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert client.post("/api/auth/logout", headers=revoked).status_code == 204
    return {
        "garbage": bearer("not-a-token-at-all"),
        "empty": {"Authorization": "Bearer "},
        "basic": {"Authorization": "Basic YWRtaW46Y29ycmVjdCBob3JzZSBiYXR0ZXJ5"},
        "the hash of a live token": bearer(digest(token_of(hashed))),
        "expired": expired,
        "revoked by logout": revoked,
    }


def test_every_api_route_refuses_a_garbage_expired_or_revoked_token_with_401_and_a_challenge(
    client: TestClient, deployment: Deployment
) -> None:
    answers = {
        (how, method, path): client.request(method, concrete(path, deployment), headers=headers)
        for how, headers in dead_tokens(client, deployment).items()
        for method, path in protected_operations(client)
    }
    assert {k: r.status_code for k, r in answers.items() if r.status_code != 401} == {}
    assert [k for k, r in answers.items() if r.headers.get("www-authenticate") != "Bearer"] == []


def test_the_console_cookie_logs_in_like_the_bearer_token_and_dies_with_logout(client: TestClient) -> None:
    response = client.post("/api/auth/login", json={"username": "legal-zhao", "password": PASSWORD})
    cookie = response.cookies.get("nonsite_session")
    assert cookie == response.json()["access_token"]
    assert client.get("/api/cases").status_code == 200
    assert client.post("/api/auth/logout").status_code == 204
    client.cookies.set("nonsite_session", cookie)
    assert client.get("/api/cases").status_code == 401


# --- roles -----------------------------------------------------------------------------------

CASE_READERS = frozenset({"officer", "head", "legal_reviewer"})
OFFICERS = frozenset({"officer", "head"})
USERS = frozenset(ROLE_USERS)
CAMERA_EDITORS = frozenset({"engineer", "admin"})

# route: (method, path, who gets a 2xx); everyone else gets 403
ROLE_MATRIX: dict[str, tuple[str, str, frozenset[str]]] = {
    "list cases": ("GET", "/api/cases", CASE_READERS),
    "read a case": ("GET", "/api/cases/{case}", CASE_READERS),
    # legal_reviewer may read a case but the lifecycle refuses it the confirm step: also 403
    "confirm a case": ("POST", "/api/cases/{case}/steps", OFFICERS),
    "issue a party access code": ("POST", "/api/cases/{case}/access-code", OFFICERS),
    "read the review queue": ("GET", "/api/review", OFFICERS),
    "list detections": ("GET", "/api/detections", CASE_READERS | {"engineer"}),
    "correct a detection": ("PUT", "/api/detections/{detection}/correction", OFFICERS),
    "read an evidence package": ("GET", "/api/evidence/{package}", CASE_READERS),
    "read an evidence file": ("GET", "/api/evidence/{package}/files/{file}", CASE_READERS),
    "read the custody record": ("GET", "/api/evidence/{package}/custody", CASE_READERS),
    "see the map": ("GET", "/api/map/findings", CASE_READERS),
    "see the KPIs": ("GET", "/api/kpi", CASE_READERS),
    "list models": ("GET", "/api/models", frozenset({"engineer", "admin", "head"})),
    "list cameras": ("GET", "/api/cameras", USERS),
    "see a snapshot": ("GET", "/api/cameras/cam-street/snapshot", USERS),
    "edit a zone": ("PUT", "/api/cameras/cam-street/zones/sidewalk", CAMERA_EDITORS),
    "send its own camera's snapshot": ("PUT", "/api/cameras/cam-street/snapshot", CAMERA_EDITORS | {"device"}),
    "send its own camera's health": ("PUT", "/api/cameras/cam-street/health", CAMERA_EDITORS | {"device"}),
    "send another camera's snapshot": ("PUT", "/api/cameras/cam-kitchen/snapshot", CAMERA_EDITORS),
    "send another camera's health": ("PUT", "/api/cameras/cam-kitchen/health", CAMERA_EDITORS),
    "issue a device token": ("POST", "/api/devices/tokens", CAMERA_EDITORS),
    "list users": ("GET", "/api/users", frozenset({"admin"})),
    "create a user": ("POST", "/api/users", frozenset({"admin"})),
    "change a user": ("PATCH", "/api/users/officer-wang", frozenset({"admin"})),
    "declare a field upload": ("POST", "/api/uploads", OFFICERS),
    "who am I": ("GET", "/api/auth/me", USERS),
    "see the party's case": ("GET", "/api/party/case", frozenset({"party"})),
    "state a defense": ("POST", "/api/party/statements", frozenset({"party"})),
}


def health_report(camera_id: str) -> dict[str, object]:
    return {
        "camera_id": camera_id,
        "name": camera_id,
        "source": "rtsp://user:***@127.0.0.1/s",
        "worker": "w9",
        "state": "live",
        "updated_at": datetime.now(UTC).isoformat(),
    }


def role_request(route: str, client: TestClient, deployment: Deployment) -> dict[str, object]:
    """The arguments of a well-formed request for `route` of the role matrix."""
    method, path, _ = ROLE_MATRIX[route]
    case, package = deployment.cases["cam-street"], deployment.packages["cam-street"]
    values = {"case": case, "package": package, "file": "", "detection": ""}
    if "{file}" in path:
        values["file"] = files_of(client, deployment, package)[0]
    if "{detection}" in path:
        detections = client.get("/api/detections", params={"case": case}, headers=deployment.login("head-chen"))
        values["detection"] = str(detections.json()["items"][0]["id"])
    jpeg = {"content": JPEG, "headers": {"Content-Type": "image/jpeg"}}
    bodies: dict[str, dict[str, object]] = {
        "confirm a case": {"json": {"action": "confirm", "version": version_of(client, deployment, case)}},
        "correct a detection": {"json": {"label": "stall"}},
        "edit a zone": {"json": {"polygon": [[0, 0], [50, 0], [50, 40]]}},
        "send its own camera's snapshot": jpeg,
        "send another camera's snapshot": jpeg,
        "send its own camera's health": {"json": health_report("cam-street")},
        "send another camera's health": {"json": health_report("cam-kitchen")},
        "issue a device token": {"json": {"camera_id": "cam-site"}},
        "create a user": {"json": {"username": "officer-new", "role": "officer", "password": PASSWORD}},
        "change a user": {"json": {"display_name": "Officer Wang"}},
        "declare a field upload": {"json": {"filename": "p.jpg", "media_type": "image/jpeg", "size": 10}},
        "state a defense": {"json": {"text": "the stall was gone by noon"}},
    }
    return {"method": method, "url": path.format(**values)} | bodies.get(route, {})


def principal_headers(principal: str, client: TestClient, deployment: Deployment) -> dict[str, str]:
    if principal == "device":
        return device_token(client, deployment, "cam-street")
    if principal == "party":
        return party_headers(client, deployment, "cam-street")
    return deployment.login(ROLE_USERS[principal])


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_each_principal_may_do_what_its_role_allows_and_is_refused_the_rest_with_403(
    principal: str, client: TestClient, deployment: Deployment
) -> None:
    (deployment.health_dir / "cam-street.jpg").write_bytes(JPEG)
    headers = principal_headers(principal, client, deployment)
    expected = {route: "2xx" if principal in allowed else 403 for route, (_, _, allowed) in ROLE_MATRIX.items()}
    answered: dict[str, object] = {}
    for route in ROLE_MATRIX:
        request = role_request(route, client, deployment)
        request["headers"] = {**request.get("headers", {}), **headers}  # type: ignore[dict-item]
        response = client.request(**request)  # type: ignore[arg-type]
        answered[route] = "2xx" if 200 <= response.status_code < 300 else response.status_code
        if response.status_code == 403:
            assert response.json()["detail"], f"the refusal of {route!r} says why"
    assert answered == expected


# --- the party portal and officers' own uploads ---------------------------------------------------


def test_a_party_sees_its_own_case_and_files_and_another_case_s_package_is_404(
    client: TestClient, deployment: Deployment
) -> None:
    headers = party_headers(client, deployment, "cam-kitchen")
    case = client.get("/api/party/case", headers=headers)
    assert case.status_code == 200
    assert case.json()["number"] == deployment.cases["cam-kitchen"]
    own, other = deployment.packages["cam-kitchen"], deployment.packages["cam-street"]
    assert [p["package_id"] for p in case.json()["evidence_packages"]] == [own]
    name = case.json()["evidence_packages"][0]["files"][0]["name"]
    assert client.get(f"/api/party/evidence/{own}/files/{name}", headers=headers).status_code == 200
    assert name in files_of(client, deployment, other), "the other package has a file of that very name"
    assert client.get(f"/api/party/evidence/{other}/files/{name}", headers=headers).status_code == 404
    assert client.get(f"/api/evidence/{own}", headers=headers).status_code == 403, "not the officers' routes"


def test_an_access_code_opens_only_its_case_and_only_until_it_is_reissued(
    client: TestClient, deployment: Deployment
) -> None:
    street, kitchen = deployment.cases["cam-street"], deployment.cases["cam-kitchen"]
    old = access_code(client, deployment, street)
    assert party_login(client, kitchen, old)[0] == 401, "a code with another case's number"
    for spelling in (old.lower(), old.replace("-", ""), f"  {old} "):
        assert party_login(client, street, spelling)[0] == 200, f"read out loosely: {spelling!r}"
    new = access_code(client, deployment, street)
    assert party_login(client, street, old)[0] == 401, "the re-issued code replaced the old one"
    assert party_login(client, street, new)[0] == 200


def test_a_reissued_access_code_ends_the_portal_sessions_opened_with_the_old_one(
    client: TestClient, deployment: Deployment
) -> None:
    # an officer re-issues a code because the old one reached the wrong hands: whoever logged
    # in with it must not keep the case's evidence open for the rest of the session
    number = deployment.cases["cam-site"]
    _, leaked = party_login(client, number, access_code(client, deployment, number))
    assert client.get("/api/party/case", headers=leaked).status_code == 200
    access_code(client, deployment, number)
    assert client.get("/api/party/case", headers=leaked).status_code == 401


def test_a_field_upload_is_its_declarer_s_alone(client: TestClient, deployment: Deployment) -> None:
    li, wang = deployment.login("officer-li"), deployment.login("officer-wang")
    body = {"filename": "../../keys/engine.key", "media_type": "image/jpeg", "size": len(JPEG)}
    declared = client.post("/api/uploads", json=body, headers=li)
    assert declared.status_code == 201, declared.text
    upload = declared.json()
    assert "/" not in upload["filename"] and ".." not in upload["filename"]
    assert client.get(f"/api/uploads/{upload['id']}", headers=li).status_code == 200
    assert client.get(f"/api/uploads/{upload['id']}", headers=wang).status_code == 404
    chunk = {"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    assert client.patch(f"/api/uploads/{upload['id']}", content=JPEG, headers=wang | chunk).status_code == 404
    for upload_id in ("..%2F..%2Fkeys%2Fengine.key", "%2e%2e", "A" * 21 + "%0A", "A" * 22 + "%0A"):
        assert client.get(f"/api/uploads/{upload_id}", headers=li).status_code in (404, 422), upload_id


# --- evidence files and package ids ------------------------------------------------------------

HOSTILE_FILE_NAMES = (
    "../../keys/engine.key",  # the client resolves these dots itself, as a browser does
    "..%2F..%2Fkeys%2Fengine.key",
    "%2e%2e%2f%2e%2e%2fkeys%2fengine.key",
    "%2e%2e%5c%2e%2e%5ckeys%5cengine.key",
    "..%5C..%5Ckeys%5Cengine.key",
    "%2Fetc%2Fpasswd",
    "%2F%2Fetc%2Fpasswd",
    "C:%5CWindows%5Cwin.ini",
    "%2e%2e",
    "manifest.json",
    "keyframe_11.png%00.txt",
    "%C0%AE%C0%AE%2Fkeys",
    "{other_package}",  # a hash-looking name: a blob in the store, but no name in this manifest
)


def test_an_evidence_file_is_served_only_by_its_name_in_the_manifest(
    client: TestClient, deployment: Deployment
) -> None:
    package, other = deployment.packages["cam-street"], deployment.packages["cam-kitchen"]
    portals = {
        "/api/evidence": deployment.login("officer-li"),
        "/api/party/evidence": party_headers(client, deployment, "cam-street"),
    }
    answers = {
        (portal, name): client.get(f"{portal}/{package}/files/{name.format(other_package=other)}", headers=headers)
        for portal, headers in portals.items()
        for name in HOSTILE_FILE_NAMES
    }
    assert {k: r.status_code for k, r in answers.items() if r.status_code not in (404, 422)} == {}
    assert [k for k, r in answers.items() if b"PRIVATE KEY" in r.content] == []


BAD_PACKAGE_IDS = (
    "abc",
    "0" * 63,
    "0" * 65,
    "A" * 64,
    "g" * 64,
    "0" * 63 + "%0A",
    "0" * 64 + "%0A",
    "%20" + "0" * 63,
    "..%2F..%2Fkeys",
    "%2e%2e",
    "0" * 32 + "%2F" + "0" * 31,
)
PACKAGE_ROUTES = ("", "/files/x.png", "/bundle", "/verification", "/custody")


def test_a_package_id_that_is_not_64_hex_is_refused_and_an_unknown_one_is_404(
    client: TestClient, deployment: Deployment
) -> None:
    headers = deployment.login("officer-li")
    package = deployment.packages["cam-street"]
    name = files_of(client, deployment, package)[0]
    content = client.get(f"/api/evidence/{package}/files/{name}", headers=headers).content
    blob = hashlib.sha256(content).hexdigest()
    assert deployment.vault.store.get(blob) == content, "a file's content is in the store under its hash"
    malformed = {
        (package_id, route): code
        for package_id in BAD_PACKAGE_IDS
        for route in PACKAGE_ROUTES
        if (code := client.get(f"/api/evidence/{package_id}{route}", headers=headers).status_code) not in (404, 422)
    }
    assert malformed == {}
    # valid-looking: one nobody sealed, and a stored blob that no case holds as a package
    unknown = {
        (package_id, route): client.get(f"/api/evidence/{package_id}{route}", headers=headers).status_code
        for package_id in ("e" * 64, blob)
        for route in PACKAGE_ROUTES
    }
    assert {k: code for k, code in unknown.items() if code != 404} == {}


# --- uploads ---------------------------------------------------------------------------------


def chunks(data: bytes, size: int = 8192) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


OVERSIZED = JPEG + b"\0" * (LIMIT + 1 - len(JPEG))


def test_a_snapshot_over_the_upload_limit_is_413_whatever_its_content_length_says(
    client: TestClient, deployment: Deployment
) -> None:
    headers = device_token(client, deployment, "cam-street") | {"Content-Type": "image/jpeg"}
    sent = {
        "with a truthful Content-Length": {"content": OVERSIZED},
        "chunked, without a Content-Length": {"content": chunks(OVERSIZED)},
        "with a Content-Length that lies low": {"content": OVERSIZED, "headers": {"Content-Length": "100"}},
        "small, but claiming too much": {"content": JPEG, "headers": {"Content-Length": str(10 * LIMIT)}},
    }
    answers = {
        how: client.put(
            "/api/cameras/cam-street/snapshot",
            content=body["content"],  # type: ignore[arg-type]
            headers=headers | body.get("headers", {}),  # type: ignore[operator]
        ).status_code
        for how, body in sent.items()
    }
    assert answers == dict.fromkeys(sent, 413)
    assert not (deployment.health_dir / "cam-street.jpg").exists()


def test_a_snapshot_of_exactly_the_upload_limit_is_taken(client: TestClient, deployment: Deployment) -> None:
    data = JPEG + b"\0" * (LIMIT - len(JPEG))
    headers = device_token(client, deployment, "cam-street") | {"Content-Type": "image/jpeg"}
    assert client.put("/api/cameras/cam-street/snapshot", content=chunks(data), headers=headers).status_code == 204
    assert (deployment.health_dir / "cam-street.jpg").read_bytes() == data


def test_a_snapshot_that_is_not_a_jpeg_is_415(client: TestClient, deployment: Deployment) -> None:
    headers = device_token(client, deployment, "cam-street") | {"Content-Type": "image/jpeg"}
    sent = {
        "empty": b"",
        "png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
        "svg": b"<svg onload=alert(1)>",
        "two bytes of the JPEG magic": b"\xff\xd8",
    }
    answers = {
        what: client.put("/api/cameras/cam-street/snapshot", content=data, headers=headers).status_code
        for what, data in sent.items()
    }
    assert answers == dict.fromkeys(sent, 415)
    assert not (deployment.health_dir / "cam-street.jpg").exists()


# --- logins, and secrets at rest -----------------------------------------------------------------


def test_after_too_many_failed_logins_even_the_right_password_waits_429(client: TestClient) -> None:
    for _ in range(3):  # the deployment's login_attempts
        wrong = client.post("/api/auth/login", json={"username": "officer-wang", "password": "a wrong guess"})
        assert wrong.status_code == 401
    paused = client.post("/api/auth/login", json={"username": "officer-wang", "password": PASSWORD})
    assert paused.status_code == 429
    assert int(paused.headers["Retry-After"]) > 0
    assert "access_token" not in paused.json()
    unknown = client.post("/api/auth/login", json={"username": "nobody", "password": PASSWORD})
    assert unknown.status_code == 401
    assert unknown.json() == wrong.json(), "an unknown user is refused in the same words as a wrong password"
    assert client.post("/api/auth/login", json={"username": "officer-li", "password": PASSWORD}).status_code == 200


def test_after_too_many_failed_party_logins_even_the_right_code_waits_429(
    client: TestClient, deployment: Deployment
) -> None:
    number = deployment.cases["cam-street"]
    code = access_code(client, deployment, number)
    for _ in range(3):
        assert party_login(client, number, "AAAA-BBBB-CCCC")[0] == 401
    paused = client.post("/api/party/login", json={"case_number": number, "code": code})
    assert paused.status_code == 429, paused.text
    assert int(paused.headers["Retry-After"]) > 0


def test_passwords_are_argon2id_and_tokens_and_access_codes_only_their_hash(
    client: TestClient, deployment: Deployment
) -> None:
    session = token_of(fresh_login(client, "officer-wang"))
    device = token_of(device_token(client, deployment, "cam-site"))
    code = access_code(client, deployment, deployment.cases["cam-site"])
    with deployment.casebook.db.session() as s:
        hashes = dict(s.execute(select(User.username, User.password_hash).where(User.password_hash.is_not(None))).all())
        rows = [*s.execute(select(*ApiToken.__table__.columns)), *s.execute(select(*CaseAccessCode.__table__.columns))]
        token_hashes = set(s.scalars(select(ApiToken.token_sha256)))
    assert set(hashes) >= set(ROLE_USERS.values())
    assert [name for name, h in hashes.items() if not h.startswith("$argon2id$")] == []
    stored = " ".join(str(value) for row in rows for value in row)
    assert [s for s in (session, device, code, code.replace("-", ""), PASSWORD) if s in stored] == []
    assert {digest(session), digest(device)} <= token_hashes


# --- settings ---------------------------------------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NONSITE_ENVIRONMENT", "NONSITE_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize(
    "password",
    [
        pytest.param(None, id="unset"),
        pytest.param(DEVELOPMENT_PASSWORD, id="development-default"),
        pytest.param("short-pw", id="too-short"),
    ],
)
def test_production_refuses_a_default_or_weak_admin_password(password: str | None) -> None:
    given = {} if password is None else {"admin_password": password}
    with pytest.raises(ValidationError, match="NONSITE_ADMIN_PASSWORD"):
        ApiSettings(environment="production", **given)


@pytest.mark.usefixtures("clean_environment")
def test_production_refuses_the_development_default_set_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NONSITE_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="development default"):
        ApiSettings()


@pytest.mark.usefixtures("clean_environment")
def test_production_takes_a_strong_admin_password_and_keeps_it_out_of_its_repr() -> None:
    settings = ApiSettings(environment="production", admin_password="a long secret of our own")
    assert not settings.development
    assert settings.admin_password.get_secret_value() == "a long secret of our own"
    assert "a long secret" not in repr(settings)


# --- what ends a session -----------------------------------------------------------------------


def test_deactivating_a_user_or_changing_their_password_or_role_ends_their_sessions(
    client: TestClient, deployment: Deployment
) -> None:
    changes = {
        "officer-wang": {"active": False},
        "legal-zhao": {"password": "a brand new password"},
        "engineer-sun": {"role": "officer"},
    }
    sessions = {user: fresh_login(client, user) for user in changes}
    bystander = fresh_login(client, "head-chen")
    for user, change in changes.items():
        response = client.patch(f"/api/users/{user}", json=change, headers=deployment.login("admin"))
        assert response.status_code == 200, response.text
    assert {user: client.get("/api/auth/me", headers=h).status_code for user, h in sessions.items()} == dict.fromkeys(
        changes, 401
    )
    assert client.get("/api/auth/me", headers=bystander).status_code == 200, "others keep their sessions"
    relogin = client.post("/api/auth/login", json={"username": "officer-wang", "password": PASSWORD})
    assert relogin.status_code == 401, "a deactivated user cannot log in again"


def test_logging_out_ends_only_that_session(client: TestClient) -> None:
    first, second = fresh_login(client, "officer-wang"), fresh_login(client, "officer-wang")
    assert client.post("/api/auth/logout", headers=first).status_code == 204
    assert client.get("/api/auth/me", headers=first).status_code == 401
    assert client.get("/api/auth/me", headers=second).status_code == 200


# --- concurrent officers -----------------------------------------------------------------------


def test_a_step_on_a_case_someone_else_moved_is_409_and_says_to_reload(
    client: TestClient, deployment: Deployment
) -> None:
    case = deployment.cases["cam-street"]
    li, wang = deployment.login("officer-li"), deployment.login("officer-wang")
    seen_by_li = client.get(f"/api/cases/{case}", headers=li).json()["version"]
    seen_by_wang = client.get(f"/api/cases/{case}", headers=wang).json()["version"]
    confirmed = client.post(f"/api/cases/{case}/steps", json={"action": "confirm", "version": seen_by_li}, headers=li)
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "confirmed"
    stale = {"action": "reject", "version": seen_by_wang, "reason_code": "steam"}
    response = client.post(f"/api/cases/{case}/steps", json=stale, headers=wang)
    assert response.status_code == 409
    assert "reload" in response.json()["detail"]
    assert client.get(f"/api/cases/{case}", headers=wang).json()["state"] == "confirmed", "the stale step did nothing"


# --- hostile queries are never a server error ----------------------------------------------------
# (a 4xx that says what is wrong, or for a filter that matches nothing, an empty page)

HOSTILE_REQUESTS = (
    # times without a zone: the database refuses them, so the API must refuse them first
    ("officer-li", "GET", "/api/cases?since=2024-01-01T00:00:00"),
    ("officer-li", "GET", "/api/cases?until=2024-01-01T00:00:00"),
    ("officer-li", "GET", "/api/detections?since=2024-01-01T00:00:00"),
    ("officer-li", "GET", "/api/map/findings?until=2024-01-01T00:00:00"),
    ("officer-li", "GET", "/api/kpi?start=2024-01-01T00:00:00"),
    # an empty or reversed period
    ("officer-li", "GET", "/api/kpi?start=2024-02-01T00:00:00Z&end=2024-01-01T00:00:00Z"),
    ("officer-li", "GET", "/api/kpi?start=2024-01-01T00:00:00Z&end=2024-01-01T00:00:00Z"),
    # numbers past what the database holds
    ("admin", "GET", "/api/users?offset=9223372036854775808"),
    ("admin", "GET", "/api/cameras?offset=9223372036854775808"),
    ("officer-li", "GET", "/api/cases?limit=99999999999999999999"),
    ("officer-li", "PUT", "/api/detections/2147483648/correction"),
    ("officer-li", "PUT", "/api/detections/9223372036854775808/correction"),
    ("officer-li", "PUT", "/api/detections/-1/correction"),
    # NUL and other bytes a database string cannot hold
    ("officer-li", "GET", "/api/cases/%00"),
    ("officer-li", "GET", "/api/cases?camera=%00"),
    ("officer-li", "GET", "/api/detections?label=%00"),
    ("admin", "GET", "/api/cameras/%00"),
    ("admin", "PATCH", "/api/users/%00"),
)


def test_a_hostile_query_is_answered_without_a_server_error(client: TestClient, deployment: Deployment) -> None:
    bodies = {"PUT": {"label": "stall"}, "PATCH": {"display_name": "x"}}
    answers = {
        f"{method} {url}": client.request(method, url, json=bodies.get(method), headers=deployment.login(user))
        for user, method, url in HOSTILE_REQUESTS
    }
    failed = [f"{k} -> {r.status_code} {r.text[:100]}" for k, r in answers.items() if r.status_code >= 500]
    assert not failed, "server errors:\n" + "\n".join(failed)
