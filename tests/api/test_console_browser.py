"""The console and the party portal in a real browser (headless Chromium through Playwright):
an officer clears the review queue with the keyboard alone, corrects a box and a label, sees a
case's evidence verified; the party logs in with an access code and states a defense; an
engineer redraws a zone by clicking. Each test gets its own copy of one populated deployment.

A failed test leaves a screenshot of each of its pages in its tmp_path (or in
NONSITE_TEST_ARTIFACTS). `NONSITE_SCREENSHOTS=1` also writes the docs' screenshots to
docs/screenshots/.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

from tests.api.browser import DOCS_SCREENSHOTS, TABLET, Contexts, api_json, log_in
from tests.api.live import LiveDeployment

pytestmark = pytest.mark.browser


def queue_order(live: LiveDeployment) -> list[str]:
    """The test cameras' cases in the order the review queue gives them (priority, then age)."""
    return [live.cases[c] for c in ("cam-kitchen", "cam-site", "cam-street")]


def test_an_officer_clears_the_review_queue_with_the_keyboard_alone(live: LiveDeployment, browsers: Contexts) -> None:
    page = browsers.new_page()
    log_in(page, live, "officer-li")
    first, second, third = queue_order(live)
    current = page.get_by_test_id("review-current")
    expect(page.get_by_test_id("queue-item")).to_have_count(3)
    expect(current).to_have_attribute("data-number", first)
    expect(page.get_by_test_id("det-box").first).to_be_visible()

    page.keyboard.press("?")
    expect(page.get_by_test_id("help")).to_contain_text("驳回")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("help")).to_have_count(0)
    page.keyboard.press("j")
    expect(current).to_have_attribute("data-number", second)
    page.keyboard.press("k")
    expect(current).to_have_attribute("data-number", first)
    page.keyboard.press("ArrowRight")
    expect(page.get_by_test_id("keyframe")).to_have_attribute("data-frame", "13")

    page.keyboard.press("c")
    expect(current).to_have_attribute("data-number", second)
    expect(page.get_by_test_id("queue-item")).to_have_count(2)

    page.keyboard.press("r")
    expect(page.get_by_test_id("reject-picker")).to_be_visible()
    page.keyboard.press("6")
    expect(page.locator('[data-testid=reason-option][data-code="permitted"]')).to_have_attribute("aria-checked", "true")
    page.keyboard.press("Enter")
    expect(current).to_have_attribute("data-number", third)

    page.keyboard.press("r")
    page.keyboard.press("9")
    page.keyboard.press("Escape")  # changed my mind...
    expect(page.get_by_test_id("reject-picker")).to_have_count(0)
    page.keyboard.press("r")  # ...and back: "other", which needs words
    page.keyboard.press("0")
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid=toast][data-kind=error]")).to_contain_text("须写明理由")
    expect(page.get_by_test_id("reject-note")).to_be_focused()
    page.keyboard.type("摊主已持证经营")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("review-empty")).to_be_visible()
    expect(page.get_by_test_id("nav-review-count")).to_have_text("0")

    expected = {first: ("confirmed", "confirm", None), second: ("rejected", "reject", "permitted")}
    expected[third] = ("rejected", "reject", "other")
    for number, (state, action, code) in expected.items():
        case = api_json(page, live, "GET", f"/api/cases/{number}")
        last = case["transitions"][-1]
        seen = (case["state"], last["action"], last["reason_code"], last["actor"])
        assert seen == (state, action, code, "officer-li"), number
    assert last["reason"] == "摊主已持证经营"

    page.goto(f"{live.url}/#/cases/{first}")
    verdict = page.get_by_test_id("verification")
    expect(verdict).to_have_attribute("data-ok", "true")
    expect(verdict).to_contain_text("✓")
    expect(page.locator("[data-testid=check][data-ok=false]")).to_have_count(0)
    expect(page.locator('[data-testid=transition][data-action="confirm"]')).to_contain_text("Officer Li")
    expect(page.locator('[data-testid=deadline][data-name="review"]')).to_have_attribute("data-status", "met")
    bundle = page.get_by_test_id("bundle-link").get_attribute("href")
    assert page.request.get(f"{live.url}{bundle}").headers["content-type"] == "application/zip"
    page.goto(f"{live.url}/#/cases/{second}")
    expect(page.get_by_test_id("transition-reason-code")).to_have_text("许可的活动")


