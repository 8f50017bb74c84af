"""The premises registry through the API: import by upload (refused whole with every problem
named), listing with case counts, and a premises page with its zones and cases."""

from __future__ import annotations

from tests.api.conftest import Deployment

CSV = (
    "code,name,kind,street,risk_grade,lat,lon,zones\n"
    "R-001,Old Wang noodles,restaurant,Wenhua,B,30.251,120.161,cam-kitchen:exhaust\n"
    "S-002,Corner shop,shop,Market,C,,,\n"
)


def test_a_head_imports_premises_and_the_kitchen_case_names_its_premises(deployment: Deployment) -> None:
    client, head = deployment.client, deployment.login("head-chen")
    dry = client.post("/api/premises/import", params={"dry_run": True}, content=CSV.encode(), headers=head)
    assert dry.status_code == 200 and dry.json()["created"] == ["R-001", "S-002"]
    assert client.get("/api/premises", headers=head).json()["total"] == 0, "a dry run writes nothing"
    done = client.post("/api/premises/import", content=CSV.encode(), headers=head)
    assert done.status_code == 200 and done.json()["ok"]
    listing = client.get("/api/premises", params={"street": "Wenhua"}, headers=head).json()
    assert [p["code"] for p in listing["items"]] == ["R-001"]
    # the zone was linked after the case was filed; a new finding there names the premises
    page = client.get("/api/premises/R-001", headers=head).json()
    assert page["zones"] == [{"camera_id": "cam-kitchen", "zone": "exhaust", "rule": "fume_watch"}]
    assert page["risk_grade"] == "B" and page["recent_cases"] == []
    assert client.get("/api/premises/X-404", headers=head).status_code == 404


def test_an_import_with_bad_rows_is_refused_whole_with_each_problem(deployment: Deployment) -> None:
    client, admin = deployment.client, deployment.login("admin")
    bad = CSV + "R-003,,restaurant,Wenhua,E,95,,cam-kitchen:roof\n"
    response = client.post("/api/premises/import", content=bad.encode(), headers=admin)
    assert response.status_code == 400
    problems = {(p["row"], p["column"]) for p in response.json()["problems"]}
    assert problems == {(4, "name"), (4, "risk_grade"), (4, "lat")}
    assert client.get("/api/premises", headers=admin).json()["total"] == 0
    assert client.get("/api/premises", headers=deployment.login("engineer-sun")).status_code == 403
    assert client.get("/api/premises", headers=deployment.login("officer-li")).json()["total"] == 0


def test_only_heads_and_admins_import_and_junk_is_a_clear_400(deployment: Deployment) -> None:
    client = deployment.client
    refused = client.post("/api/premises/import", content=CSV.encode(), headers=deployment.login("officer-li"))
    assert refused.status_code == 403
    junk = client.post("/api/premises/import", content=b"PK\x03\x04garbage", headers=deployment.login("head-chen"))
    assert junk.status_code == 400 and "Excel" in junk.json()["problems"][0]["message"]
