"""The API's contract: the OpenAPI schema is checked in (docs/openapi.json) so that every change
to it shows in review; every operation says what it answers; and a fuzzer (schemathesis) finds
no request, well-formed or malformed, that makes the API fail or answer off its schema.

After a deliberate change to the API, regenerate the checked-in schema with

    NONSITE_WRITE_OPENAPI=1 .venv/bin/pytest tests/api/test_openapi.py -k checked_in
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, GenerationMode

from api.app import create_app
from api.settings import ApiSettings
from cases.db import Database
from evidence.vault import Vault
from tests.api.conftest import Deployment

CHECKED_IN = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
REGENERATE = "NONSITE_WRITE_OPENAPI=1 .venv/bin/pytest tests/api/test_openapi.py -k checked_in"
# answers that are files, not JSON: they need no schema
BINARY = ("image/", "video/", "audio/", "application/zip", "application/octet-stream", "text/plain", "text/csv")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    """A bare app: the schema depends on the code, not on what the database holds."""
    db = Database(f"sqlite:///{tmp_path / 'cases.db'}")
    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    (tmp_path / "health").mkdir()
    yield create_app(db, vault, tmp_path / "health", settings=ApiSettings(environment="development"))
    vault.close()
    db.close()


def rendered(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_the_openapi_schema_is_the_checked_in_one(app: FastAPI) -> None:
    current = rendered(app.openapi())
    if os.environ.get("NONSITE_WRITE_OPENAPI"):
        CHECKED_IN.write_text(current, encoding="utf-8")
    assert CHECKED_IN.is_file(), f"docs/openapi.json is missing; write it with\n    {REGENERATE}"
    if CHECKED_IN.read_text(encoding="utf-8") != current:
        checked_in = json.loads(CHECKED_IN.read_text(encoding="utf-8"))["paths"]
        now = app.openapi()["paths"]
        changed = sorted(
            (checked_in.keys() ^ now.keys()) | {p for p in checked_in.keys() & now.keys() if checked_in[p] != now[p]}
        )
        pytest.fail(
            "the API's OpenAPI schema differs from docs/openapi.json"
            + (f" (paths changed: {', '.join(changed)})" if changed else " (outside its paths)")
            + f"; if the change is meant, regenerate it with\n    {REGENERATE}\nand commit it with the change"
        )


def operations(app: FastAPI) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            yield f"{method.upper()} {path}", op


def test_every_operation_declares_what_it_answers_on_success(app: FastAPI) -> None:
    undeclared = {}
    for name, op in operations(app):
        success = {code: r for code, r in op["responses"].items() if code in ("200", "201", "202", "204")}
        if not success:
            undeclared[name] = "no 2xx response"
        for code, response in success.items():
            content = response.get("content", {})
            if code == "204":
                if content:
                    undeclared[name] = "204 with content"
                continue
            if not content:
                undeclared[name] = f"{code} without content"
            for media_type, body in content.items():
                if media_type.startswith(BINARY):
                    continue
                if not body.get("schema"):
                    undeclared[name] = f"{code} {media_type} without a schema (give the route a response_model)"
    assert undeclared == {}


def test_every_operation_has_a_tag_to_group_it_by_resource(app: FastAPI) -> None:
    assert [name for name, op in operations(app) if not op.get("tags")] == []


# --- errors the routes raise themselves -----------------------------------------------------------

# requests that a route refuses with a 422 of its own making (not FastAPI's validation): the
# answer must still have the shape the schema documents for 422
ROUTE_MADE_422S = {
    "a control: FastAPI's own 422": ("officer-li", "GET", "/api/cases", {"query": {"limit": 0}}),
    "a bbox of two numbers": ("officer-li", "GET", "/api/cases", {"query": {"bbox": "120.1,30.2"}}),
    "a health report of another camera": (
        "engineer-sun",
        "PUT",
        "/api/cameras/{camera_id}/health",
        {
            "path_parameters": {"camera_id": "cam-street"},
            "body": {
                "camera_id": "cam-kitchen",
                "name": "cam-kitchen",
                "source": "rtsp://***",
                "worker": "w1",
                "state": "live",
                "updated_at": "2026-01-05T08:00:00Z",
            },
            "media_type": "application/json",
        },
    ),
    "readings of another monitor": (
        "engineer-sun",
        "POST",
        "/api/monitors/{monitor_id}/readings",
        {
            "path_parameters": {"monitor_id": "m-1"},
            "body": [{"monitor_id": "m-2", "at": "2026-01-05T08:00:00Z", "concentration_mg_m3": 1.0}],
            "media_type": "application/json",
        },
    ),
}


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the answer's shape is the code's, not the database's
def test_a_422_a_route_makes_itself_has_the_shape_the_schema_documents(deployment: Deployment) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", deployment.client.app)
    schema.config.checks.update(included_check_names=["response_schema_conformance"])
    failures = {}
    for what, (user, method, path, request) in ROUTE_MADE_422S.items():
        case = schema[path][method].Case(**request)
        try:
            response = case.call_and_validate(headers=deployment.login(user))
        except (Exception, BaseExceptionGroup) as e:
            failures[what] = str(e)
        else:
            assert response.status_code == 422, f"{what}: {response.status_code} {response.text[:200]}"
    assert not failures, f"{len(failures)} answers off the schema:\n\n" + "\n\n".join(
        f"=== {what}\n{message}" for what, message in failures.items()
    )


# --- fuzzing -------------------------------------------------------------------------------------
# Each operation is fuzzed with well-formed (positive) and malformed (negative) requests through
# schemathesis' Hypothesis strategies, one operation after another in one test, so that the costly
# deployment is made once per user. (schemathesis' own pytest integration, `from_fixture`, does
# not run under pytest 9: it sets `request.node._nodeid`, which pytest 9 no longer has.)

FUZZ_EXAMPLES = 6  # per operation and mode: the whole fuzz (both users) takes about a minute
FUZZ_CHECKS = [
    # Not checked: status codes the schema does not list. Routes do not document their 401 and
    # 403, and the admin is refused the officers' routes by design (that is test_security's).
    # Nor negative_data_rejection: it counts as "accepted" what HTTP APIs accept by convention
    # (unknown query parameters, a number for a date-time read as a Unix time), and it counts the
    # Authorization header as missing where we send it. That a malformed request is never a 5xx
    # is not_a_server_error on the negative (malformed) cases.
    "not_a_server_error",
    "response_schema_conformance",
    "content_type_conformance",
]
# a field upload's chunks are raw bytes under the tus protocol's media type
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
# logging out revokes the very token the fuzzer is sending: every later request would be a 401
NOT_FUZZED = r"/logout$"


def fuzz_operation(operation: APIOperation, mode: GenerationMode, headers: dict[str, str]) -> int:
    """Fuzz one operation in one mode; returns how many requests were sent (failures raise)."""
    sent = 0

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(headers=headers)

    run()
    return sent


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # slow; the other tests cover both
@pytest.mark.parametrize("user", ["officer-li", "admin"])  # between them, past every role check
def test_no_request_makes_the_api_fail_or_answer_off_its_schema(deployment: Deployment, user: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", deployment.client.app).exclude(path_regex=NOT_FUZZED)
    schema.config.checks.update(included_check_names=FUZZ_CHECKS)
    headers = deployment.login(user)
    sent, failures = 0, {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                sent += fuzz_operation(operation, mode, headers)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, f"{operation.label} cannot be called well-formed"
                # an operation without parameters or body cannot be called malformed
            except (Exception, BaseExceptionGroup) as e:
                failures[f"{operation.label} ({mode.value})"] = str(e)
    assert sent > 200, "the fuzzer reached the operations"
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(
        f"=== {label}\n{message}" for label, message in failures.items()
    )
