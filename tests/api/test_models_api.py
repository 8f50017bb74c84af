"""The model registry through the API: versions, the gate, forced promotion with a reason, shadow runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.registry import EvalSetSpec, ModelRegistry
from tests.api.conftest import Deployment
from tests.models.test_registry import eval_set, model  # noqa: F401  (eval_set is a fixture)


@pytest.fixture
def registry(deployment: Deployment, tmp_path: Path, eval_set: EvalSetSpec) -> ModelRegistry:  # noqa: F811
    registry = ModelRegistry(tmp_path / "registry")
    registry.set_eval_sets([eval_set])
    registry.seed(model(tmp_path / "shipped.onnx", finds_stall=True), note="shipped")
    registry.register(model(tmp_path / "worse.onnx", finds_stall=False), note="trained on a bad day")
    deployment.client.app.state.services.registry = registry  # type: ignore[attr-defined]
    return registry


def test_the_registry_lists_versions_and_what_runs(deployment: Deployment, registry: ModelRegistry) -> None:
    response = deployment.client.get("/api/models/registry", headers=deployment.login("engineer-sun"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(v["version"], v["deployed"], v["note"]) for v in body["versions"]] == [
        (1, True, "shipped"),
        (2, False, "trained on a bad day"),
    ]
    assert body["deployed"] == 1 and body["shadow"] is None
    assert body["eval_sets"][0]["name"] == "street-fixed"
    assert [e["event"] for e in body["history"]][:2] == ["eval_sets", "register"]
    assert deployment.client.get("/api/models/registry", headers=deployment.login("officer-li")).status_code == 403


def test_a_worse_candidate_is_refused_until_forced_with_a_reason(
    deployment: Deployment, registry: ModelRegistry
) -> None:
    engineer = deployment.login("engineer-sun")
    refused = deployment.client.post("/api/models/registry/2/promote", json={}, headers=engineer)
    assert refused.status_code == 409
    assert "street-fixed: mAP50 0.000 against 0.995 deployed" in refused.json()["detail"]
    no_reason = deployment.client.post("/api/models/registry/2/promote", json={"force": True}, headers=engineer)
    assert no_reason.status_code == 422
    forced = deployment.client.post(
        "/api/models/registry/2/promote", json={"force": True, "reason": "field test at night"}, headers=engineer
    )
    assert forced.status_code == 200, forced.text
    assert forced.json()["forced"] is True and forced.json()["passed"] is False
    assert registry.deployed().version == 2  # type: ignore[union-attr]
    assert registry.history()[-1]["actor"] == "engineer-sun"
    unknown = deployment.client.post("/api/models/registry/9/promote", json={}, headers=engineer)
    assert unknown.status_code == 404
    head = deployment.client.post("/api/models/registry/1/promote", json={}, headers=deployment.login("head-chen"))
    assert head.status_code == 403  # heads read the registry; engineers and admins change it


def test_shadow_runs_start_report_and_stop(deployment: Deployment, registry: ModelRegistry) -> None:
    engineer = deployment.login("engineer-sun")
    started = deployment.client.put("/api/models/shadow", json={"version": 2}, headers=engineer)
    assert started.status_code == 200, started.text
    assert started.json()["version"] == 2
    assert registry.shadow_path.is_file()
    assert deployment.client.get("/api/models/shadow", headers=deployment.login("head-chen")).json()["version"] == 2
    assert deployment.client.put("/api/models/shadow", json={"version": 7}, headers=engineer).status_code == 404
    assert deployment.client.delete("/api/models/shadow", headers=engineer).status_code == 204
    assert not registry.shadow_path.exists()


def test_a_run_that_pins_a_model_file_has_no_registry(deployment: Deployment) -> None:
    response = deployment.client.get("/api/models/registry", headers=deployment.login("engineer-sun"))
    assert response.status_code == 409
    assert "pins a model file" in response.json()["detail"]
