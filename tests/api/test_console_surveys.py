"""The console's drone survey page in a real browser (headless Chromium through Playwright),
served with a survey service whose detector reports exactly what a small synthetic two-flight
survey put on the ground: an officer is told by the field what is wrong with a path, starts the
survey, watches it run to the end, and opens it to find its stalls and new structures plotted
in lon/lat and listed with the cases they were filed as, one of which they follow; a legal
reviewer reads the list (in English), a failed survey's error included, with no form to start
one; a service without surveys says so.

`NONSITE_SCREENSHOTS=1` writes the docs' screenshot of a done survey to docs/screenshots/
(else to the test's tmp_path).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from cases.casebook import Casebook
from datasets.synthetic.survey import SurveyTruth
from datasets.synthetic.survey_oracle import TruthDetector
from pipelines.survey_service import SurveyRequest, SurveyService
from tests.api.browser import DOCS_SCREENSHOTS, Contexts, log_in
from tests.api.live import LiveDeployment, serve_deployment
from tests.conftest import wait_for
from tests.pipelines.test_survey import (
    CONFIG,
    TILE,
    survey,  # noqa: F401  (a module fixture)
)

pytestmark = pytest.mark.browser

SURVEY_SECONDS = 180  # about 15 s alone; the machine may be busy
LAYERS = {"folder": "town/survey", "baseline": "town/baseline", "permits": "town/permits.geojson",
          "streets": "town/streets.geojson"}  # fmt: skip


@dataclass
class Served:
    live: LiveDeployment
    surveys: SurveyService


@pytest.fixture(scope="module")
def detector(survey: SurveyTruth) -> TruthDetector:  # noqa: F811
    return TruthDetector.for_survey(survey, tile=TILE)


@pytest.fixture
def served(
    template: Path,
    tmp_path: Path,
    survey: SurveyTruth,  # noqa: F811
    detector: TruthDetector,
) -> Iterator[Served]:
    """A deployment whose drop folder holds the flight, its baseline and the permits and streets as town/."""
    made: list[SurveyService] = []

    def surveys(casebook: Casebook) -> SurveyService:
        service = SurveyService(tmp_path / "surveys", detector=lambda: detector, casebook=casebook, config=CONFIG)
        root = survey.survey.images[0].parent.parent
        for name in ("baseline", "survey"):
            shutil.copytree(root / name, service.incoming / "town" / name)
        for layer in (survey.permits_path, survey.streets_path):
            shutil.copy(layer, service.incoming / "town" / layer.name)
        made.append(service)
        return service

    with serve_deployment(tmp_path / "live", template=template, surveys=surveys) as live:
        yield Served(live, made[0])


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """Where the docs' screenshots go: docs/screenshots with NONSITE_SCREENSHOTS=1, else the test's folder."""
    folder = DOCS_SCREENSHOTS if os.environ.get("NONSITE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_surveys(page: Page, live: LiveDeployment, username: str) -> None:
    log_in(page, live, username)
    page.get_by_test_id("nav-surveys").click()
    expect(page.locator("main[data-page=surveys]")).to_be_visible()


def test_an_officer_starts_a_survey_watches_it_finish_and_follows_a_finding_to_its_case(
    served: Served, browsers: Contexts, docs: Path
) -> None:
    page = browsers.new_page()
    open_surveys(page, served.live, "officer-li")
    expect(page.locator("main h1")).to_have_text("航拍巡查")
    expect(page.get_by_test_id("surveys-empty")).to_be_visible()
    expect(page.get_by_test_id("survey-hint")).to_contain_text("相对于服务器的投放目录（var/surveys/incoming）")

    folder, baseline = page.get_by_test_id("survey-folder"), page.get_by_test_id("survey-baseline")
    folder.fill("town/nowhere")
    page.get_by_test_id("survey-submit").click()
    expect(page.get_by_test_id("survey-folder-error")).to_have_text(
        "folder 'town/nowhere' is not a folder in the drop folder"
    )
    expect(folder).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_test_id("survey-baseline-error")).to_be_hidden()

    folder.fill(LAYERS["folder"])
    expect(page.get_by_test_id("survey-folder-error")).to_be_hidden()  # typing clears it
    baseline.fill("../baseline")
    page.get_by_test_id("survey-submit").click()
    expect(page.get_by_test_id("survey-baseline-error")).to_have_text(
        "baseline '../baseline' lies outside the drop folder"
    )
    expect(baseline).to_have_attribute("aria-invalid", "true")
    expect(folder).not_to_have_attribute("aria-invalid", "true")
    assert served.surveys.list() == [], "a refused request queues nothing"

    for name in ("baseline", "permits", "streets"):
        page.get_by_test_id(f"survey-{name}").fill(LAYERS[name])
    page.get_by_test_id("survey-submit").click()
    expect(page.locator("[data-testid=toast][data-kind=ok]")).to_contain_text("巡查已开始")
    expect(folder).to_have_value("")  # the form is ready for the next flight
    row = page.get_by_test_id("survey-row")
    expect(row).to_have_count(1)
    (started,) = served.surveys.list()
    expect(row).to_have_attribute("data-id", started.id)
    expect(row).to_contain_text("officer-li")
    expect(row.get_by_test_id("survey-progress")).to_be_visible()  # queued or running: a bar, refreshed
    expect(row).to_have_attribute("data-state", "done", timeout=SURVEY_SECONDS * 1000)
    expect(row.get_by_test_id("survey-state")).to_have_text("已完成")
    expect(row.get_by_test_id("survey-progress")).to_have_count(0)
    done = served.surveys.status(started.id)
    counts = row.get_by_test_id("survey-counts")
    for key in ("occupation_findings", "construction_findings", "cases_filed"):
        expect(counts.locator(f"[data-key={key}]")).to_have_attribute("data-count", str(done.counts[key]))

    row.get_by_test_id("survey-open").click()
    expect(page).to_have_url(f"{served.live.url}/#/surveys/{started.id}")
    detail = page.get_by_test_id("survey-detail")
    expect(detail).to_have_attribute("data-state", "done")
    features = json.loads(served.surveys.output(started.id, "findings.geojson").read_text())["features"]
    by_kind = {
        kind: [f for f in features if f["properties"]["kind"] == kind] for kind in ("occupation", "construction")
    }
    assert by_kind["occupation"] and by_kind["construction"], "the synthetic survey has both kinds"
    for kind, geometry in (("occupation", "point"), ("construction", "polygon")):
        shapes = page.locator(f"[data-testid=survey-shape][data-kind={kind}][data-geometry={geometry}]")
        expect(shapes).to_have_count(len(by_kind[kind]))
        expect(page.locator(f"[data-testid=survey-finding][data-kind={kind}]")).to_have_count(len(by_kind[kind]))
    expect(page.get_by_test_id("survey-shape")).to_have_count(len(features))
    permitted = [f for f in features if f["properties"]["kind"] == "permitted"]
    assert permitted, "the synthetic survey skips structures in permitted parcels"
    expect(page.locator("[data-testid=survey-shape][data-kind=permitted]")).to_have_count(len(permitted))
    findings = [f for f in features if f["properties"]["kind"] != "permitted"]
    for f in findings:
        number = f["properties"]["case_number"]
        listed = page.locator(f'[data-testid=survey-finding][data-id="{f["properties"]["id"]}"]')
        expect(listed).to_have_attribute("data-case", number)
        expect(listed.get_by_test_id("survey-case-link")).to_have_attribute("href", f"#/cases/{number}")
    stall = page.locator("[data-testid=survey-finding][data-kind=occupation]").first
    expect(stall.get_by_test_id("survey-finding-size")).to_contain_text(" m")
    structure = page.locator("[data-testid=survey-finding][data-kind=construction]").first
    expect(structure.get_by_test_id("survey-finding-size")).to_contain_text("m²")
    expect(page.get_by_test_id("survey-stat-cases_filed")).to_have_attribute("data-count", str(len(findings)))
    geojson = page.get_by_test_id("survey-download-geojson")
    expect(geojson).to_have_attribute("href", f"/api/surveys/{started.id}/findings.geojson")
    expect(page.get_by_test_id("survey-download-report")).to_have_attribute("href", f"/api/surveys/{started.id}/report")
    if done.counts["skipped_permitted"]:
        expect(page.get_by_test_id("survey-permitted")).to_contain_text(str(done.counts["skipped_permitted"]))
    for link, served_as in (
        (geojson, "application/geo+json"),
        (page.get_by_test_id("survey-download-report"), "text/markdown"),
    ):
        response = page.request.get(f"{served.live.url}{link.get_attribute('href')}")
        assert response.ok and response.headers["content-type"].startswith(served_as)

    # a stall's point and its row light up together
    first = by_kind["occupation"][0]["properties"]["id"]
    page.locator(f'[data-testid=survey-shape][data-id="{first}"] circle').hover()
    expect(page.locator(f'[data-testid=survey-finding][data-id="{first}"]')).to_have_class("hot")
    page.mouse.move(0, 0)
    page.evaluate("document.getElementById('toasts')?.replaceChildren(); window.scrollTo(0, 0)")
    page.wait_for_timeout(250)
    page.screenshot(path=docs / "survey-findings.png", full_page=True)

    number = by_kind["construction"][0]["properties"]["case_number"]
    page.locator(f'[data-testid=survey-finding][data-case="{number}"]').get_by_test_id("survey-case-link").click()
    expect(page).to_have_url(f"{served.live.url}/#/cases/{number}")
    expect(page.get_by_test_id("case-number")).to_have_text(number)
    page.go_back()
    expect(page.get_by_test_id("survey-detail")).to_have_attribute("data-id", started.id)


def test_a_legal_reviewer_reads_the_surveys_with_no_form_to_start_one(served: Served, browsers: Contexts) -> None:
    (served.surveys.incoming / "empty").mkdir()
    failed = served.surveys.start(SurveyRequest("empty"), requested_by="engineer-sun")
    wait_for(lambda: served.surveys.status(failed.id).state == "failed", 30, "the empty flight's survey to fail")
    error = served.surveys.status(failed.id).error
    assert error

    page = browsers.new_page(lang="en")
    open_surveys(page, served.live, "legal-zhao")
    expect(page.get_by_test_id("nav-surveys")).to_have_text("Surveys")
    expect(page.locator("main h1")).to_have_text("Drone surveys")
    expect(page.get_by_test_id("survey-form")).to_have_count(0)
    expect(page.get_by_test_id("surveys-read-only")).to_be_visible()
    row = page.get_by_test_id("survey-row")
    expect(row).to_have_attribute("data-state", "failed")
    expect(row.get_by_test_id("survey-state")).to_have_text("Failed")
    expect(row.get_by_test_id("survey-error")).to_have_text(error)
    expect(row).to_contain_text("engineer-sun")
    row.get_by_test_id("survey-open").click()
    expect(page.get_by_test_id("survey-detail-error")).to_contain_text(error)
    expect(page.get_by_test_id("survey-download-geojson")).to_have_count(0)


def test_a_service_without_surveys_says_so(live: LiveDeployment, browsers: Contexts) -> None:
    page = browsers.new_page()
    open_surveys(page, live, "engineer-sun")
    expect(page.get_by_test_id("surveys-unavailable")).to_have_text("this service runs no drone surveys")
    expect(page.get_by_test_id("survey-form")).to_have_count(0)
    expect(page.get_by_test_id("toast")).to_have_count(0)  # said in the page, not as an error