def test_an_officer_corrects_a_box_by_dragging_and_a_label_by_typing(live: LiveDeployment, browsers: Contexts) -> None:
    page = browsers.new_page()
    log_in(page, live, "officer-wang")
    box = page.get_by_test_id("det-box").first
    expect(box).to_be_visible()
    detection = int(box.get_attribute("data-id") or 0)

    page.keyboard.press("b")
    frame = page.get_by_test_id("keyframe-frame").bounding_box()
    assert frame is not None
    page.mouse.move(frame["x"] + frame["width"] * 0.25, frame["y"] + frame["height"] * 0.25)
    page.mouse.down()
    page.mouse.move(frame["x"] + frame["width"] * 0.75, frame["y"] + frame["height"] * 0.75, steps=4)
    page.mouse.up()
    expect(page.get_by_test_id("toast").filter(has_text=f"检测 {detection} 已更正")).to_be_visible()

    page.keyboard.press("l")
    page.get_by_test_id("relabel-input").fill("Not A Label")
    page.get_by_test_id("relabel-input").press("Enter")
    expect(page.locator("[data-testid=toast][data-kind=error]")).to_contain_text("label")  # the API's 422 detail
    page.get_by_test_id("relabel-input").fill("umbrella")
    page.get_by_test_id("relabel-input").press("Enter")
    expect(page.get_by_test_id("detection").first).to_contain_text("umbrella")

    number = queue_order(live)[0]
    corrected = next(
        d for d in api_json(page, live, "GET", f"/api/cases/{number}")["detections"] if d["id"] == detection
    )
    assert corrected["corrected_label"] == "umbrella" and corrected["corrected_by"] == "officer-wang"
    width, height = 160, 96  # the test cameras' frame
    assert corrected["corrected_box"] == pytest.approx([width / 4, height / 4, width * 3 / 4, height * 3 / 4], abs=1.0)


def test_a_stale_step_is_refused_with_the_apis_reason_and_the_queue_reloads(
    live: LiveDeployment, browsers: Contexts
) -> None:
    page = browsers.new_page()
    log_in(page, live, "officer-li")
    first, second, _ = queue_order(live)
    expect(page.get_by_test_id("review-current")).to_have_attribute("data-number", first)
    version = api_json(page, live, "GET", f"/api/cases/{first}")["version"]
    api_json(page, live, "POST", f"/api/cases/{first}/steps", {"action": "confirm", "version": version})

    page.keyboard.press("c")  # the console still shows the version it loaded
    expect(page.locator("[data-testid=toast][data-kind=error]")).to_contain_text("someone else changed it")
    expect(page.get_by_test_id("review-current")).to_have_attribute("data-number", second)


def test_the_language_switch_is_remembered_and_covers_every_page(live: LiveDeployment, browsers: Contexts) -> None:
    page = browsers.new_page()
    page.goto(f"{live.url}/")
    expect(page.get_by_test_id("login")).to_contain_text("登录")
    expect(page.get_by_test_id("dev-hint")).to_contain_text("nonsite-dev")
    page.get_by_test_id("lang-switch").click()
    expect(page.get_by_test_id("login")).to_contain_text("Log in")
    page.reload()
    expect(page.get_by_test_id("login")).to_contain_text("Log in")
    log_in(page, live, "head-chen")
    expect(page.get_by_test_id("nav-review")).to_contain_text("Review")
    expect(page.get_by_test_id("review-confirm")).to_contain_text("Confirm")
    for route, text in (("/cases", "Cases"), ("/cameras", "Cameras"), ("/map", "Map of findings"), ("/kpi", "KPIs")):
        page.goto(f"{live.url}/#{route}")
        expect(page.locator("main h1")).to_have_text(text)
    expect(page.get_by_test_id("kpi-row")).to_have_count(1)
    page.get_by_test_id("lang-switch").click()
    expect(page.locator("main h1")).to_have_text("统计")
    assert page.evaluate("localStorage.getItem('nonsite.lang')") == "zh"


