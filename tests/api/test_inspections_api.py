"""The inspection API: heads keep the pool, draw and publish; officers record the inspections
they are drawn for, with photos; anyone sees published draws and their results without
logging in, and never a seed or a draw before publication."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from cases.draws import verify
from cases.inspections import CHECKLIST
from cases.models import InspectionDraw, Party
from evidence.package import load_package
from tests.api.conftest import Deployment

HEAD = "head-chen"


def add_premises(deployment: Deployment, n: int = 4) -> list[str]:
    codes = [f"R-{i:03d}" for i in range(n)]
    with deployment.casebook.db.session() as s:
        for i, code in enumerate(codes):
            s.add(
                Party(
                    kind="restaurant",
                    name=f"面馆 {i}",
                    code=code,
                    street="文化街道",
                    risk_grade="AB"[i % 2],
                    created_at=datetime.now(UTC),
                )
            )
    return codes


def put_inspector(deployment: Deployment, inspector_id: str, username: str | None, street: str = "东湖街道") -> Any:
    body = {"name": f"检查员 {inspector_id}", "street": street, "username": username}
    return deployment.client.put(f"/api/inspectors/{inspector_id}", json=body, headers=deployment.login(HEAD))


@pytest.fixture
def registry(deployment: Deployment) -> Deployment:
    """Four premises on one street; the pool is officer-li's and officer-wang's inspectors, so each target gets both."""
    add_premises(deployment)
    for inspector_id, username in (("E-li", "officer-li"), ("E-wang", "officer-wang")):
        assert put_inspector(deployment, inspector_id, username).status_code == 200
    return deployment


def draw(deployment: Deployment, purpose: str = "2026 fume spot checks", **body: Any) -> Any:
    payload = {"purpose": purpose, "targets": 2, "stratify_by": ["grade"], **body}
    return deployment.client.post("/api/inspections/draws", json=payload, headers=deployment.login(HEAD))


def checklist(*failed: str) -> dict[str, dict[str, str]]:
    return {d.key: {i.key: "fail" if f"{d.key}.{i.key}" in failed else "pass" for i in d.items} for d in CHECKLIST}


def upload_photo(deployment: Deployment, user: str) -> str:
    data = cv2.imencode(".jpg", np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8))[1].tobytes()
    client, headers = deployment.client, deployment.login(user)
    declared = client.post(
        "/api/uploads",
        json={
            "filename": "purifier.jpg",
            "media_type": "image/jpeg",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
        headers=headers,
    )
    upload_id = declared.json()["id"]
    sent = client.patch(f"/api/uploads/{upload_id}", content=data, headers={**headers, "Upload-Offset": "0"})
    assert sent.json()["complete"] is True
    return str(upload_id)


def problems(response: Any) -> list[tuple[list[str], str]]:
    """A 422's errors as (where, message), in the shape FastAPI documents for every route."""
    assert response.status_code == 422, response.text
    return [(e["loc"], e["msg"]) for e in response.json()["detail"]]


def seed_of(deployment: Deployment, draw_id: int) -> str:
    with deployment.casebook.db.session() as s:
        seed = s.scalar(select(InspectionDraw.seed).where(InspectionDraw.id == draw_id))
    assert seed is not None
    return seed


def test_only_heads_draw_and_publish_and_heads_or_admins_keep_the_pool(registry: Deployment) -> None:
    client = registry.client
    officer = registry.login("officer-li")
    assert (
        client.post("/api/inspections/draws", json={"purpose": "p", "targets": 1}, headers=officer).status_code == 403
    )
    assert client.get("/api/inspectors", headers=officer).status_code == 403
    assert client.put("/api/inspectors/E-x", json={"name": "x", "street": "y"}, headers=officer).status_code == 403
    assert client.get("/api/inspectors", headers=registry.login("admin")).json()["count"] == 2
    assert client.get("/api/inspections", headers=registry.login("engineer-sun")).status_code == 403
    drawn = draw(registry)
    assert drawn.status_code == 201, drawn.text
    publish = f"/api/inspections/draws/{drawn.json()['id']}/publish"
    assert client.post(publish, headers=officer).status_code == 403
    assert client.post(publish, headers=registry.login("admin")).status_code == 403


def test_an_inspector_records_as_an_existing_officer_account(registry: Deployment) -> None:
    assert put_inspector(registry, "E-ghost", "officer-ghost").status_code == 404
    [(where, message)] = problems(put_inspector(registry, "E-eng", "engineer-sun"))
    assert where == ["body", "username"] and "who is engineer" in message
    pool = registry.client.get("/api/inspectors", headers=registry.login(HEAD)).json()
    assert [(i["id"], i["username"], i["active"]) for i in pool["items"]] == [
        ("E-li", "officer-li", True),
        ("E-wang", "officer-wang", True),
    ]
    domains = registry.client.get("/api/inspections/checklist", headers=registry.login("officer-li")).json()
    assert [d["number"] for d in domains] == list(range(1, 8))
    assert domains[1]["zh"] == "油烟净化设施" and domains[1]["emission"] is True


def test_a_draw_that_cannot_be_made_is_422_and_a_purpose_drawn_twice_409(registry: Deployment) -> None:
    assert problems(draw(registry, targets=5)) == [
        (["body", "targets"], "5 targets were asked but there are only 4 candidates")
    ]
    [(where, message)] = problems(draw(registry, targets={"grade=C": 1}))
    assert where == ["body", "targets"] and message.startswith("no candidates in stratum grade=C")
    assert draw(registry, stratify_by=["colour"]).status_code == 422
    assert draw(registry).status_code == 201
    again = draw(registry)
    assert again.status_code == 409 and "drawn already" in again.json()["detail"]


