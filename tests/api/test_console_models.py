"""The console's model registry page in a real browser (headless Chromium through Playwright),
served with a registry of two versions gated on a tiny fixed evaluation set, the second worse:
an engineer sees the gate refuse it with the set and the figures, is stopped from forcing it
without a reason, forces it with one and finds the reason in the history, then runs a version
in shadow and reads its reports; a head reads the page (in English) with no control to change
anything; a run that pins a model file says that it has no registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, Request, expect

from models.registry import EvalSetSpec, ModelRegistry
from pipelines.shadow import write_report
from tests.api.browser import Contexts, log_in
from tests.api.live import LiveDeployment, serve_deployment
from tests.models.test_registry import eval_set, model  # noqa: F401  (eval_set is a fixture)

pytestmark = pytest.mark.browser

REASON = "夜间现场测试，明早回退"


@pytest.fixture
def registry(tmp_path: Path, eval_set: EvalSetSpec) -> ModelRegistry:  # noqa: F811
    """v1 finds the stall (deployed, as a run seeds the shipped model); v2 reports a box far from it."""
    registry = ModelRegistry(tmp_path / "registry")
    registry.set_eval_sets([eval_set])
    registry.seed(model(tmp_path / "shipped.onnx", finds_stall=True), note="shipped starter")
    registry.register(model(tmp_path / "worse.onnx", finds_stall=False), note="trained on a bad day")
    return registry


@pytest.fixture
def served(template: Path, tmp_path: Path, registry: ModelRegistry) -> Iterator[LiveDeployment]:
    with serve_deployment(tmp_path / "live", template=template, registry=registry) as deployment:
        yield deployment


def row(page: Page, version: int) -> Locator:
    return page.locator(f'[data-testid=model-row][data-version="{version}"]')


def open_models(page: Page, live: LiveDeployment, username: str) -> None:
    log_in(page, live, username)
    page.get_by_test_id("nav-models").click()
    expect(page.get_by_test_id("model-row")).to_have_count(2)


def shadow_report(camera_id: str, candidate_sha256: str, *, only_current: int, at: str) -> dict[str, object]:
    """A camera's shadow report as a worker writes it (pipelines.shadow.ShadowRun.report)."""
    return {
        "camera_id": camera_id,
        "candidate_sha256": candidate_sha256,
        "since": "2026-05-01T08:00:00+00:00",
        "frames": 40,
        "current_boxes": 30 + only_current,
        "candidate_boxes": 30,
        "matched": 30,
        "only_current": only_current,
        "only_candidate": 0,
        "only_current_by_class": {"stall": only_current},
        "only_candidate_by_class": {},
        "events": {"current": {"occupation": 1}, "candidate": {}},
        "examples": [
            {"at": at, "frame": 17, "only": "current", "class": "stall", "box": [20.0, 20.0, 80.0, 70.0], "score": 0.91}
        ],
    }


