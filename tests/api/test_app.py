"""The officers' API end to end, on SQLite and PostgreSQL: the review queue, confirming and
rejecting, correcting detections, case pages, evidence with custody, cameras and zones, the
map, KPIs, users, and Prometheus metrics."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from cases.models import Case, Detection, Zone
from tests.api.conftest import PASSWORD, Deployment, write_health


def test_the_review_queue_puts_higher_priority_first_and_carries_the_boxes(deployment: Deployment) -> None:
    page = deployment.client.get("/api/review", headers=deployment.login("officer-li")).json()
    assert page["total"] == 3
    assert [item["kind"] for item in page["items"]] == ["fume", "construction", "occupation"]
    item = page["items"][0]
    assert item["state"] == "pending_review" and 0 <= item["age_s"] < 600
    assert [d["frame"] for d in item["detections"]] == [11, 13], "the boxes at the two keyframes"
    assert item["detections"][0]["box"] == [31.0, 20.0, 91.0, 70.0]
    assert item["detections"][0]["label"] == "smoke"


def test_the_review_queue_filters_and_pages(deployment: Deployment) -> None:
    client, headers = deployment.client, deployment.login("officer-li")
    only = client.get("/api/review", params={"camera": "cam-street"}, headers=headers).json()
    assert only["total"] == 1 and only["items"][0]["detections"][0]["label"] == "stall"
    second = client.get("/api/review", params={"offset": 1, "limit": 1}, headers=headers).json()
    assert second["total"] == 3 and [i["kind"] for i in second["items"]] == ["construction"]


def test_confirming_leaves_the_queue_and_records_who_and_the_custody(deployment: Deployment) -> None:
    client, headers = deployment.client, deployment.login("officer-li")
    number = deployment.cases["cam-kitchen"]
    case = client.get(f"/api/cases/{number}", headers=headers).json()
    assert [a["action"] for a in case["allowed_actions"]] == ["confirm", "reject"]

    response = client.post(
        f"/api/cases/{number}/steps", json={"action": "confirm", "version": case["version"]}, headers=headers
    )
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["state"] == "confirmed"
    assert after["transitions"][-1] | {"at": None} == after["transitions"][-1] | {
        "at": None,
        "action": "confirm",
        "actor": "officer-li",
        "role": "officer",
    }
    assert {a["action"] for a in after["allowed_actions"]} == {"warn"}, "an officer warns; filing is the head's"
    queue = client.get("/api/review", headers=headers).json()
    assert number not in [i["number"] for i in queue["items"]] and queue["total"] == 2
    custody = client.get(f"/api/evidence/{deployment.packages['cam-kitchen']}/custody", headers=headers).json()
    assert [(e["actor"], e["action"]) for e in custody] == [("officer-li", "confirm")]


def test_rejecting_needs_a_reason_code_and_keeps_it(deployment: Deployment) -> None:
    client, headers = deployment.client, deployment.login("officer-wang")
    number = deployment.cases["cam-kitchen"]
    version = client.get(f"/api/cases/{number}", headers=headers).json()["version"]
    missing = client.post(f"/api/cases/{number}/steps", json={"action": "reject", "version": version}, headers=headers)
    assert missing.status_code == 409 and "reason code" in missing.json()["detail"]
    unknown = client.post(
        f"/api/cases/{number}/steps",
        json={"action": "reject", "version": version, "reason_code": "clouds"},
        headers=headers,
    )
    assert unknown.status_code == 422
    done = client.post(
        f"/api/cases/{number}/steps",
        json={"action": "reject", "version": version, "reason_code": "steam", "reason": "kitchen steam, no smoke"},
        headers=headers,
    ).json()
    assert (done["state"], done["outcome"]) == ("rejected", "rejected:steam")
    assert done["transitions"][-1]["reason_code"] == "steam" and done["allowed_actions"] == []


def test_a_step_on_a_case_that_moved_on_is_refused_with_409(deployment: Deployment) -> None:
    client = deployment.client
    number = deployment.cases["cam-street"]
    seen = client.get(f"/api/cases/{number}", headers=deployment.login("officer-li")).json()["version"]
    first = client.post(
        f"/api/cases/{number}/steps",
        json={"action": "confirm", "version": seen},
        headers=deployment.login("officer-li"),
    )
    assert first.status_code == 200
    second = client.post(
        f"/api/cases/{number}/steps",
        json={"action": "reject", "version": seen, "reason_code": "shadow"},
        headers=deployment.login("officer-wang"),
    )
    assert second.status_code == 409 and "reload" in second.json()["detail"]


def test_a_case_page_has_history_deadlines_evidence_files_and_boxes(deployment: Deployment) -> None:
    number = deployment.cases["cam-site"]
    case = deployment.client.get(f"/api/cases/{number}", headers=deployment.login("legal-zhao")).json()
    assert [t["action"] for t in case["transitions"]] == ["queue"]
    assert case["transitions"][0]["actor"] == "system"
    assert [(d["name"], d["status"]) for d in case["deadlines"]] == [("review", "running")]
    (package,) = case["evidence_packages"]
    assert package["package_id"] == deployment.packages["cam-site"]
    kinds = sorted({f["kind"] for f in package["files"]})
    assert kinds == ["annotated", "clip", "keyframe"]
    assert case["allowed_actions"] == [], "a legal reviewer does not review detections"
    assert len(case["detections"]) == 2
    assert deployment.client.get("/api/cases/CG-2026-999999", headers=deployment.login("legal-zhao")).status_code == 404


def test_evidence_files_are_served_from_the_manifest_and_downloads_are_recorded(deployment: Deployment) -> None:
    client, headers = deployment.client, deployment.login("officer-li")
    package = deployment.packages["cam-street"]
    manifest = client.get(f"/api/evidence/{package}", headers=headers).json()
    clip = next(f for f in manifest["files"] if f["kind"] == "clip")
    video = client.get(clip["url"], headers=headers)
    assert (
        video.status_code == 200 and video.headers["content-type"] == "video/mp4" and len(video.content) == clip["size"]
    )
    image = client.get(f"/api/evidence/{package}/files/keyframe-000011.png", params={"download": True}, headers=headers)
    assert image.content.startswith(b"\x89PNG") and image.headers["content-disposition"].startswith("attachment")
    bundle = client.get(f"/api/evidence/{package}/bundle", headers=headers)
    assert bundle.status_code == 200 and bundle.content.startswith(b"PK")
    actions = [e["action"] for e in client.get(f"/api/evidence/{package}/custody", headers=headers).json()]
    assert actions == ["view", "download", "export"]


def test_verification_checks_the_bundle_as_a_stranger_would(deployment: Deployment) -> None:
    package = deployment.packages["cam-kitchen"]
    result = deployment.client.get(
        f"/api/evidence/{package}/verification", headers=deployment.login("head-chen")
    ).json()
    assert result["ok"] is True
    names = {c["name"] for c in result["checks"]}
    assert len(names) >= 5 and all(c["ok"] for c in result["checks"])


def test_verification_says_so_when_a_stored_file_was_altered(deployment: Deployment) -> None:
    package = deployment.packages["cam-kitchen"]
    store = deployment.vault.store
    entry = json.loads(store.get(package))["files"]["keyframe-000011.png"]
    path = store.path_of(entry["sha256"])
    path.chmod(0o644)
    path.write_bytes(b"not the keyframe")
    result = deployment.client.get(f"/api/evidence/{package}/verification", headers=deployment.login("head-chen"))
    assert result.status_code == 200 and result.json()["ok"] is False
    (check,) = result.json()["checks"]
    assert entry["sha256"] in check["detail"] and "no longer matches its hash" in check["detail"]


def test_officers_correct_labels_and_boxes_and_the_engine_original_stays(deployment: Deployment) -> None:
    client, headers = deployment.client, deployment.login("officer-li")
    detection = client.get("/api/review", params={"camera": "cam-street"}, headers=headers).json()["items"][0][
        "detections"
    ][0]
    fixed = client.put(
        f"/api/detections/{detection['id']}/correction",
        json={"label": "umbrella", "box": [10, 12, 60, 80]},
        headers=headers,
    ).json()
    assert (fixed["label"], fixed["corrected_label"], fixed["corrected_box"]) == ("stall", "umbrella", [10, 12, 60, 80])
    assert fixed["corrected_by"] == "officer-li"
    backwards = client.put(
        f"/api/detections/{detection['id']}/correction", json={"box": [60, 12, 10, 80]}, headers=headers
    )
    assert backwards.status_code == 422
    empty = client.put(f"/api/detections/{detection['id']}/correction", json={}, headers=headers)
    assert empty.status_code == 409
    corrected = client.get("/api/detections", params={"corrected": True}, headers=deployment.login("engineer-sun"))
    assert [d["id"] for d in corrected.json()["items"]] == [detection["id"]]
    with deployment.casebook.db.session() as s:
        row = s.get(Detection, detection["id"])
        assert row is not None and (row.x1, row.corrected_by) == (detection["box"][0], "officer-li")


def test_case_list_filters_by_state_kind_camera_and_time(deployment: Deployment) -> None:
    client, headers = deployment.client, deployment.login("head-chen")
    assert client.get("/api/cases", headers=headers).json()["total"] == 3
    assert client.get("/api/cases", params={"kind": "fume"}, headers=headers).json()["total"] == 1
    assert client.get("/api/cases", params={"state": "closed"}, headers=headers).json()["total"] == 0
    assert client.get("/api/cases", params={"camera": "cam-site"}, headers=headers).json()["total"] == 1
    future = client.get("/api/cases", params={"since": "2999-01-01T00:00:00Z"}, headers=headers).json()
    assert future["total"] == 0 and future["items"] == []
    assert client.get("/api/cases", params={"limit": 0}, headers=headers).status_code == 422


def test_cameras_carry_zones_health_and_snapshots(deployment: Deployment) -> None:
    client, headers = deployment.client, deployment.login("officer-li")
    write_health(deployment.health_dir, "cam-site", state="live")
    cameras = {c["id"]: c for c in client.get("/api/cameras", headers=headers).json()["items"]}
    assert cameras["cam-kitchen"]["health"]["state"] == "reconnecting"
    assert cameras["cam-street"]["zones"][0]["polygon"] == [[8.0, 8.0], [152.0, 8.0], [152.0, 88.0], [8.0, 88.0]]
    assert not cameras["cam-street"]["has_snapshot"]
    assert client.get("/api/cameras/cam-street/snapshot", headers=headers).status_code == 404
    jpeg = b"\xff\xd8\xff\xe0" + b"\0" * 100
    engineer = deployment.login("engineer-sun")
    assert client.put("/api/cameras/cam-street/snapshot", content=jpeg, headers=engineer).status_code == 204
    assert client.get("/api/cameras/cam-street/snapshot", headers=headers).content == jpeg


def test_a_zone_drawn_in_the_console_survives_the_next_registration(deployment: Deployment) -> None:
    client = deployment.client
    polygon = [[10, 10], [100, 12], [90, 80]]
    drawn = client.put(
        "/api/cameras/cam-street/zones/sidewalk", json={"polygon": polygon}, headers=deployment.login("engineer-sun")
    )
    assert drawn.status_code == 200 and drawn.json()["edited_by"] == "engineer-sun"
    deployment.casebook.register_camera(
        "cam-street", zones=[("sidewalk", "no_occupation")], polygons={"sidewalk": [(0, 0), (5, 0), (5, 5)]}
    )
    with deployment.casebook.db.session() as s:
        zone = s.scalar(select(Zone).where(Zone.camera_id == "cam-street"))
        assert zone is not None and zone.polygon == [[10.0, 10.0], [100.0, 12.0], [90.0, 80.0]]
    too_few = client.put(
        "/api/cameras/cam-street/zones/sidewalk", json={"polygon": [[1, 1], [2, 2]]}, headers=deployment.login("admin")
    )
    assert too_few.status_code == 422
    unknown = client.put(
        "/api/cameras/cam-street/zones/roof", json={"polygon": polygon}, headers=deployment.login("admin")
    )
    assert unknown.status_code == 404


def test_the_map_gives_geojson_points_of_open_cases_with_a_place(deployment: Deployment) -> None:
    features = deployment.client.get("/api/map/findings", headers=deployment.login("officer-li")).json()["features"]
    places = {f["properties"]["camera_id"]: f["geometry"]["coordinates"] for f in features}
    assert places == {"cam-street": [120.161, 30.251], "cam-kitchen": [120.162, 30.252]}, "cam-site has no place"


def test_kpis_count_what_officers_did(deployment: Deployment) -> None:
    client, headers = deployment.client, deployment.login("officer-li")
    number = deployment.cases["cam-street"]
    version = client.get(f"/api/cases/{number}", headers=headers).json()["version"]
    client.post(f"/api/cases/{number}/steps", json={"action": "confirm", "version": version}, headers=headers)
    report = client.get("/api/kpi", headers=deployment.login("head-chen")).json()
    (row,) = report["rows"]
    assert (row["detections"], row["confirmed"], row["rejected"]) == (3, 1, 0)
    assert [o["officer"] for o in report["officers"]] == ["officer-li"]
    assert client.get("/api/kpi", params={"by": "nonsense"}, headers=headers).status_code == 422


def test_admins_make_users_who_can_then_log_in(deployment: Deployment) -> None:
    client, admin = deployment.client, deployment.login("admin")
    made = client.post(
        "/api/users",
        json={"username": "officer-zhou", "role": "officer", "password": "a long passphrase", "display_name": "Zhou"},
        headers=admin,
    )
    assert made.status_code == 201 and made.json()["role"] == "officer"
    again = client.post(
        "/api/users",
        json={"username": "officer-zhou", "role": "officer", "password": "a long passphrase"},
        headers=admin,
    )
    assert again.status_code == 409
    short = client.post("/api/users", json={"username": "x-y", "role": "officer", "password": "short"}, headers=admin)
    assert short.status_code == 422
    login = client.post("/api/auth/login", json={"username": "officer-zhou", "password": "a long passphrase"})
    assert login.status_code == 200 and login.json()["user"]["display_name"] == "Zhou"
    users = client.get("/api/users", headers=admin).json()
    assert "system" not in [u["username"] for u in users["items"]] and users["total"] == 7


@pytest.mark.parametrize("password", ["wrong password!", PASSWORD.upper()])
def test_a_wrong_password_is_401_without_saying_which_part_was_wrong(deployment: Deployment, password: str) -> None:
    wrong = deployment.client.post("/api/auth/login", json={"username": "officer-li", "password": password})
    nobody = deployment.client.post("/api/auth/login", json={"username": "no-such-user", "password": password})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json()


def test_the_console_logs_in_with_its_cookie(deployment: Deployment) -> None:
    client = deployment.client
    client.post("/api/auth/login", json={"username": "officer-li", "password": PASSWORD})
    assert client.get("/api/auth/me").json()["username"] == "officer-li"
    assert client.post("/api/auth/logout").status_code == 204
    client.cookies.clear()
    assert client.get("/api/auth/me").status_code == 401


def test_metrics_are_prometheus_text_per_camera(deployment: Deployment) -> None:
    response = deployment.client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert 'nonsite_camera_up{camera="cam-street",worker="w1"} 1.0' in response.text
    assert 'nonsite_camera_up{camera="cam-kitchen",worker="w1"} 0.0' in response.text


def test_filing_records_the_keyframe_boxes_and_a_priority(deployment: Deployment) -> None:
    with deployment.casebook.db.session() as s:
        rows = {c.kind: c.priority for c in s.scalars(select(Case))}
        labels = sorted({d.label for d in s.scalars(select(Detection))})
    assert rows == {"fume": 30, "construction": 20, "occupation": 10}
    assert labels == ["construction", "smoke", "stall"]


def test_cases_are_filtered_by_place_their_own_or_their_cameras(deployment: Deployment) -> None:
    client, headers = deployment.client, deployment.login("head-chen")
    near_street = client.get("/api/cases", params={"bbox": "120.1605,30.2505,120.1615,30.2515"}, headers=headers)
    assert [c["camera_id"] for c in near_street.json()["items"]] == ["cam-street"]
    both = client.get("/api/cases", params={"bbox": "120,30,121,31"}, headers=headers).json()
    assert both["total"] == 2, "cam-site has no place, so it is in no box"
    for bad in ("1,2,3", "121,30,120,31", "a,b,c,d"):
        response = client.get("/api/cases", params={"bbox": bad}, headers=headers)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "bbox"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/cases", {"since": "2026-12-01T00:00:00"}),
        ("/api/map/findings", {"until": "2026-12-01T00:00:00"}),
        ("/api/kpi", {"start": "2026-12-01T00:00:00"}),
        ("/api/kpi", {"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"}),
    ],
)
def test_times_without_a_zone_and_empty_periods_are_422(deployment: Deployment, path: str, params: dict) -> None:
    response = deployment.client.get(path, params=params, headers=deployment.login("head-chen"))
    assert response.status_code == 422, response.text


def test_the_meta_says_development_and_which_reasons_need_words(deployment: Deployment) -> None:
    meta = deployment.client.get("/api/meta").json()
    assert meta["development"] is True
    assert [r["code"] for r in meta["reason_codes"] if r["needs_text"]] == ["other"]


def test_no_access_code_for_a_closed_case_and_the_party_login_leaves_the_console_logged_in(
    deployment: Deployment,
) -> None:
    client, officer = deployment.client, deployment.login("officer-li")
    rejected = deployment.cases["cam-kitchen"]
    version = client.get(f"/api/cases/{rejected}", headers=officer).json()["version"]
    client.post(
        f"/api/cases/{rejected}/steps",
        json={"action": "reject", "version": version, "reason_code": "steam"},
        headers=officer,
    )
    assert client.post(f"/api/cases/{rejected}/access-code", headers=officer).status_code == 409
    number = deployment.cases["cam-street"]
    code = client.post(f"/api/cases/{number}/access-code", headers=officer).json()["code"]
    client.post("/api/auth/login", json={"username": "officer-li", "password": PASSWORD})  # the console's cookie
    client.post("/api/party/login", json={"case_number": number, "code": code})  # the party's, same browser
    assert client.get("/api/auth/me").json()["username"] == "officer-li"
    assert client.get("/api/party/case").json()["number"] == number
    assert client.post("/api/party/logout").status_code == 204
    assert client.get("/api/auth/me").status_code == 200, "the party logging out leaves the console alone"


def test_the_last_active_admin_cannot_be_disabled_or_demoted(deployment: Deployment) -> None:
    client, admin = deployment.client, deployment.login("admin")
    for change in ({"active": False}, {"role": "officer"}):
        refused = client.patch("/api/users/admin", json=change, headers=admin)
        assert refused.status_code == 409 and "last active admin" in refused.json()["detail"]
    client.post(
        "/api/users", json={"username": "admin-two", "role": "admin", "password": "another passphrase"}, headers=admin
    )
    assert client.patch("/api/users/admin", json={"active": False}, headers=admin).status_code == 200


def test_device_tokens_are_listed_without_their_secret_and_revoked_at_once(deployment: Deployment) -> None:
    client, engineer = deployment.client, deployment.login("engineer-sun")
    issued = client.post("/api/devices/tokens", json={"camera_id": "cam-street", "label": "box-3"}, headers=engineer)
    device = {"Authorization": f"Bearer {issued.json()['token']}"}
    jpeg = b"\xff\xd8\xff\xe0" + b"\0" * 100
    assert client.put("/api/cameras/cam-street/snapshot", content=jpeg, headers=device).status_code == 204
    listed = client.get("/api/devices/tokens", headers=engineer).json()
    (row,) = listed["items"]
    assert (row["id"], row["label"], row["camera_id"], row["revoked_at"]) == (
        issued.json()["id"],
        "box-3",
        "cam-street",
        None,
    )
    assert "token" not in row
    assert client.delete(f"/api/devices/tokens/{row['id']}", headers=deployment.login("officer-li")).status_code == 403
    assert client.delete(f"/api/devices/tokens/{row['id']}", headers=engineer).status_code == 204
    assert client.put("/api/cameras/cam-street/snapshot", content=jpeg, headers=device).status_code == 401
    assert client.delete("/api/devices/tokens/999", headers=engineer).status_code == 404
