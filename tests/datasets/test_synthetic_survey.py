"""write_two_flight_survey: readable metadata, exact geo truth, permits, determinism."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import shapely

from datasets.errors import DatasetError
from datasets.synthetic.survey import SurveyTruth, read_survey_truth, write_two_flight_survey
from vision.geo import GroundProjector, latlon_to_enu_array, read_drone_shot
from vision.ortho import read_orthomosaic, render_view, view_homography

CONFIG = {
    "seed": 7,
    "image_size": (600, 400),
    "altitude_m": 80.0,
    "n_structures": 4,
    "n_stalls": 6,
    "area_m": (100.0, 80.0),
    "orthomosaic": True,
}


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> SurveyTruth:
    return write_two_flight_survey(tmp_path_factory.mktemp("survey") / "out", **CONFIG)


def sample(image: np.ndarray, x: float, y: float, r: int = 2) -> np.ndarray:
    col, row = int(x), int(y)
    return np.median(image[row - r : row + r + 1, col - r : col + r + 1].reshape(-1, 3), axis=0)


def images_seeing(flight, lat: float, lon: float, margin: float = 20.0):
    """(image path, pixel) for each image of a flight whose frame holds (lat, lon), `margin` px from its edges."""
    for path, shot in zip(flight.images, flight.shots, strict=True):
        xy = GroundProjector(shot).latlon_to_pixel(lat, lon)
        k = shot.intrinsics
        if xy is not None and margin <= xy[0] <= k.width_px - margin and margin <= xy[1] <= k.height_px - margin:
            yield path, xy


def expected_color(bgr, flight) -> np.ndarray:
    return np.clip(np.array(bgr, float) * np.array(flight.gain_bgr) + flight.haze, 0, 255)


def test_the_survey_writes_both_flights_and_its_files(survey):
    root = survey.out_dir
    assert sorted(p.name for p in root.iterdir()) == [
        "baseline",
        "baseline_ortho.tif",
        "permits.geojson",
        "streets.geojson",
        "survey",
        "truth.json",
    ]
    for flight in (survey.baseline, survey.survey):
        assert len(flight.images) >= 9
        assert [p.name for p in flight.images] == [f"DJI_{i:04d}.JPG" for i in range(1, len(flight.images) + 1)]
        assert cv2.imread(str(flight.images[0])).shape == (400, 600, 3)
    assert len(survey.structures) == 4 and len(survey.stalls) == 6
    assert json.loads(survey.truth_path.read_text())["format"] == "nonsite.synthetic.survey/1"


def test_every_image_carries_the_shot_it_was_rendered_from(survey):
    for flight in (survey.baseline, survey.survey):
        for path, shot in zip(flight.images, flight.shots, strict=True):
            read = read_drone_shot(path)
            assert (read.lat, read.lon) == (pytest.approx(shot.lat, abs=1e-9), pytest.approx(shot.lon, abs=1e-9))
            assert read.rel_alt_m == pytest.approx(shot.rel_alt_m)
            assert read.gimbal_yaw_deg == pytest.approx(shot.gimbal_yaw_deg)
            assert read.gimbal_pitch_deg == pytest.approx(shot.gimbal_pitch_deg)
            assert -90.5 <= read.gimbal_pitch_deg <= -89.5  # nadir
            assert read.taken_at == shot.taken_at
            assert read.model == "FC6310"
            assert read.intrinsics.fx == pytest.approx(shot.intrinsics.fx)


def test_the_flights_overlap_about_70_percent_forward_and_60_percent_sideways(survey):
    shots = survey.baseline.shots
    k = shots[0].intrinsics
    along = shots[0].rel_alt_m * k.sensor_h_mm / k.focal_mm
    across = shots[0].rel_alt_m * k.sensor_w_mm / k.focal_mm
    en = latlon_to_enu_array(*survey.origin, [(s.lat, s.lon) for s in shots])
    steps = np.hypot(*np.diff(en, axis=0).T)
    forward = np.median(steps[steps < along * 0.5])
    assert 1 - forward / along == pytest.approx(0.7, abs=0.08)
    line_x = sorted({round(float(x) / 10) * 10 for x in en[:, 0]})
    sideways = np.median(np.diff(line_x))
    assert 1 - sideways / across >= 0.6 - 0.08


def test_the_light_differs_between_the_flights(survey):
    a, b = survey.baseline, survey.survey
    assert abs(a.sun_azimuth_deg - b.sun_azimuth_deg) > 40
    assert a.gain_bgr != b.gain_bgr


def test_a_new_structure_shows_its_roof_colour_in_the_survey_and_was_not_there_before(survey):
    for structure in survey.structures:
        seen = list(images_seeing(survey.survey, structure.lat, structure.lon))
        assert seen, f"{structure.id} is in no survey image"
        want = expected_color(structure.roof_bgr, survey.survey)
        for path, (x, y) in seen:
            got = sample(cv2.imread(str(path)), x, y)
            assert np.abs(got - want).max() <= 0.15 * want.max() + 12, (structure.id, path.name, got, want)
        before = list(images_seeing(survey.baseline, structure.lat, structure.lon))
        assert before
        for path, (x, y) in before:
            got = sample(cv2.imread(str(path)), x, y)
            assert np.abs(got - expected_color(structure.roof_bgr, survey.baseline)).max() > 40, (
                structure.id,
                path.name,
            )


def test_a_structure_polygon_lands_on_its_roof_colour_up_to_its_corners(survey):
    """The exact projection: points just inside the polygon's corners are roof, just outside are not."""
    structure = survey.structures[0]
    path, _ = next(images_seeing(survey.survey, structure.lat, structure.lon, margin=60))
    shot = read_drone_shot(path)
    projector = GroundProjector(shot)
    image = cv2.imread(str(path)).astype(float)
    want = expected_color(structure.roof_bgr, survey.survey)
    ring = np.array([(lat, lon) for lon, lat in structure.polygon_lonlat[:-1]])
    corners = projector.latlons_to_pixels(ring)
    centre = corners.mean(axis=0)
    for corner in corners:
        towards = (centre - corner) / np.linalg.norm(centre - corner)
        inside = corner + 3.0 * towards
        outside = corner - 3.0 * towards
        assert np.abs(image[int(inside[1]), int(inside[0])] - want).max() <= 0.2 * want.max() + 15
        assert np.abs(image[int(outside[1]), int(outside[0])] - want).max() > 25