def test_an_engineer_forces_a_refused_version_with_a_reason_and_runs_one_in_shadow(
    served: LiveDeployment, registry: ModelRegistry, browsers: Contexts
) -> None:
    page = browsers.new_page()
    promotions: list[Request] = []
    page.on("request", lambda r: promotions.append(r) if r.method == "POST" and "/promote" in r.url else None)
    open_models(page, served, "engineer-sun")
    expect(page.locator("main h1")).to_have_text("检测模型")
    expect(row(page, 1)).to_have_attribute("data-deployed", "true")
    expect(row(page, 1).get_by_test_id("model-deployed")).to_have_text("已部署")
    expect(row(page, 1).get_by_test_id("model-promote")).to_have_count(0)  # the deployed one is not promoted again
    expect(page.get_by_test_id("eval-set")).to_have_attribute("data-set", "street-fixed")
    expect(row(page, 1).get_by_test_id("model-metric")).to_have_attribute("data-measured", "false")
    expect(row(page, 1).get_by_test_id("model-map50")).to_have_text("—")

    row(page, 2).get_by_test_id("model-promote").click()
    expect(page.get_by_test_id("promote-panel")).to_contain_text("v0002")
    page.get_by_test_id("promote-submit").click()
    refusal = page.get_by_test_id("promote-refusal")
    expect(refusal).to_contain_text("street-fixed: mAP50 0.000 against 0.995 deployed")
    expect(row(page, 1).get_by_test_id("model-map50")).to_have_text("0.995")  # measured by the attempt
    expect(row(page, 2).get_by_test_id("model-map50")).to_have_text("0.000")
    expect(row(page, 2).get_by_test_id("model-metric")).to_have_class("num metric-worse")
    refused = page.locator("[data-testid=history-event][data-event=refuse]")
    expect(refused).to_contain_text("street-fixed: mAP50 0.000 < 0.995")
    expect(refused).to_contain_text("engineer-sun")

    reason = page.get_by_test_id("promote-reason")
    expect(reason).to_be_focused()
    errors = page.locator("[data-testid=toast][data-kind=error]")
    for n, typed in enumerate(("", "   "), start=1):
        reason.fill(typed)
        page.get_by_test_id("promote-force").click()
        expect(errors).to_have_count(n)
        expect(errors.last).to_contain_text("请写明仍然上线的理由")
        expect(reason).to_have_attribute("aria-invalid", "true")
    assert len(promotions) == 1, "an empty reason never reaches the API"
    assert registry.deployed().version == 1  # type: ignore[union-attr]

    reason.fill(REASON)
    page.get_by_test_id("promote-force").click()
    expect(page.locator("[data-testid=toast][data-kind=ok]")).to_contain_text("v0002 已强制上线")
    expect(row(page, 2)).to_have_attribute("data-deployed", "true")
    expect(row(page, 1)).to_have_attribute("data-deployed", "false")
    expect(page.get_by_test_id("models-deployed")).to_have_attribute("data-version", "2")
    expect(page.get_by_test_id("promote-panel")).to_have_count(0)
    latest = page.get_by_test_id("history-event").first
    expect(latest).to_have_attribute("data-event", "promote")
    expect(latest).to_have_attribute("data-forced", "true")
    expect(latest.get_by_test_id("history-reason")).to_have_text(f"理由：{REASON}")
    expect(latest).to_contain_text("engineer-sun")
    assert registry.deployed().version == 2  # type: ignore[union-attr]
    assert registry.history()[-1]["reason"] == REASON

    row(page, 1).get_by_test_id("model-shadow-start").click()
    panel = page.get_by_test_id("shadow-panel")
    expect(panel).to_have_attribute("data-version", "1")
    expect(row(page, 1).get_by_test_id("model-shadow")).to_be_visible()
    expect(page.get_by_test_id("shadow-state")).to_contain_text("v0001 正与已部署的 v0002 并行运行")
    expect(page.get_by_test_id("shadow-no-reports")).to_be_visible()
    assert registry.shadow_path.read_bytes() == registry.get(1).path.read_bytes()

    sha = registry.get(1).sha256
    for camera_id, only_current, at in (("cam-street", 3, "08:05"), ("cam-kitchen", 1, "08:06")):
        report = shadow_report(camera_id, sha, only_current=only_current, at=f"2026-05-01T{at}:00+00:00")
        write_report(registry.shadow_reports, report)  # as the camera workers do
    page.get_by_test_id("models-refresh").click()
    expect(page.get_by_test_id("shadow-camera")).to_have_count(2)
    expect(page.get_by_test_id("shadow-frames")).to_have_attribute("data-count", "80")
    expect(page.get_by_test_id("shadow-matched")).to_have_attribute("data-count", "60")
    expect(page.get_by_test_id("shadow-only-current")).to_have_attribute("data-count", "4")
    expect(page.get_by_test_id("shadow-only-candidate")).to_have_attribute("data-count", "0")
    street = page.locator("[data-testid=shadow-camera][data-camera=cam-street]")
    expect(street.get_by_test_id("shadow-camera-only-current")).to_contain_text("stall 3")
    expect(street).to_contain_text("cam-street name")
    examples = page.get_by_test_id("shadow-example")
    expect(examples).to_have_count(2)
    expect(examples.first).to_have_attribute("data-camera", "cam-kitchen")  # the latest first
    expect(examples.first).to_contain_text("仅已部署模型")

    row(page, 1).get_by_test_id("model-shadow-stop").click()
    expect(panel).to_have_attribute("data-version", "")
    expect(page.get_by_test_id("shadow-state")).to_contain_text("上次影子运行（v0001）的报告")
    expect(row(page, 1).get_by_test_id("model-shadow")).to_have_count(0)
    for event in ("shadow_start", "shadow_stop"):
        expect(page.locator(f"[data-testid=history-event][data-event={event}]")).to_contain_text("engineer-sun")
    assert registry.shadow_version() is None and not registry.shadow_path.exists()


def test_a_head_reads_the_registry_with_no_control_to_change_it(
    served: LiveDeployment, registry: ModelRegistry, browsers: Contexts
) -> None:
    registry.start_shadow(2, actor="engineer-sun")
    page = browsers.new_page(lang="en")
    open_models(page, served, "head-chen")
    expect(page.locator("main h1")).to_have_text("Detection models")
    expect(row(page, 1).get_by_test_id("model-deployed")).to_have_text("Deployed")
    expect(row(page, 2).get_by_test_id("model-shadow")).to_have_text("In shadow")
    expect(page.get_by_test_id("shadow-panel")).to_have_attribute("data-version", "2")
    expect(page.get_by_test_id("models-read-only")).to_be_visible()
    for control in ("model-promote", "model-shadow-start", "model-shadow-stop", "promote-panel"):
        expect(page.get_by_test_id(control)).to_have_count(0)
    expect(page.locator("main table button")).to_have_count(0)
    expect(page.locator("[data-testid=history-event][data-event=shadow_start]")).to_contain_text("Shadow started")

    officer = browsers.new_page()
    log_in(officer, served, "officer-li")
    expect(officer.get_by_test_id("nav-models")).to_have_count(0)
    officer.goto(f"{served.url}/#/models")
    expect(officer).to_have_url(f"{served.url}/#/review")  # not a reader: sent to their own page


def test_a_run_that_pins_a_model_file_says_it_has_no_registry(live: LiveDeployment, browsers: Contexts) -> None:
    page = browsers.new_page()
    log_in(page, live, "engineer-sun")
    page.get_by_test_id("nav-models").click()
    expect(page.get_by_test_id("models-no-registry")).to_contain_text("此运行没有模型库")
    expect(page.get_by_test_id("models-no-registry-message")).to_have_text(
        "this run pins a model file; it has no model registry"
    )
    expect(page.get_by_test_id("toast")).to_have_count(0)  # said in the page, not as an error
