"""Fume monitors through the API: registering one for premises, its device token sending
readings, an exceedance filed as a case that fuses with the kitchen camera's plume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.api.conftest import Deployment, sealed_finding

PREMISES = "code,name,street,zones\nR-001,Old Wang noodles,Wenhua,cam-kitchen:exhaust\n"


def readings(start: datetime, values: list[float], monitor: str = "mon-1") -> list[dict[str, object]]:
    return [
        {
            "monitor_id": monitor,
            "at": (start + timedelta(minutes=i)).isoformat(),
            "concentration_mg_m3": v,
            "purifier_on": True,
            "fan_on": True,
        }
        for i, v in enumerate(values)
    ]


def setup_monitor(deployment: Deployment) -> dict[str, str]:
    client = deployment.client
    assert (
        client.post("/api/premises/import", content=PREMISES.encode(), headers=deployment.login("admin")).status_code
        == 200
    )
    engineer = deployment.login("engineer-sun")
    made = client.put("/api/monitors/mon-1", json={"monitor_id": "mon-1", "premises_id": "R-001"}, headers=engineer)
    assert made.status_code == 200, made.text
    token = client.post("/api/devices/tokens", json={"monitor_id": "mon-1"}, headers=engineer).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_a_monitors_exceedance_joins_the_kitchen_cameras_plume_as_one_fused_case(deployment: Deployment) -> None:
    client, device = deployment.client, setup_monitor(deployment)
    # the kitchen camera's plume was filed two hours ago, before the premises was registered;
    # a new plume now names the premises, and the monitor's exceedance fuses with it
    plume = deployment.cases["cam-kitchen"]
    officer = deployment.login("officer-li")
    version = client.get(f"/api/cases/{plume}", headers=officer).json()["version"]
    client.post(
        f"/api/cases/{plume}/steps",
        json={"action": "reject", "version": version, "reason_code": "steam"},
        headers=officer,
    )
    start = datetime.now(UTC) - timedelta(minutes=30)
    fresh = deployment.casebook.file_package(sealed_finding(deployment.vault, "cam-kitchen", start, seed=7))
    sent = client.post("/api/monitors/mon-1/readings", json=readings(start, [3.0] * 8 + [0.4]), headers=device)
    assert sent.status_code == 200, sent.text
    assert sent.json()["accepted"] == 9 and sent.json()["cases"] == [fresh.case_number]
    case = client.get(f"/api/cases/{fresh.case_number}", headers=officer).json()
    assert case["party"] == "Old Wang noodles" and case["priority"] == 30 + 15
    sources = sorted(e["device"].get("kind", "camera") for e in case["evidence_packages"])
    assert sources == ["camera", "fume_monitor"]
    statuses = client.get("/api/monitors", headers=officer).json()
    assert [(m["monitor_id"], m["premises_id"]) for m in statuses] == [("mon-1", "R-001")]


def test_a_monitors_token_sends_only_its_own_readings(deployment: Deployment) -> None:
    client, device = deployment.client, setup_monitor(deployment)
    now = datetime.now(UTC)
    other = client.post("/api/monitors/mon-2/readings", json=readings(now, [1.0], "mon-2"), headers=device)
    assert other.status_code == 403
    mixed = client.post("/api/monitors/mon-1/readings", json=readings(now, [1.0], "mon-2"), headers=device)
    assert mixed.status_code == 422
    naive = client.post(
        "/api/monitors/mon-1/readings",
        json=[{"monitor_id": "mon-1", "at": "2026-12-07T10:00:00", "concentration_mg_m3": 1.0}],
        headers=device,
    )
    assert naive.status_code == 422 and "UTC offset" in naive.text
    assert client.get("/api/cases", headers=device).status_code == 403
    unknown = client.post(
        "/api/monitors/mon-9/readings", json=readings(now, [1.0], "mon-9"), headers=deployment.login("admin")
    )
    assert unknown.status_code == 404 and "register it first" in unknown.json()["detail"]


def test_a_monitor_of_unregistered_premises_is_refused(deployment: Deployment) -> None:
    response = deployment.client.put(
        "/api/monitors/mon-3", json={"monitor_id": "mon-3", "premises_id": "R-404"}, headers=deployment.login("admin")
    )
    assert response.status_code == 409 and "not in the registry" in response.json()["detail"]