def test_the_public_endpoints_need_no_login_and_show_nothing_of_a_draw_before_publication(registry: Deployment) -> None:
    client = registry.client
    drawn = draw(registry).json()
    seed = seed_of(registry, drawn["id"])
    assert "seed" not in drawn
    head = registry.login(HEAD)
    for url in ("/api/inspections/draws", f"/api/inspections/draws/{drawn['id']}", "/api/inspections"):
        response = client.get(url, headers=head)
        assert response.status_code == 200 and seed not in response.text, url
    assert client.get("/api/public/draws").json() == {"count": 0, "items": []}
    assert client.get(f"/api/public/draws/{drawn['id']}").status_code == 404

    published = client.post(f"/api/inspections/draws/{drawn['id']}/publish", headers=head)
    assert published.status_code == 200 and seed not in published.text
    page = client.get("/api/public/draws")
    assert page.status_code == 200 and page.json()["items"][0]["seed"] == seed
    detail = client.get(f"/api/public/draws/{drawn['id']}").json()
    assert detail["commitment"] == hashlib.sha256(bytes.fromhex(seed)).hexdigest()
    assert detail["commitment_leaf"] < detail["published_leaf"]
    assert verify(detail["document"]) == []
    assert "cases.draws import verify" in detail["verify"]


def test_head_draws_publishes_officer_records_with_a_photo_and_the_public_sees_the_result(registry: Deployment) -> None:
    client, officer = registry.client, registry.login("officer-li")
    drawn = draw(registry).json()
    assert client.post(f"/api/inspections/draws/{drawn['id']}/publish", headers=registry.login(HEAD)).status_code == 200

    mine = client.get("/api/inspections", params={"state": "planned"}, headers=officer).json()
    assert mine["count"] == 2
    first = mine["items"][0]
    assert {i["id"] for i in first["inspectors"]} == {"E-li", "E-wang"}
    photo = upload_photo(registry, "officer-li")
    body = {"checklist": checklist("exhaust.not_toward_residents"), "note": "排口朝向居民楼", "photos": [photo]}
    recorded = client.post(f"/api/inspections/{first['id']}/result", json=body, headers=officer)
    assert recorded.status_code == 200, recorded.text
    result = recorded.json()
    assert (result["state"], result["result"], result["recorded_by"]) == ("done", "violation", "officer-li")
    assert result["case_number"] is not None and result["package_id"] is not None
    assert client.get(f"/api/uploads/{photo}", headers=officer).status_code == 404, "the sealed upload is removed"

    case = client.get(f"/api/cases/{result['case_number']}", headers=officer).json()
    assert (case["kind"], case["party"]) == ("fume", first["premises_name"])
    package, files = load_package(registry.vault.store, case["evidence_packages"][0]["package_id"])
    assert package.manifest["violation"]["premises"] == first["premises"]
    assert sorted(files) == ["01-purifier.jpg", "inspection-checklist.json"]

    public = {t["premises_id"]: t for t in client.get("/api/public/draws").json()["items"][0]["targets"]}
    assert public[first["premises"]]["result"] == "violation"
    assert [t["result"] for p, t in public.items() if p != first["premises"]] == [None]
    again = client.post(f"/api/inspections/{first['id']}/result", json={"checklist": checklist()}, headers=officer)
    assert again.status_code == 409


def test_a_bad_checklist_is_422_naming_the_item_and_seals_nothing(registry: Deployment) -> None:
    client, officer = registry.client, registry.login("officer-li")
    inspection = draw(registry).json()["inspections"][0]
    photo = upload_photo(registry, "officer-li")
    answers = checklist()
    answers["purifier"]["colour"] = "pass"
    del answers["frontage"]
    sealed = len(registry.vault.package_ids())
    response = client.post(
        f"/api/inspections/{inspection['id']}/result", json={"checklist": answers, "photos": [photo]}, headers=officer
    )
    assert [(where, message.split(" (")[0]) for where, message in problems(response)] == [
        (["body", "checklist"], "unknown item 'colour' of domain 'purifier'"),
        (["body", "checklist"], "domain 'frontage' is missing"),
    ]
    assert len(registry.vault.package_ids()) == sealed
    assert client.get(f"/api/uploads/{photo}", headers=officer).json()["complete"] is True, "the upload is kept"


def test_an_officer_sees_and_records_only_the_inspections_drawn_for_them(registry: Deployment) -> None:
    client = registry.client
    assert put_inspector(registry, "E-wang", None).status_code == 200  # wang's account no longer records for E-wang
    assert put_inspector(registry, "E-x", None, street="城南街道").status_code == 200
    inspection = draw(registry, purpose="no wang").json()["inspections"][0]
    wang = registry.login("officer-wang")
    assert client.get("/api/inspections", headers=wang).json()["count"] == 0
    assert client.get(f"/api/inspections/{inspection['id']}", headers=wang).status_code == 403
    refused = client.post(f"/api/inspections/{inspection['id']}/result", json={"checklist": checklist()}, headers=wang)
    assert refused.status_code == 403
    head = client.post(
        f"/api/inspections/{inspection['id']}/result", json={"checklist": checklist()}, headers=registry.login(HEAD)
    )
    assert head.status_code == 200 and head.json()["result"] == "pass"
    assert client.get("/api/inspections", headers=registry.login("legal-zhao")).json()["count"] == 2


def test_the_public_page_is_served_without_login(deployment: Deployment) -> None:
    page = deployment.client.get("/public/inspections")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "双随机、一公开" in page.text and "/static/public.js" in page.text
    script = deployment.client.get("/static/public.js")
    assert script.status_code == 200 and "/api/public/draws" in script.text
