"""Judging change regions: a new roof is a structure; a shadow that came or went is not."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines.survey_structures import StructureRules, compare_pair

GSD = 0.2


@pytest.fixture(scope="module")
def ground() -> np.ndarray:
    """A textured 600×400 ground (blurred noise over a few flat patches) that SIFT registers well."""
    rng = np.random.default_rng(5)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (400, 600, 3)).astype(np.float32), (0, 0), 3.0)
    base = np.full((400, 600, 3), (150, 154, 158), np.float32)  # gravel
    base[60:200, 320:560] = (128, 132, 134)  # a yard
    base[250:380, 40:260] = (188, 190, 186)  # a light roof
    return np.clip(base + noise * 40.0, 0, 255).astype(np.uint8)


def _afternoon(image: np.ndarray) -> np.ndarray:
    """Warmer, brighter light, as the synthetic survey's second flight has."""
    return np.clip(image.astype(np.float32) * np.array([0.9, 1.03, 1.1]) + 4.0, 0, 255).astype(np.uint8)


def _judge(before: np.ndarray, after: np.ndarray) -> dict[tuple[int, int], str]:
    result = compare_pair(before, after, gsd_m=GSD, pixel_m2=GSD * GSD, rules=StructureRules(), min_inliers=12)
    return {(round(c.centre_px[0]), round(c.centre_px[1])): c.verdict for c in result.candidates}


def _at(verdicts: dict[tuple[int, int], str], x: int, y: int) -> str | None:
    near = [v for (cx, cy), v in verdicts.items() if abs(cx - x) <= 4 and abs(cy - y) <= 4]
    return near[0] if near else None


def test_a_blue_steel_shed_in_warm_light_is_a_structure_and_measured(ground):
    after = ground.copy()
    after[280:320, 80:140] = (196, 122, 38)  # 60 × 40 px: 12 m × 8 m of blue steel on the light roof
    result = compare_pair(ground, _afternoon(after), gsd_m=GSD, pixel_m2=GSD * GSD, rules=StructureRules(),
                          min_inliers=12)  # fmt: skip
    (shed,) = [c for c in result.candidates if c.verdict == "structure"]
    assert shed.centre_px == (pytest.approx(110.0, abs=1.0), pytest.approx(300.0, abs=1.0))
    assert shed.roof_px * GSD * GSD == pytest.approx(96.0, rel=0.1)
    assert shed.contrast_now > 10 and shed.contrast_before < 0.75 * shed.contrast_now


@pytest.mark.parametrize("shade", ["came", "went"])
def test_a_shadow_that_came_or_went_is_no_structure(ground, shade):
    shaded = ground.astype(np.float32)
    shaded[100:160, 360:440] *= np.array([0.8 * 0.55, 0.95 * 0.55, 0.55])  # shade, skylight-tinted
    before, after = (ground, shaded.astype(np.uint8)) if shade == "came" else (shaded.astype(np.uint8), ground)
    verdict = _at(_judge(before, _afternoon(after)), 400, 130)
    assert verdict in (None, "new_shadow" if shade == "came" else "old_shadow")


def test_a_lawn_greener_than_before_is_the_season_and_a_green_roof_is_not(ground):
    before = ground.copy()
    before[100:160, 360:440] = (72, 120, 94)  # a lawn in spring
    after = before.copy()
    after[100:160, 360:440] = (60, 160, 80)  # the same lawn in summer
    after[280:320, 80:140] = (40, 150, 90)  # green steel on the light roof
    verdicts = _judge(before, after)
    assert _at(verdicts, 400, 130) == "vegetation"
    assert _at(verdicts, 110, 300) == "structure"