def test_permitted_structures_stand_in_a_permit_parcel_and_the_others_in_none(survey):
    permits = json.loads(survey.permits_path.read_text(encoding="utf-8"))
    parcels = {
        f["properties"]["permit_no"]: shapely.Polygon(f["geometry"]["coordinates"][0]) for f in permits["features"]
    }
    for feature in permits["features"]:
        props = feature["properties"]
        assert props["permit_no"].startswith("JS-2026-") and props["holder"] and props["valid_until"] >= "2027-01-01"
    assert any(s.permitted for s in survey.structures) and not all(s.permitted for s in survey.structures)
    for structure in survey.structures:
        footprint = shapely.Polygon(structure.polygon_lonlat)
        holding = [no for no, parcel in parcels.items() if parcel.contains(footprint)]
        touching = [no for no, parcel in parcels.items() if parcel.intersects(footprint)]
        if structure.permitted:
            assert holding == [structure.permit_no]
        else:
            assert touching == [] and structure.permit_no is None


def test_structures_are_10_to_80_square_metres_as_their_polygons_say(survey):
    for structure in survey.structures:
        en = latlon_to_enu_array(structure.lat, structure.lon, [(lat, lon) for lon, lat in structure.polygon_lonlat])
        area = 0.5 * abs(np.dot(en[:-1, 0], en[1:, 1]) - np.dot(en[1:, 0], en[:-1, 1]))
        assert area == pytest.approx(structure.area_m2, rel=1e-3)
        assert 10.0 <= structure.area_m2 <= 80.0
        assert structure.kind in {"rooftop_shed", "extra_storey", "new_building"}


def test_stalls_stand_on_sidewalks_or_at_road_edges(survey):
    streets = json.loads(survey.streets_path.read_text(encoding="utf-8"))["features"]
    sidewalks = [
        shapely.Polygon(f["geometry"]["coordinates"][0]) for f in streets if f["properties"]["kind"] == "sidewalk"
    ]
    roads = [shapely.Polygon(f["geometry"]["coordinates"][0]) for f in streets if f["properties"]["kind"] == "road"]
    assert sidewalks and roads
    for stall in survey.stalls:
        centre = shapely.Point(stall.lon, stall.lat)
        assert 2.0 <= max(stall.size_m) <= 4.0
        if stall.place == "sidewalk":
            assert any(s.contains(centre) for s in sidewalks), stall.id
        else:
            assert any(r.contains(centre) for r in roads) and not any(s.contains(centre) for s in sidewalks), stall.id
        assert list(images_seeing(survey.survey, stall.lat, stall.lon)), f"{stall.id} is in no survey image"


