"""Drone surveys through the API: started on a flight in the drop folder, followed, their findings filed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from datasets.synthetic.survey import SurveyTruth
from datasets.synthetic.survey_oracle import TruthDetector
from pipelines.survey_service import SurveyService
from tests.api.conftest import Deployment
from tests.conftest import wait_for
from tests.pipelines.test_survey import (
    CONFIG,
    TILE,
    survey,  # noqa: F401  (a module fixture)
)


@pytest.fixture
def service(deployment: Deployment, survey: SurveyTruth, tmp_path: Path) -> Iterator[SurveyService]:  # noqa: F811
    detector = TruthDetector.for_survey(survey, tile=TILE)
    service = SurveyService(
        tmp_path / "surveys", detector=lambda: detector, casebook=deployment.casebook, config=CONFIG
    )
    root = survey.survey.images[0].parent.parent
    for name in ("baseline", "survey"):
        shutil.copytree(root / name, service.incoming / "town" / name)
    for layer in (survey.permits_path, survey.streets_path, survey.orthomosaic_path):
        shutil.copy(layer, service.incoming / "town" / layer.name)
    deployment.client.app.state.services.surveys = service  # type: ignore[attr-defined]
    yield service
    service.stop()


def test_a_survey_runs_in_the_background_and_files_its_findings(deployment: Deployment, service: SurveyService) -> None:
    officer = deployment.login("officer-li")
    body = {"folder": "town/survey", "baseline": "town/baseline", "permits": "town/permits.geojson",
            "streets": "town/streets.geojson"}  # fmt: skip
    started = deployment.client.post("/api/surveys", json=body, headers=officer)
    assert started.status_code == 202, started.text
    survey_id = started.json()["id"]
    assert started.json()["state"] in ("queued", "running")

    def state() -> str:
        return deployment.client.get(f"/api/surveys/{survey_id}", headers=officer).json()["state"]

    wait_for(lambda: state() in ("done", "failed"), 120, "the survey to finish")
    done = deployment.client.get(f"/api/surveys/{survey_id}", headers=officer).json()
    assert done["state"] == "done", done["error"]
    assert done["done"] == done["images"] > 0
    geojson = deployment.client.get(f"/api/surveys/{survey_id}/findings.geojson", headers=officer)
    assert geojson.status_code == 200 and geojson.headers["content-type"].startswith("application/geo+json")
    features = json.loads(geojson.content)["features"]
    kinds = {f["properties"]["kind"] for f in features}
    assert kinds == {"occupation", "construction", "permitted"}
    found = [f for f in features if f["properties"]["kind"] != "permitted"]
    assert all(f["properties"]["case_number"] for f in found), "every finding was filed as a case"
    report = deployment.client.get(f"/api/surveys/{survey_id}/report", headers=officer)
    assert report.status_code == 200 and "permit" in report.text.lower()
    listed = deployment.client.get("/api/surveys", headers=deployment.login("legal-zhao")).json()
    assert [s["id"] for s in listed] == [survey_id]


def test_a_survey_against_an_orthomosaic_in_the_drop_folder_finds_the_new_structures(
    deployment: Deployment, service: SurveyService
) -> None:
    officer = deployment.login("engineer-sun")
    body = {"folder": "town/survey", "baseline": "town/baseline_ortho.tif", "permits": "town/permits.geojson"}
    started = deployment.client.post("/api/surveys", json=body, headers=officer)
    assert started.status_code == 202, started.text
    survey_id = started.json()["id"]
    wait_for(lambda: service.status(survey_id).state in ("done", "failed"), 120, "the survey to finish")
    done = deployment.client.get(f"/api/surveys/{survey_id}", headers=officer).json()
    assert done["state"] == "done", done["error"]
    assert done["baseline"] == "town/baseline_ortho.tif"
    assert done["counts"]["baseline_orthomosaics"] == 1 and done["counts"]["construction_findings"] >= 1


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"folder": "../etc"}, "folder", "outside the drop folder"),
        ({"folder": "/etc"}, "folder", "inside the drop folder"),
        ({"folder": "nowhere"}, "folder", "is not a folder"),
        ({"folder": "town/survey", "baseline": "town/none"}, "baseline", "is neither a folder nor a file"),
        ({"folder": "town/survey", "permits": "town/survey"}, "permits", "is not a file"),
    ],
)
def test_paths_outside_or_missing_from_the_drop_folder_are_refused(
    deployment: Deployment, service: SurveyService, body: dict[str, str], field: str, message: str
) -> None:
    response = deployment.client.post("/api/surveys", json=body, headers=deployment.login("engineer-sun"))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", field] and message in error["msg"]
    assert service.list() == []


def test_who_may_start_and_read_surveys(deployment: Deployment, service: SurveyService) -> None:
    body = {"folder": "town/survey"}
    assert deployment.client.post("/api/surveys", json=body, headers=deployment.login("legal-zhao")).status_code == 403
    assert deployment.client.get("/api/surveys/none-such", headers=deployment.login("officer-li")).status_code == 404
    assert deployment.client.get("/api/surveys", headers=deployment.login("engineer-sun")).status_code == 200
    assert deployment.client.get("/api/surveys", headers=deployment.login("legal-zhao")).status_code == 200


def test_a_service_without_surveys_says_so(deployment: Deployment) -> None:
    response = deployment.client.get("/api/surveys", headers=deployment.login("officer-li"))
    assert response.status_code == 409 and "no drone surveys" in response.json()["detail"]