@pytest.mark.parametrize(
    ("utc_now", "first_day", "last_day"),
    [
        # 01:30 in Beijing on 8 December is still 7 December in UTC: CI once saw the page's default
        # period end at Beijing midnight of the 8th, hours before the demo cases were opened
        (datetime(2026, 12, 7, 17, 30, tzinfo=UTC), "2026-11-09", "2026-12-08"),
        (datetime(2026, 12, 8, 9, 0, tzinfo=UTC), "2026-11-09", "2026-12-08"),
    ],
)
def test_the_kpi_page_covers_the_last_thirty_local_days_by_default(
    live: LiveDeployment, browsers: Contexts, utc_now: datetime, first_day: str, last_day: str
) -> None:
    page = browsers.new_page()  # in Asia/Shanghai
    page.clock.set_fixed_time(utc_now)
    log_in(page, live, "head-chen")
    with page.expect_request(lambda r: "/api/kpi?" in r.url) as sent:
        page.goto(f"{live.url}/#/kpi")
    expect(page.get_by_test_id("kpi-from")).to_have_value(first_day)
    day_after = (date.fromisoformat(last_day) + timedelta(days=1)).isoformat()
    expect(page.get_by_test_id("kpi-to")).to_have_value(day_after)  # the period ends at the start of this day
    query = parse_qs(urlparse(sent.value.url).query)
    beijing = timezone(timedelta(hours=8))
    start = datetime.fromisoformat(query["start"][0])
    end = datetime.fromisoformat(query["end"][0])
    assert start == datetime.combine(date.fromisoformat(first_day), time(), beijing)
    assert end == datetime.combine(date.fromisoformat(day_after), time(), beijing)
    assert start < utc_now < end


def test_a_map_point_opens_its_case(live: LiveDeployment, browsers: Contexts) -> None:
    page = browsers.new_page()
    log_in(page, live, "legal-zhao")
    page.goto(f"{live.url}/#/map")
    expect(page.get_by_test_id("map-point")).to_have_count(2)  # cam-site has no place
    expect(page.get_by_test_id("scale-bar")).to_be_visible()
    number = live.cases["cam-street"]
    page.locator(f'[data-testid=map-point][data-number="{number}"]').click()
    expect(page.get_by_test_id("case-number")).to_have_text(number)
    expect(page.get_by_test_id("issue-access-code")).to_have_count(0)  # a legal reviewer issues no codes