def test_the_orthomosaic_is_the_baseline_flight_on_the_utm_grid_and_empty_where_it_did_not_fly(survey):
    assert survey.orthomosaic_path is not None
    ortho = read_orthomosaic(survey.orthomosaic_path)
    assert ortho.crs == "EPSG:32651" and ortho.transform[2] == ortho.transform[4] == 0.0  # north-up, as ODM writes
    assert len(ortho.levels) == 3
    pixels, valid = ortho.read()
    gsd = GroundProjector(survey.baseline.shots[0]).gsd_m
    assert ortho.gsd_m == pytest.approx(gsd, rel=0.01)
    assert 0.5 < valid.mean() < 1.0  # the flight's footprints, not the rectangle around them
    for path, shot in zip(survey.baseline.images, survey.baseline.shots, strict=True):
        image = cv2.imread(str(path)).astype(np.float32)
        projector = GroundProjector(shot)
        k = shot.intrinsics
        homography = view_homography(ortho, 0, (k.width_px, k.height_px), projector.pixels_to_latlon)
        view, mask = render_view(pixels, valid, homography, (k.width_px, k.height_px))
        assert mask.mean() > 0.95  # every image lies inside what was flown
        # the same pixels as the flight's image, but for vignetting and sensor noise
        error = np.abs(view.astype(np.float32) - image)[mask].mean()
        misplaced = np.abs(np.roll(view, 3, axis=1).astype(np.float32) - image)[mask].mean()  # 3 px = 0.6 m off
        assert error < 6.0 < misplaced, path.name
    # its bottom-right corner is transparent, and no image of the flight saw that place
    corner = (ortho.levels[0][0] - 1, ortho.levels[0][1] - 1)
    assert not valid[corner[1], corner[0]]
    lat, lon = ortho.pixels_to_latlons([(corner[0] + 0.5, corner[1] + 0.5)])[0]
    assert not [p for p, _ in images_seeing(survey.baseline, lat, lon, margin=0.0)]


def test_the_truth_file_reads_back_as_what_was_returned(survey):
    again = read_survey_truth(survey.out_dir)
    assert again.structures == survey.structures
    assert again.stalls == survey.stalls
    assert again.survey.images == survey.survey.images
    assert again.baseline.gain_bgr == survey.baseline.gain_bgr
    assert again.survey.shots[0].lat == pytest.approx(survey.survey.shots[0].lat, abs=1e-9)


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_same_seed_writes_identical_files(survey, tmp_path):
    again = write_two_flight_survey(tmp_path / "again", **CONFIG)
    assert digest(again.out_dir) == digest(survey.out_dir)


def test_another_seed_makes_another_town(tmp_path):
    other = write_two_flight_survey(tmp_path / "other", **{**CONFIG, "seed": 8, "n_structures": 1, "n_stalls": 1})
    assert json.loads(other.truth_path.read_text())["structures"][0]["lat"] != pytest.approx(0)
    assert digest(other.out_dir)["survey/DJI_0001.JPG"] != digest(other.out_dir)["baseline/DJI_0001.JPG"]


def test_a_folder_that_holds_a_survey_is_refused(survey):
    with pytest.raises(DatasetError, match="already exists"):
        write_two_flight_survey(survey.out_dir, **CONFIG)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image_size": (32, 32)}, "image_size"),
        ({"altitude_m": 5.0}, "altitude_m"),
        ({"model": "FC9999"}, "model must be one of"),
        ({"n_stalls": -1}, "n_stalls"),
        ({"n_structures": 500}, "n_structures=500 do not fit"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        write_two_flight_survey(tmp_path / "x", **{**CONFIG, **changes})


def test_image_size_scales_the_camera_and_keeps_its_field_of_view(survey):
    k = survey.survey.shots[0].intrinsics
    assert (k.width_px, k.height_px) == (600, 400)
    assert math.degrees(2 * math.atan(k.width_px / 2 / k.fx)) == pytest.approx(2 * math.degrees(math.atan(6.6 / 8.8)))
