"""The inspection platform's console pages in a real browser (headless Chromium through
Playwright): a head imports the premises registry from a CSV file (checked first, then a bad
file's problems by row and column) and finds the premises with its camera zone and cases; an
officer adds a photo to a case as field evidence through the resumable upload, which survives
a lost answer and a dropped connection; the fume monitors page lists monitors registered
through the API and through the page; a head draws and publishes random inspections and an
officer records one's checklist. Each test gets its own copy of one populated deployment.

`NONSITE_SCREENSHOTS=1` writes the docs' screenshots of the premises page and of a field
evidence upload to docs/screenshots/ (else to the test's tmp_path).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from playwright.sync_api import (
    FilePayload,
    Page,
    Request,
    Response,
    Route,
    expect,
)

from tests.api.browser import DOCS_SCREENSHOTS, TABLET, Contexts, api_json, log_in
from tests.api.conftest import sealed_finding
from tests.api.live import LiveDeployment

pytestmark = pytest.mark.browser
expect.set_options(timeout=10_000)

GOOD_CSV = """code,name,kind,address,street,grid,risk_grade,size_class,category,purifier_model,purifier_installed_on,\
purifier_cleaned_on,contact,zones
R-0001,老王面馆,餐饮,文一路 12 号,文新街道,文新-03,C,小型,面食,JD-2000,2024-03-01,2026-05-10,王师傅 138 0000 0001,\
cam-kitchen:exhaust
R-0002,湖畔咖啡,restaurant,文二路 8 号,翠苑街道,翠苑-01,A,medium,咖啡,,,,,
""".encode()
BAD_CSV = """code,name,street,risk_grade
R-0003,张记烧烤,文新街道,E
R-0004,,文新街道,B
""".encode()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """Where the docs' screenshots go: docs/screenshots with NONSITE_SCREENSHOTS=1, else the test's folder."""
    folder = DOCS_SCREENSHOTS if os.environ.get("NONSITE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shot(page: Page, path: Path, *, focus: str | None = None) -> None:
    """A docs screenshot without the toasts of what the test did; `focus` (a test id) scrolled into view."""
    page.evaluate("document.getElementById('toasts')?.replaceChildren(); window.scrollTo(0, 0)")
    if focus is not None:
        page.get_by_test_id(focus).scroll_into_view_if_needed()
    page.wait_for_timeout(250)
    page.screenshot(path=path)


def photo(width: int, height: int, seed: int = 0) -> bytes:
    """A JPEG of a street at dusk, grainy enough to be a few MB at full size."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), (88, 96, 104), np.uint8)
    image[height // 2 :, :] = (120, 126, 130)
    cv2.rectangle(image, (width // 5, height // 3), (width // 2, height * 3 // 4), (40, 140, 220), -1)
    grain = rng.integers(-40, 40, (height, width, 3), dtype=np.int16)
    ok, data = cv2.imencode(".jpg", np.clip(image + grain, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return data.tobytes()


def choose(page: Page, testid: str, name: str, mime: str, data: bytes) -> None:
    page.get_by_test_id(testid).set_input_files(files=[FilePayload(name=name, mimeType=mime, buffer=data)])


def import_premises(page: Page, live: LiveDeployment, data: bytes) -> Any:
    response = page.request.post(f"{live.url}/api/premises/import", data=data, headers={"Content-Type": "text/csv"})
    assert response.ok, response.text()
    return response.json()


def test_a_head_imports_premises_and_finds_them_with_their_zone_and_cases(
    live: LiveDeployment, browsers: Contexts, docs: Path
) -> None:
    page = browsers.new_page()
    log_in(page, live, "head-chen")
    page.get_by_test_id("nav-premises").click()
    expect(page.get_by_test_id("premises-empty")).to_be_visible()
    expect(page.get_by_test_id("premises-total")).to_have_attribute("data-total", "0")

    page.get_by_test_id("import-open").click()
    choose(page, "import-file", "premises.csv", "text/csv", GOOD_CSV)
    page.get_by_test_id("import-check").click()
    checked = page.get_by_test_id("import-ok")
    expect(checked).to_have_attribute("data-dry-run", "true")
    expect(page.get_by_test_id("import-created")).to_have_attribute("data-count", "2")
    assert api_json(page, live, "GET", "/api/premises")["total"] == 0  # checked only: nothing written

    page.get_by_test_id("import-submit").click()
    expect(checked).to_have_attribute("data-dry-run", "false")
    expect(page.get_by_test_id("premises-row")).to_have_count(2)  # the list reloads under the report
    expect(page.get_by_test_id("premises-total")).to_have_text("共 2 家")

    choose(page, "import-file", "bad.csv", "text/csv", BAD_CSV)
    page.get_by_test_id("import-submit").click()
    problems = page.get_by_test_id("import-problem")
    expect(problems).to_have_count(2)
    expect(page.locator('[data-testid=import-problem][data-row="2"][data-column="risk_grade"]')).to_be_visible()
    expect(page.locator('[data-testid=import-problem][data-row="3"][data-column="name"]')).to_be_visible()
    expect(page.locator("[data-testid=toast][data-kind=error]")).to_contain_text("2 个问题")
    assert api_json(page, live, "GET", "/api/premises")["total"] == 2  # a file with problems imports nothing

    # two fume findings of the kitchen's camera, now the noodle shop's zone: two cases of the premises
    now = datetime.now(UTC)
    for seed, days in ((7, 40), (8, 10)):
        live.casebook.file_package(sealed_finding(live.vault, "cam-kitchen", now - timedelta(days=days), seed=seed))

    page.get_by_test_id("premises-search").fill("面馆")
    page.get_by_test_id("premises-search").press("Enter")
    row = page.get_by_test_id("premises-row")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("repeat-offender")).to_have_text("屡犯")
    expect(row.get_by_test_id("premises-cases")).to_have_text("2")
    page.get_by_test_id("premises-clear").click()
    page.get_by_test_id("premises-filter-grade").select_option("A")
    expect(page.get_by_test_id("premises-row")).to_have_attribute("data-code", "R-0002")
    page.get_by_test_id("premises-clear").click()
    page.locator('[data-testid=premises-row][data-code="R-0001"] a').click()

    expect(page.get_by_test_id("premises-name")).to_have_text("老王面馆")
    zone = page.get_by_test_id("premises-zone")
    expect(zone).to_have_attribute("data-zone", "exhaust")
    expect(page.get_by_test_id("premises-purifier")).to_contain_text("JD-2000")
    expect(page.get_by_test_id("premises-case")).to_have_count(2)
    expect(page.get_by_test_id("repeat-offender")).to_be_visible()
    shot(page, docs / "premises-page.png")
    case = page.get_by_test_id("premises-case").first.get_attribute("data-number")
    zone.get_by_test_id("premises-zone-link").click()
    expect(page.get_by_test_id("camera-frame")).to_be_visible()
    assert page.url.endswith("#/cameras/cam-kitchen")
    page.goto(f"{live.url}/#/premises/R-0001")
    page.locator(f'[data-testid=premises-case][data-number="{case}"] a').click()
    expect(page.get_by_test_id("case-number")).to_have_text(str(case))


def test_an_officer_adds_photos_as_field_evidence_through_a_resumed_upload(
    live: LiveDeployment, browsers: Contexts, docs: Path
) -> None:
    page = browsers.new_page(viewport=TABLET)
    log_in(page, live, "officer-li")
    number = live.cases["cam-street"]
    page.goto(f"{live.url}/#/cases/{number}")
    expect(page.get_by_test_id("package")).to_have_count(1)

    pictures = {"street-photo.jpg": photo(2000, 1500), "stall-close-up.jpg": photo(400, 300, seed=1)}
    assert 2 << 20 < len(pictures["street-photo.jpg"]) < 3 << 20  # three chunks of 1 MiB
    patches: list[int] = []  # the offsets of the chunks the page sent
    asked: list[str] = []  # where-does-it-stand questions
    held: list[Route] = []

    def flaky(route: Route, request: Request) -> None:
        if request.method == "GET":
            asked.append(request.url)
        if request.method != "PATCH":
            route.continue_()
            return
        patches.append(int(request.headers["upload-offset"]))
        if len(patches) == 1:
            route.fetch()  # the chunk arrives but its answer is lost, and it is sent again: 409 and the server's offset
            route.continue_()
        elif len(patches) == 2:
            held.append(route)  # half-way, for the screenshot; then it arrives and the connection drops
        else:
            route.continue_()

    page.route("**/api/uploads/*", flaky)
    statuses: list[int] = []

    def answered(response: Response) -> None:
        if response.request.method == "PATCH":
            statuses.append(response.status)

    page.on("response", answered)

    form = page.get_by_test_id("field-evidence")
    page.get_by_test_id("field-files").set_input_files(
        files=[FilePayload(name=name, mimeType="image/jpeg", buffer=data) for name, data in pictures.items()]
    )
    expect(form.get_by_test_id("upload")).to_have_count(2)
    expect(form.get_by_test_id("upload-state").first).to_have_text("待上传")
    page.get_by_test_id("field-note").fill("现场复核：摊位仍在人行道上经营")
    page.get_by_test_id("field-lat").fill("30.2512")
    page.get_by_test_id("field-lon").fill("120.1613")
    page.get_by_test_id("field-submit").click()
    expect(form.get_by_test_id("upload-state").first).to_contain_text("% · 1.0 MB / 2.1 MB")
    shot(page, docs / "field-evidence-upload.png", focus="field-evidence")
    route = held.pop()
    route.fetch()
    route.abort("connectionreset")  # the page asks where the upload stands and goes on from there

    expect(page.get_by_test_id("package")).to_have_count(2)  # the page reloads with the new package
    expect(page.locator("[data-testid=toast][data-kind=ok]")).to_contain_text("已封存 2 个文件")
    expect(page.get_by_test_id("field-evidence").get_by_test_id("upload")).to_have_count(0)  # a fresh form
    assert patches == [0, 1 << 20, 2 << 20, 0], patches  # each from the offset the server holds; then the small one
    assert statuses == [409, 200, 200] and len(asked) == 1, (statuses, asked)  # the dropped answer has no status

    case = api_json(page, live, "GET", f"/api/cases/{number}")
    field = [p for p in case["evidence_packages"] if p["device"].get("kind") == "officer"]
    assert len(field) == 1, case["evidence_packages"]
    package = field[0]
    assert package["device"]["id"] == "officer:officer-li"
    assert package["violation"]["note"] == "现场复核：摊位仍在人行道上经营"
    assert package["capture"]["started_at"][:10] == datetime.now(UTC).isoformat()[:10]
    assert [f["name"] for f in package["files"]] == ["01-street-photo.jpg", "02-stall-close-up.jpg"]
    for file, data in zip(package["files"], pictures.values(), strict=True):
        assert page.request.get(f"{live.url}{file['url']}").body() == data
    assert case["transitions"][-1]["action"] == "add_evidence" and case["transitions"][-1]["actor"] == "officer-li"
    verdict = page.locator(f'[data-package="{package["package_id"]}"] [data-testid=verification]')
    expect(verdict).to_have_attribute("data-ok", "true")


def test_the_monitors_page_lists_monitors_from_the_api_and_registers_one(
    live: LiveDeployment, browsers: Contexts
) -> None:
    page = browsers.new_page()
    log_in(page, live, "admin")  # keeps the registry and the monitors both
    import_premises(page, live, GOOD_CSV)
    api_json(page, live, "PUT", "/api/monitors/MON-API", {"monitor_id": "MON-API", "premises_id": "R-0001"})
    now = datetime.now(UTC)
    readings = [
        {"monitor_id": "MON-API", "at": (now - timedelta(minutes=m)).isoformat(), "concentration_mg_m3": 0.6}
        for m in (3, 2, 1)
    ]
    sent = page.request.post(f"{live.url}/api/monitors/MON-API/readings", data=readings)
    assert sent.ok and sent.json()["accepted"] == 3, sent.text()

    page.get_by_test_id("nav-monitors").click()
    row = page.locator('[data-testid=monitor-row][data-monitor="MON-API"]')
    expect(row).to_have_attribute("data-state", "online")
    expect(row.get_by_test_id("monitor-state")).to_have_text("在线")
    expect(row.get_by_test_id("monitor-rate")).to_contain_text("3 / 60")
    expect(row.get_by_test_id("monitor-premises")).to_have_text("R-0001")

    page.get_by_test_id("monitor-add-open").click()
    page.get_by_test_id("monitor-new-id").fill("MON-UI")
    page.get_by_test_id("monitor-new-premises").fill("R-9999")
    page.get_by_test_id("monitor-new-submit").click()
    expect(page.locator("[data-testid=toast][data-kind=error]")).to_contain_text("not in the registry")  # the API's 409
    page.get_by_test_id("monitor-new-premises").fill("R-0002")
    page.get_by_test_id("monitor-new-threshold").fill("1.5")
    page.get_by_test_id("monitor-new-submit").click()
    added = page.locator('[data-testid=monitor-row][data-monitor="MON-UI"]')
    expect(added).to_have_attribute("data-state", "offline")  # never reported
    expect(page.get_by_test_id("monitors-offline")).to_have_text("离线 1")
    page.get_by_test_id("monitor-new-id").fill("MON-API")
    page.get_by_test_id("monitor-new-submit").click()
    expect(page.locator("[data-testid=toast][data-kind=error]").last).to_contain_text("已登记")

    page.get_by_test_id("lang-switch").click()
    expect(added.get_by_test_id("monitor-state")).to_have_text("Offline")
    row.get_by_test_id("monitor-premises").click()
    expect(page.get_by_test_id("premises-name")).to_have_text("老王面馆")


def test_a_head_draws_and_publishes_inspections_and_an_officer_records_a_checklist(
    live: LiveDeployment, browsers: Contexts
) -> None:
    head = browsers.new_page()
    log_in(head, live, "head-chen")
    rows = "\n".join(f"R-10{i},面馆 {i},文新街道,{'AB'[i % 2]}" for i in range(4))
    import_premises(head, live, f"code,name,street,risk_grade\n{rows}\n".encode())
    for inspector, username in (("E-li", "officer-li"), ("E-wang", "officer-wang")):
        body = {"name": f"检查员 {inspector}", "street": "东湖街道", "username": username}
        api_json(head, live, "PUT", f"/api/inspectors/{inspector}", body)

    head.get_by_test_id("nav-inspections").click()
    expect(head.get_by_test_id("pool-row")).to_have_count(2)
    head.get_by_test_id("draw-purpose").fill("2026 年第二季度餐饮油烟抽查")
    head.get_by_test_id("draw-targets").fill("2")
    head.get_by_test_id("draw-submit").click()
    draw = head.get_by_test_id("draw")
    expect(draw).to_have_attribute("data-published", "false")
    expect(draw.get_by_test_id("inspection-row")).to_have_count(2)
    head.get_by_test_id("draw-publish").click()
    head.get_by_test_id("draw-publish").click()  # the second press confirms
    expect(draw).to_have_attribute("data-published", "true")
    assert head.get_by_test_id("public-link").get_attribute("href") == "/public/inspections"

    officer = browsers.new_page(viewport=TABLET)
    log_in(officer, live, "officer-li")
    officer.get_by_test_id("nav-inspections").click()
    expect(officer.get_by_test_id("my-planned")).to_have_text("待检查 2")
    officer.get_by_test_id("inspection-link").first.click()
    expect(officer.get_by_test_id("checklist-domain")).to_have_count(7)
    officer.get_by_test_id("checklist-submit").click()
    expect(officer.locator("[data-testid=toast][data-kind=error]")).to_contain_text("14 项未填写")
    officer.get_by_test_id("checklist-all-pass").click()
    expect(officer.get_by_test_id("checklist-preview")).to_have_text("合格")
    item = officer.locator('[data-item="purifier.installed"]')
    item.locator("label.seg-fail").click()
    expect(officer.get_by_test_id("checklist-preview")).to_have_text("违法，已立案")
    expect(officer.get_by_test_id("checklist-open-case")).to_be_checked()
    choose(officer, "checklist-photos", "purifier.jpg", "image/jpeg", photo(320, 240, seed=3))
    officer.get_by_test_id("checklist-note").fill("未安装油烟净化设施")
    officer.get_by_test_id("checklist-submit").click()
    expect(officer.get_by_test_id("inspection-state")).to_have_attribute("data-state", "done")
    expect(officer.get_by_test_id("inspection-result")).to_have_attribute("data-result", "violation")
    number = officer.get_by_test_id("inspection-case").text_content()
    assert number and api_json(officer, live, "GET", f"/api/cases/{number}")["kind"] == "fume"
    public = officer.request.get(f"{live.url}/api/public/draws").json()
    assert {t["result"] for t in public["items"][0]["targets"]} == {"violation", None}