def test_the_party_sees_the_evidence_and_states_a_defense_that_the_officer_reads(
    live: LiveDeployment, browsers: Contexts
) -> None:
    officer = browsers.new_page()
    log_in(officer, live, "officer-li")
    number = live.cases["cam-street"]
    code = api_json(officer, live, "POST", f"/api/cases/{number}/access-code")["code"]

    party = browsers.new_page(viewport=TABLET)
    party.goto(f"{live.url}/party?case={number}")
    expect(party.get_by_test_id("party-case")).to_have_value(number)
    party.get_by_test_id("party-code").fill("AAAA-BBBB-CCCC")
    party.get_by_test_id("party-submit").click()
    expect(party.locator("[data-testid=toast][data-kind=error]")).to_contain_text("access code")
    party.get_by_test_id("party-code").fill(code.lower())  # as read over the phone
    party.get_by_test_id("party-submit").click()
    expect(party.get_by_test_id("party-case-number")).to_have_text(number)
    images = party.get_by_test_id("party-image")
    expect(images).to_have_count(2)
    expect(party.get_by_test_id("party-clip")).to_have_count(1)
    party.wait_for_function(
        "[...document.querySelectorAll('[data-testid=party-image]')].every(i => i.complete && i.naturalWidth > 0)"
    )
    statement = "摊位是临时放置的，已经搬走。The stall was moved the same day."
    party.get_by_test_id("statement-text").fill(statement)
    party.get_by_test_id("statement-contact").fill("138 0000 0000")
    party.get_by_test_id("statement-submit").click()
    expect(party.get_by_test_id("party-statement")).to_contain_text("已经搬走")
    party.get_by_test_id("lang-switch").click()
    expect(party.get_by_test_id("party-evidence")).to_contain_text("Evidence")

    officer.goto(f"{live.url}/#/cases/{number}")
    expect(officer.get_by_test_id("statement")).to_contain_text(statement)
    expect(officer.get_by_test_id("statement")).to_contain_text("138 0000 0000")


def test_an_engineer_redraws_a_zone_by_clicking_points(live: LiveDeployment, browsers: Contexts) -> None:
    page = browsers.new_page()
    log_in(page, live, "engineer-sun")
    # CI once saw this click leave the camera list in place (3 frames after 10 s; the cause was not found:
    # no re-render of the list after login is known). Click again until the camera's page is up.
    for _ in range(3):
        page.get_by_test_id("camera-card").filter(has_text="cam-street").click()
        try:
            expect(page.get_by_test_id("zone-editor")).to_be_visible(timeout=3000)
            break
        except AssertionError:
            continue
    frame = page.get_by_test_id("camera-frame")
    expect(frame).to_have_attribute("data-width", "160")
    page.get_by_test_id("zone-edit").click()
    expect(page.get_by_test_id("zone-handle")).to_have_count(4)
    page.get_by_test_id("zone-clear").click()
    expect(page.get_by_test_id("zone-handle")).to_have_count(0)
    box = frame.bounding_box()
    assert box is not None
    points = [(0.1, 0.5), (0.5, 0.2), (0.9, 0.5), (0.5, 0.9), (0.3, 0.3)]
    for fx, fy in points:
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    expect(page.get_by_test_id("zone-handle")).to_have_count(5)
    page.keyboard.press("u")  # the last point was a slip
    expect(page.get_by_test_id("zone-handle")).to_have_count(4)
    handle = page.get_by_test_id("zone-handle").nth(3).bounding_box()  # (0.5, 0.9) dragged down to (0.5, 0.95)
    assert handle is not None
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.95, steps=4)
    page.mouse.up()
    points[3] = (0.5, 0.95)
    page.get_by_test_id("zone-save").click()
    expect(page.get_by_test_id("toast").filter(has_text="sidewalk")).to_be_visible()
    expect(page.get_by_test_id("zone-edit")).to_be_visible()

    zone = api_json(page, live, "GET", "/api/cameras/cam-street")["zones"][0]
    assert zone["edited_by"] == "engineer-sun"
    expected = [[160 * fx, 96 * fy] for fx, fy in points[:4]]
    assert [p for point in zone["polygon"] for p in point] == pytest.approx(
        [p for point in expected for p in point], abs=1.0
    )

    page.goto(f"{live.url}/#/cameras/cam-site")  # no snapshot: a blank frame of the size its zone implies
    expect(page.get_by_test_id("blank-frame")).to_be_visible()
    expect(frame).to_have_attribute("data-width", "160")  # the zone spans 8..152
    expect(frame).to_have_attribute("data-height", "96")
    expect(page.get_by_test_id("zone-edit")).to_be_visible()


def shot(page: Page, folder: Path, name: str, *, full_page: bool = False) -> None:
    """A docs screenshot of the page as an officer sees it, without the toasts of what the test did."""
    page.evaluate("document.getElementById('toasts')?.replaceChildren(); window.scrollTo(0, 0)")
    page.wait_for_timeout(250)
    page.screenshot(path=folder / f"{name}.png", full_page=full_page)


def test_every_page_renders_for_the_docs_screenshots(live: LiveDeployment, browsers: Contexts, tmp_path: Path) -> None:
    """The tour the docs' screenshots show; with NONSITE_SCREENSHOTS=1 it rewrites docs/screenshots."""
    folder = DOCS_SCREENSHOTS if os.environ.get("NONSITE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    first, second, third = queue_order(live)

    page = browsers.new_page()
    log_in(page, live, "officer-li")
    expect(page.get_by_test_id("det-box").first).to_be_visible()
    shot(page, folder, "review-queue")
    page.keyboard.press("j")
    expect(page.get_by_test_id("det-box").first).to_be_visible()
    page.keyboard.press("r")
    page.keyboard.press("6")
    page.get_by_test_id("reject-note").fill("工地已取得临时施工许可")
    shot(page, folder, "review-reject-reasons")
    page.get_by_test_id("reject-note").press("Enter")
    expect(page.get_by_test_id("review-current")).to_have_attribute("data-number", third)
    page.keyboard.press("k")
    page.keyboard.press("c")
    expect(page.get_by_test_id("review-current")).to_have_attribute("data-number", third)

    warn = {
        "action": "warn",
        "version": api_json(page, live, "GET", f"/api/cases/{first}")["version"],
        "rectify_days": 3,
    }
    api_json(page, live, "POST", f"/api/cases/{first}/steps", warn)
    page.goto(f"{live.url}/#/cases/{first}")
    expect(page.get_by_test_id("verification")).to_have_attribute("data-ok", "true")
    shot(page, folder, "case-page", full_page=True)

    page.goto(f"{live.url}/#/map?closed=1")
    expect(page.get_by_test_id("map-point")).to_have_count(3 - 1)  # cam-site has no place
    shot(page, folder, "map")

    engineer = browsers.new_page()
    log_in(engineer, live, "engineer-sun")
    engineer.goto(f"{live.url}/#/cameras/cam-street")
    frame = engineer.get_by_test_id("camera-frame")
    expect(frame).to_have_attribute("data-width", "160")
    engineer.get_by_test_id("zone-edit").click()
    engineer.get_by_test_id("zone-clear").click()
    box = frame.bounding_box()
    assert box is not None
    for fx, fy in ((0.06, 0.55), (0.45, 0.48), (0.95, 0.52), (0.95, 0.95), (0.06, 0.95)):
        engineer.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    shot(engineer, folder, "camera-zone-editor")

    code = api_json(page, live, "POST", f"/api/cases/{third}/access-code")["code"]
    party = browsers.new_page()
    party.goto(f"{live.url}/party?case={third}")
    party.get_by_test_id("party-code").fill(code)
    party.get_by_test_id("party-submit").click()
    expect(party.get_by_test_id("party-image").first).to_be_visible()
    party.get_by_test_id("statement-text").fill("摊位是临时放置的，当天已经搬走，请核实。")
    shot(party, folder, "party-portal", full_page=True)

    english = browsers.new_page(lang="en")
    log_in(english, live, "head-chen")
    english.goto(f"{live.url}/#/cases/{second}")
    expect(english.get_by_test_id("verification")).to_have_attribute("data-ok", "true")
    shot(english, folder, "case-page-english")

    tablet = browsers.new_page(viewport=TABLET)
    log_in(tablet, live, "officer-wang")
    expect(tablet.get_by_test_id("det-box").first).to_be_visible()
    shot(tablet, folder, "review-queue-tablet")
    names = {"review-queue", "review-reject-reasons", "case-page", "map", "camera-zone-editor", "party-portal",
             "case-page-english", "review-queue-tablet"}  # fmt: skip
    assert names <= {path.stem for path in folder.glob("*.png")}
