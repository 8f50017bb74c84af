"""Drone survey batch runs on a synthetic two-flight survey: findings, permits, cases, resuming, bad input.

The survey (seed 3, 600×400 images, 12 per flight, ground sample distance about 0.2 m)
is rendered once per module; the full run with a baseline and filing once too, and the
tests read its outputs. Small images carry few features, so registration may agree on
fewer matches than at full resolution (`min_inliers=12`); tiles of 256 px make every
image six tiles, so objects cut by tile edges are part of what is tested.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import shapely.geometry
from PIL import Image

from cases.casebook import Casebook, Finding
from cases.db import Database
from cases.models import Case, CaseEvidence
from datasets.synthetic.survey import SurveyTruth, write_two_flight_survey
from datasets.synthetic.survey_oracle import SHA, TruthDetector, truth_objects
from evidence.bundle import export_bundle, verify_bundle
from evidence.package import load_package
from evidence.vault import Vault
from pipelines import survey as survey_module
from pipelines.evaluate_survey import STALL_TOLERANCE_GSD, STRUCTURE_TOLERANCE_GSD, score_survey
from pipelines.survey import (
    ChangeConfig,
    SurveyConfig,
    SurveyError,
    SurveyProgress,
    SurveyReport,
    TilingConfig,
    load_plan,
    plan_survey,
    process_image,
    run_survey,
    state_path,
)
from pipelines.survey_geometry import PlanarPolygons, polygons_from_geojson
from vision.geo import GroundProjector, latlon_to_enu_array, read_drone_shot
from vision.ortho import read_orthomosaic, write_geotiff

TILE = 256
CONFIG = SurveyConfig(tiling=TilingConfig(tile=TILE), change=ChangeConfig(min_inliers=12))
#: a structure's area is measured within this share of its true roof area
AREA_TOLERANCE = 0.25


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> SurveyTruth:
    return write_two_flight_survey(
        tmp_path_factory.mktemp("flights") / "town",
        seed=3,
        image_size=(600, 400),
        n_structures=4,
        n_stalls=6,
        area_m=(90.0, 60.0),
        orthomosaic=True,
    )


@dataclass
class FiledRun:
    report: SurveyReport
    casebook: Casebook
    vault: Vault
    out: Path
    detector: TruthDetector
    survey: SurveyTruth


def _run(
    survey: SurveyTruth, out: Path, detector: TruthDetector, baseline: Path | None = None, **kwargs: object
) -> SurveyReport:
    """The survey against its baseline flight's folder (or `baseline`), with its permits and streets."""
    return run_survey(
        survey.survey.images[0].parent,
        out_dir=out,
        detector=detector,
        baseline=baseline or survey.baseline.images[0].parent,
        permits=survey.permits_path,
        streets=survey.streets_path,
        config=CONFIG,
        **kwargs,  # type: ignore[arg-type]
    )


def _filed_run(survey: SurveyTruth, root: Path, baseline: Path | None = None) -> Iterator[FiledRun]:
    db = Database(f"sqlite:///{root / 'cases.db'}")
    vault = Vault(root / "evidence", root / "keys")
    book = Casebook(db, vault)
    detector = TruthDetector.for_survey(survey, tile=TILE)
    report = _run(survey, root / "out", detector, baseline, casebook=book, vault=vault)
    yield FiledRun(report, book, vault, root / "out", detector, survey)
    vault.close()
    db.close()


@pytest.fixture(scope="module")
def filed(survey: SurveyTruth, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FiledRun]:
    yield from _filed_run(survey, tmp_path_factory.mktemp("filed"))


def en(survey: SurveyTruth, lat: float, lon: float) -> np.ndarray:
    return latlon_to_enu_array(*survey.origin, [(lat, lon)])[0]


def distance_m(survey: SurveyTruth, a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.dist(en(survey, *a), en(survey, *b))


# --- street occupation ---------------------------------------------------------------------------


def test_every_stall_on_a_street_becomes_exactly_one_finding_at_its_place(filed):
    survey, report = filed.survey, filed.report
    streets = PlanarPolygons(polygons_from_geojson(json.loads(survey.streets_path.read_text()), source="x"),
                             survey.origin)  # fmt: skip
    assert all(k is not None for k in streets.containing([en(survey, s.lat, s.lon) for s in survey.stalls]))
    findings = report.occupation
    assert len(findings) == len(survey.stalls)
    for stall in survey.stalls:
        errors = [distance_m(survey, (f.lat, f.lon), (stall.lat, stall.lon)) for f in findings]
        near = [f for f, e in zip(findings, errors, strict=True) if e <= STALL_TOLERANCE_GSD * f.gsd_m]
        assert len(near) == 1, f"stall {stall.id} became {len(near)} findings; the nearest is {min(errors):.2f} m off"
        (finding,) = near
        assert finding.class_name == stall.kind
        assert finding.views >= 2  # seen in several overlapping images, and still one finding
        # an axis-aligned box holds the object: never smaller, at most its diagonal
        assert min(stall.size_m) - 0.2 <= min(finding.size_m) and max(finding.size_m) <= math.hypot(*stall.size_m)


def test_occupation_classes_off_the_streets_are_counted_not_reported(filed):
    # the test detector puts goods on every new structure's roof: no street, no finding
    assert filed.report.off_street == len(filed.survey.structures)
    assert filed.report.counts["occupation_objects_off_street"] == len(filed.survey.structures)


# --- new structures ---------------------------------------------------------------------------------


def assert_new_structures_found(survey: SurveyTruth, report: SurveyReport) -> None:
    """Every unpermitted structure is one finding where it stands, measured; nothing else is."""
    unpermitted = [s for s in survey.structures if not s.permitted]
    assert unpermitted
    assert len(report.construction) == len(unpermitted)  # and nothing else
    for structure in unpermitted:
        errors = [distance_m(survey, (f.lat, f.lon), (structure.lat, structure.lon)) for f in report.construction]
        near = [f for f, e in zip(report.construction, errors, strict=True) if e <= STRUCTURE_TOLERANCE_GSD * f.gsd_m]
        assert len(near) == 1, f"{structure.id} became {len(near)} findings; the nearest is {min(errors):.2f} m off"
        (finding,) = near
        assert finding.area_m2 == pytest.approx(structure.area_m2, rel=AREA_TOLERANCE)
        assert finding.permit_check == "in no permitted parcel"
        outline = shapely.geometry.Polygon([(lon, lat) for lat, lon in finding.outline])
        truth = shapely.geometry.Polygon(structure.polygon_lonlat)
        assert outline.is_valid and outline.intersection(truth).area > 0.7 * truth.area


def test_new_structures_without_a_permit_are_found_where_they_stand_and_measured(filed):
    assert_new_structures_found(filed.survey, filed.report)


def test_structures_in_a_permitted_parcel_are_skipped_with_their_permit_numbers(filed):
    survey, report = filed.survey, filed.report
    permitted = [s for s in survey.structures if s.permitted]
    assert permitted
    assert sorted(s.permit_no for s in report.skipped_permitted) == sorted(s.permit_no for s in permitted)
    for structure in permitted:
        (skip,) = [s for s in report.skipped_permitted if s.permit_no == structure.permit_no]
        assert distance_m(survey, (skip.lat, skip.lon), (structure.lat, structure.lon)) < 2.0
        assert not [f for f in report.findings if distance_m(survey, (f.lat, f.lon), (skip.lat, skip.lon)) < 5]
    assert "JS-2026-" in (filed.out / "report.md").read_text()


# --- outputs ------------------------------------------------------------------------------------------


def test_findings_geojson_is_a_feature_collection_in_lon_lat(filed):
    data = json.loads((filed.out / "findings.geojson").read_text())
    assert data["type"] == "FeatureCollection"
    permitted = [f for f in data["features"] if f["properties"]["kind"] == "permitted"]
    found = [f for f in data["features"] if f["properties"]["kind"] != "permitted"]
    assert len(found) == len(filed.report.findings)
    assert sorted(f["properties"]["permit_no"] for f in permitted) == sorted(
        s.permit_no for s in filed.report.skipped_permitted
    )
    assert permitted and all(f["geometry"]["type"] == "Point" for f in permitted)
    lat0, lon0 = filed.survey.origin
    for feature, finding in zip(found, filed.report.findings, strict=True):
        geometry = shapely.geometry.shape(feature["geometry"])
        assert geometry.is_valid
        lon, lat = geometry.representative_point().coords[0]
        assert abs(lon - lon0) < 0.01 and abs(lat - lat0) < 0.01  # lon first: GeoJSON order
        props = feature["properties"]
        assert props["kind"] == finding.kind and props["case_number"] == finding.case_number
        assert {"class", "score", "images", "permit_check"} <= set(props)
        if finding.kind == "construction":
            assert feature["geometry"]["type"] == "Polygon" and props["area_m2"] == finding.area_m2
            ring = feature["geometry"]["coordinates"][0]
            assert ring[0] == ring[-1] and shapely.geometry.LinearRing(ring).is_ccw  # RFC 7946 orientation
        else:
            assert feature["geometry"]["type"] == "Point" and "size_m" in props


def test_the_report_counts_times_and_names_what_it_found(filed):
    report = json.loads((filed.out / "report.json").read_text())
    assert report["format"] == "nonsite.survey.report/1"
    assert report["counts"]["images_processed"] == len(filed.survey.survey.images)
    assert report["counts"]["cases_filed"] == len(filed.report.findings)
    assert [i["name"] for i in report["images"]] == [p.name for p in filed.survey.survey.images]
    assert all(i["seconds"]["total"] > 0 for i in report["images"])
    text = (filed.out / "report.md").read_text()
    for heading in ("## Counts", "## Findings", "## Skipped: covered by a permit", "## Per image"):
        assert heading in text
    assert all(f.id in text for f in filed.report.findings)


# --- evidence and cases ------------------------------------------------------------------------------


def test_each_finding_is_a_case_at_its_place_with_sealed_evidence(filed):
    survey, book = filed.survey, filed.casebook
    sources = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in survey.survey.images}
    baseline = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in survey.baseline.images}
    with book.db.session() as s:
        cases = {c.number: (c.kind, c.lat, c.lon, c.camera_id) for c in s.query(Case)}
    for finding in filed.report.findings:
        assert finding.case_number in cases and finding.package_id
        kind, lat, lon, camera = cases[finding.case_number]
        assert kind == finding.kind and camera is None
        assert distance_m(survey, (lat, lon), (finding.lat, finding.lon)) < 0.01
        package, files = load_package(filed.vault.store, finding.package_id)
        manifest = package.manifest
        assert manifest["device"]["kind"] == "drone"
        assert manifest["model"]["sha256"] == SHA
        assert [i["name"] for i in manifest["capture"]["images"]] == list(finding.images)
        assert all(i["sha256"] == sources[i["name"]] for i in manifest["capture"]["images"])
        assert Finding.from_manifest(finding.package_id, manifest).source == "drone"
        if finding.kind == "occupation":
            crop = cv2.imdecode(np.frombuffer(files["keyframe-000001.png"], np.uint8), cv2.IMREAD_COLOR)
            x1, y1, x2, y2 = manifest["violation"]["boxes"][0]["xyxy"]
            assert 0 <= x1 < x2 <= crop.shape[1] and 0 <= y1 < y2 <= crop.shape[0]
            # the crop is the source image's pixels, losslessly
            name = manifest["violation"]["crop"]["image"]
            wx0, wy0, wx1, wy1 = manifest["violation"]["crop"]["window_px"]
            source = cv2.imread(str(survey.survey.images[0].parent / name))
            assert np.array_equal(crop, source[wy0:wy1, wx0:wx1])
        else:
            before = cv2.imdecode(np.frombuffer(files["before.png"], np.uint8), cv2.IMREAD_COLOR)
            after = cv2.imdecode(np.frombuffer(files["after.png"], np.uint8), cv2.IMREAD_COLOR)
            assert before.shape == after.shape and before.shape[0] >= CONFIG.crop_min_px
            assert manifest["violation"]["baseline"]["sha256"] == baseline[manifest["violation"]["baseline"]["name"]]
            assert manifest["place"]["outline_lonlat"]


def test_a_sealed_survey_finding_verifies_offline(filed, tmp_path):
    finding = filed.report.construction[0]
    bundle = export_bundle(filed.vault, finding.package_id, tmp_path / "bundle.zip")
    assert [c.name for c in verify_bundle(bundle) if not c.ok] == []


def test_running_the_survey_again_processes_nothing_and_files_nothing(filed):
    with filed.casebook.db.session() as s:
        before = (s.query(Case).count(), s.query(CaseEvidence).count())
    filed_json = (filed.out / "filed.json").read_text()
    calls = filed.detector.calls
    steps: list[SurveyProgress] = []
    again = _run(filed.survey, filed.out, filed.detector, casebook=filed.casebook, vault=filed.vault,
                 progress=steps.append)  # fmt: skip
    assert filed.detector.calls == calls
    assert {s.status for s in steps} == {"skipped"}
    assert [(f.id, f.case_number, f.package_id) for f in again.findings] == [
        (f.id, f.case_number, f.package_id) for f in filed.report.findings
    ]
    with filed.casebook.db.session() as s:
        assert (s.query(Case).count(), s.query(CaseEvidence).count()) == before
    assert (filed.out / "filed.json").read_text() == filed_json


# --- an orthomosaic as the baseline ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ortho_filed(survey: SurveyTruth, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FiledRun]:
    assert survey.orthomosaic_path is not None
    yield from _filed_run(survey, tmp_path_factory.mktemp("ortho"), survey.orthomosaic_path)


def test_against_the_baseline_orthomosaic_the_same_structures_are_found_and_permits_skipped(ortho_filed):
    survey, report = ortho_filed.survey, ortho_filed.report
    assert report.counts["baseline_orthomosaics"] == 1 and report.counts["baseline_images"] == 0
    assert report.counts["images_without_change_analysis"] == 0
    assert_new_structures_found(survey, report)
    permitted = sorted(s.permit_no for s in survey.structures if s.permitted)
    assert sorted(s.permit_no for s in report.skipped_permitted) == permitted
    plan = load_plan(ortho_filed.out)
    assert plan.baseline_ortho is not None and plan.baseline_images == ()
    assert (plan.baseline_ortho.crs, plan.baseline_ortho.level) == ("EPSG:32651", 0)  # as fine as the survey's pixels
    assert plan.baseline_ortho.sha256 == hashlib.sha256(survey.orthomosaic_path.read_bytes()).hexdigest()
    assert survey_module._LoadedOrtho._cache is None  # the survey is done: its orthomosaic is out of memory


def test_an_orthomosaic_finding_seals_the_orthomosaic_crop_beside_the_new_one(ortho_filed, filed):
    survey = ortho_filed.survey
    assert survey.orthomosaic_path is not None
    sha = hashlib.sha256(survey.orthomosaic_path.read_bytes()).hexdigest()

    def crops(run: FiledRun, finding_id: str) -> tuple[dict, np.ndarray]:
        package, files = load_package(run.vault.store, next(f for f in run.report.findings if f.id == finding_id)
                                      .package_id)  # fmt: skip
        before = cv2.imdecode(np.frombuffer(files["before.png"], np.uint8), cv2.IMREAD_GRAYSCALE)
        return package.manifest["violation"], before.astype(np.float32)

    for finding in ortho_filed.report.construction:
        violation, before = crops(ortho_filed, finding.id)
        assert (violation["baseline"]["name"], violation["baseline"]["sha256"]) == ("baseline_ortho.tif", sha)
        # the GeoTIFF's DateTime is when the file was made: sealed as that, never as the flight's time
        assert violation["baseline"]["taken_at"] is None
        assert violation["orthomosaic"] == {"crs": "EPSG:32651", "level": 0, "gsd_m": load_plan(ortho_filed.out)
                                            .baseline_ortho.gsd_m, "file_time": "2026-04-08T10:00:00"}  # fmt: skip
        # the same place cut from the baseline flight's own image: the orthomosaic was made from that flight
        (twin,) = [
            f for f in filed.report.construction if distance_m(survey, (f.lat, f.lon), (finding.lat, finding.lon)) < 2.0
        ]
        twin_violation, twin_before = crops(filed, twin.id)
        assert twin_violation["crop"] == violation["crop"]  # the same view of the new flight, the same window
        off = np.abs(np.roll(twin_before, 8, axis=1) - before).mean()  # as if 8 px (1.6 m) misplaced
        assert np.abs(twin_before - before).mean() < 6.0 < off


def test_an_orthomosaic_of_another_place_compares_no_image_and_says_so(survey, tmp_path):
    assert survey.orthomosaic_path is not None
    ortho = read_orthomosaic(survey.orthomosaic_path)
    pixels, valid = ortho.read()
    t = ortho.transform
    elsewhere = write_geotiff(tmp_path / "elsewhere.tif", pixels, crs=ortho.crs, transform=(t[0] + 5000.0, *t[1:]),
                              valid=valid)  # fmt: skip
    folder = tmp_path / "flight"
    folder.mkdir()
    for p in survey.survey.images[:2]:
        shutil.copy(p, folder / p.name)
    report = run_survey(folder, out_dir=tmp_path / "out", detector=TruthDetector.for_survey(survey, tile=TILE),
                        baseline=elsewhere, config=CONFIG)  # fmt: skip
    assert report.counts["images_without_change_analysis"] == 2 and not report.construction
    reasons = [i.change for i in report.images]
    assert all(r is not None and "the orthomosaic elsewhere.tif covers 0% of it" in r for r in reasons), reasons


@pytest.mark.parametrize("change", ["grown", "same size and time"])
def test_an_orthomosaic_changed_after_planning_is_refused_by_the_workers(survey, tmp_path, change):
    assert survey.orthomosaic_path is not None
    ortho = shutil.copy(survey.orthomosaic_path, tmp_path / "ortho.tif")
    plan = plan_survey(survey.survey.images[0].parent, out_dir=tmp_path / "out", model=_model(), baseline=ortho,
                       config=CONFIG)  # fmt: skip
    if change == "grown":
        with open(ortho, "ab") as f:
            f.write(b"\0" * 16)  # still a readable TIFF, but not the one planned with
    else:  # a byte changed in place, the file's size and time kept: only its hash tells
        stat = os.stat(ortho)
        with open(ortho, "r+b") as f:
            f.seek(-1, os.SEEK_END)
            last = f.read(1)
            f.seek(-1, os.SEEK_END)
            f.write(bytes([last[0] ^ 0xFF]))
        os.utime(ortho, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(SurveyError, match=r"ortho\.tif changed since the survey was planned"):
        process_image(plan, plan.images[0].name, detector=TruthDetector.for_survey(survey, tile=TILE))


# --- resuming and bad input --------------------------------------------------------------------------


def _streets_only(survey: SurveyTruth, folder: Path, out: Path, detector: TruthDetector, **kwargs) -> SurveyReport:
    return run_survey(folder, out_dir=out, detector=detector, streets=survey.streets_path, config=CONFIG, **kwargs)


def test_a_crashed_run_carries_on_from_the_image_it_stopped_at(survey, filed, tmp_path):
    folder = survey.survey.images[0].parent
    detector = TruthDetector.for_survey(survey, tile=TILE)
    detector.fail_after = 4  # one call per image: six tiles in a batch of eight
    with pytest.raises(RuntimeError, match="failed on call 5"):
        _streets_only(survey, folder, tmp_path, detector)
    done = sorted(p.name for p in (tmp_path / "state").iterdir())
    assert done == [f"{p.name}.json" for p in survey.survey.images[:4]]
    assert not (tmp_path / "report.json").exists()

    detector.fail_after = None
    steps: list[SurveyProgress] = []
    report = _streets_only(survey, folder, tmp_path, detector, progress=steps.append)
    assert [s.status for s in steps] == ["skipped"] * 4 + ["processed"] * (len(survey.survey.images) - 4)
    assert detector.calls == 5 + len(survey.survey.images) - 4  # the failed call, then only the rest
    assert [(round(f.lat, 9), round(f.lon, 9), f.images) for f in report.findings] == [
        (round(f.lat, 9), round(f.lon, 9), f.images) for f in filed.report.occupation
    ]


def test_a_damaged_state_file_is_processed_again(survey, tmp_path):
    folder = tmp_path / "flight"
    folder.mkdir()
    for p in survey.survey.images[:2]:
        shutil.copy(p, folder / p.name)
    detector = TruthDetector.for_survey(survey, tile=TILE)
    _streets_only(survey, folder, tmp_path / "out", detector)
    state_path(tmp_path / "out", "DJI_0001.JPG").write_text('{"format": "nonsite.survey.image/1", "na')
    calls = detector.calls
    report = _streets_only(survey, folder, tmp_path / "out", detector)
    assert detector.calls == calls + 1
    assert report.counts["images_processed"] == 2


def _without_metadata(source: Path, target: Path) -> None:
    cv2.imwrite(str(target), cv2.imread(str(source)))  # pixels only: no EXIF, no XMP


def _gps_without_altitude(source: Path, target: Path) -> None:
    with Image.open(source) as image:
        exif = image.getexif()  # EXIF GPS kept, DJI's XMP (RelativeAltitude, gimbal) dropped
        image.save(target, exif=exif.tobytes(), quality=90)


def _truncated(source: Path, target: Path) -> None:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) * 2 // 3])  # the metadata reads, the pixels end early


def test_images_that_cannot_be_used_are_named_with_the_reason_and_the_rest_run(survey, tmp_path):
    folder = tmp_path / "flight"
    folder.mkdir()
    good = survey.survey.images[:3]
    for p in good:
        shutil.copy(p, folder / p.name)
    source = survey.survey.images[3]
    _without_metadata(source, folder / "NO_EXIF.JPG")
    _gps_without_altitude(source, folder / "NO_ALTITUDE.JPG")
    _truncated(source, folder / "TRUNCATED.JPG")
    (folder / "GARBAGE.JPG").write_bytes(b"not a jpeg at all" * 50)
    detector = TruthDetector.for_survey(survey, tile=TILE)
    report = _streets_only(survey, folder, tmp_path / "out", detector)
    reasons = {u.name: u.reason for u in report.unusable}
    assert set(reasons) == {"NO_EXIF.JPG", "NO_ALTITUDE.JPG", "TRUNCATED.JPG", "GARBAGE.JPG"}
    assert "GPS" in reasons["NO_EXIF.JPG"]
    assert "RelativeAltitude" in reasons["NO_ALTITUDE.JPG"]
    assert "truncated" in reasons["TRUNCATED.JPG"]
    assert "not a readable image" in reasons["GARBAGE.JPG"]
    assert report.counts["images_processed"] == len(good)
    assert report.counts["images_unusable"] == 4
    text = (tmp_path / "out" / "report.md").read_text()
    assert all(name in text for name in reasons)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("empty folder", "holds no drone photos or videos"),
        ("missing folder", "survey folder .* does not exist"),
        ("missing baseline", "baseline .* does not exist: give an earlier survey's folder or its orthomosaic"),
        ("baseline without metadata", "holds no geo-referenced image"),
        ("baseline image, not an orthomosaic", "baseline orthomosaic .*DJI_0001.JPG is not a readable TIFF"),
        ("streets not geojson", "streets file .* is not readable GeoJSON"),
        ("streets in lat, lon order", "not a longitude, latitude pair"),
    ],
)
def test_a_survey_that_cannot_run_says_why(survey, tmp_path, case, message):
    folder, kwargs = survey.survey.images[0].parent, {}
    if case == "empty folder":
        folder = tmp_path / "empty"
        folder.mkdir()
    elif case == "missing folder":
        folder = tmp_path / "nowhere"
    elif case == "missing baseline":
        kwargs["baseline"] = tmp_path / "nowhere"
    elif case == "baseline image, not an orthomosaic":
        kwargs["baseline"] = survey.baseline.images[0]
    elif case == "baseline without metadata":
        (tmp_path / "old").mkdir()
        _without_metadata(survey.baseline.images[0], tmp_path / "old" / "A.JPG")
        kwargs["baseline"] = tmp_path / "old"
    elif case == "streets not geojson":
        (tmp_path / "s.geojson").write_text("{ nope")
        kwargs["streets"] = tmp_path / "s.geojson"
    else:
        ring = [[30.27, 120.15], [30.28, 120.15], [30.28, 120.16], [30.27, 120.15]]
        (tmp_path / "s.geojson").write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
        kwargs["streets"] = tmp_path / "s.geojson"
    with pytest.raises(SurveyError, match=message):
        plan_survey(folder, out_dir=tmp_path / "out", model=_model(), **kwargs)


def _model():
    from pipelines.survey import ModelRecord

    return ModelRecord(path=None, sha256=SHA, names=("stall",))


def test_the_plan_lists_images_with_their_shots_and_footprints(survey, filed):
    plan = load_plan(filed.out)
    assert [i.name for i in plan.images] == [p.name for p in survey.survey.images]
    for image, path in zip(plan.images, survey.survey.images, strict=True):
        shot = read_drone_shot(path)
        assert image.shot.shot() == shot
        assert image.gsd_m == pytest.approx(GroundProjector(shot).gsd_m)
        assert len(image.footprint) == 4
    assert plan.file_cases and plan.baseline == str(survey.baseline.images[0].parent.resolve())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"change": {"min_area_m2": 50, "max_area_m2": 10}}, "exceeds max_area_m2"),
        ({"video_camera": "FC9999"}, "video_camera must be one of"),
        ({"tiling": {"tile": 10}}, "greater than or equal to 64"),
        ({"tiling": {"tyle": 512}}, "Extra inputs are not permitted"),
        ({"streets": [[[200.0, 30.0], [120.0, 30.0], [120.0, 31.0]]]}, "not a \\[lon, lat\\] pair"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(change, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        SurveyConfig.model_validate(change)


# --- video with SRT telemetry --------------------------------------------------------------------------


def _srt(shots, seconds: float) -> str:
    blocks = []
    for k, shot in enumerate(shots):
        t0, t1 = k * seconds, (k + 1) * seconds
        stamp = lambda t: f"00:00:{int(t):02d},{round((t % 1) * 1000):03d}"  # noqa: E731
        blocks.append(
            f"{k + 1}\n{stamp(t0)} --> {stamp(t1)}\n"
            f'<font size="28">FrameCnt: {k + 1}, DiffTime: 1000ms\n2026-06-15 14:30:{k:02d}.000\n'
            f"[latitude: {shot.lat:.9f}] [longitude: {shot.lon:.9f}] "
            f"[rel_alt: {shot.rel_alt_m:.3f} abs_alt: {shot.abs_alt_m:.3f}] "
            f"[gb_yaw: {shot.gimbal_yaw_deg:.3f} gb_pitch: {shot.gimbal_pitch_deg:.3f} gb_roll: 0.0] </font>\n"
        )
    return "\n".join(blocks)


def test_a_video_is_sampled_into_frames_geotagged_from_its_srt(survey, tmp_path):
    folder = tmp_path / "flight"
    folder.mkdir()
    fps, picks = 5, [5, 6, 7]  # three images of one flight line, one second each
    writer = cv2.VideoWriter(str(folder / "DJI_0100.MP4"), cv2.VideoWriter.fourcc(*"mp4v"), fps, (600, 400))
    assert writer.isOpened()
    for k in picks:
        frame = cv2.imread(str(survey.survey.images[k]))
        for _ in range(fps):
            writer.write(frame)
    writer.release()
    shots = [survey.survey.shots[k] for k in picks]
    (folder / "DJI_0100.SRT").write_text(_srt(shots, 1.0))
    config = CONFIG.model_copy(update={"video_interval_s": 1.0, "video_camera": "FC6310"})
    plan = plan_survey(folder, out_dir=tmp_path / "out", model=_model(), streets=survey.streets_path, config=config)
    assert [i.name for i in plan.images] == ["DJI_0100.MP4@0.000s", "DJI_0100.MP4@1.000s", "DJI_0100.MP4@2.000s"]
    for image, shot in zip(plan.images, shots, strict=True):
        assert (image.shot.lat, image.shot.lon) == (pytest.approx(shot.lat), pytest.approx(shot.lon))
        assert image.shot.gimbal_yaw_deg == pytest.approx(shot.gimbal_yaw_deg, abs=1e-3)
        assert image.kind == "frame" and Path(image.path).suffix == ".png"
    # the frames, as the video decoded them, with the stalls the truth puts there
    detector = TruthDetector(truth_objects(survey), [(Path(i.path), i.shot.shot()) for i in plan.images], tile=TILE)
    report = run_survey(folder, out_dir=tmp_path / "out", detector=detector, streets=survey.streets_path,
                        config=config)  # fmt: skip
    seen = {
        s.id
        for s in survey.stalls
        for shot in shots
        if (xy := GroundProjector(shot).latlon_to_pixel(s.lat, s.lon)) and 20 < xy[0] < 580 and 20 < xy[1] < 380
    }
    assert seen and len(report.occupation) == len(seen)
    for finding in report.occupation:
        nearest = min(survey.stalls, key=lambda s: distance_m(survey, (s.lat, s.lon), (finding.lat, finding.lon)))
        assert nearest.id in seen
        assert distance_m(survey, (nearest.lat, nearest.lon), (finding.lat, finding.lon)) <= finding.gsd_m


def test_a_video_without_srt_or_camera_is_named_unusable(survey, tmp_path):
    folder = tmp_path / "flight"
    folder.mkdir()
    writer = cv2.VideoWriter(str(folder / "A.MP4"), cv2.VideoWriter.fourcc(*"mp4v"), 5, (64, 64))
    for _ in range(5):
        writer.write(np.zeros((64, 64, 3), np.uint8))
    writer.release()
    shutil.copy(folder / "A.MP4", folder / "B.MP4")
    (folder / "B.SRT").write_text(_srt(survey.survey.shots[:1], 1.0))
    plan = plan_survey(folder, out_dir=tmp_path / "out", model=_model())
    reasons = {u.name: u.reason for u in plan.unusable}
    assert reasons == {"A.MP4": "no .SRT telemetry file beside the video",
                       "B.MP4@0.000s": "videos need video_camera in the survey config"}  # fmt: skip


# --- the command line and the tasks ---------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from nonsite.cli import _vault_arguments
    from nonsite.survey_cli import add_commands

    parser = argparse.ArgumentParser(prog="nonsite")
    add_commands(parser.add_subparsers(dest="command", required=True), _vault_arguments)
    return parser


def test_the_command_runs_a_survey_and_prints_a_summary(survey, tmp_path, monkeypatch, capsys):
    from nonsite import survey_cli

    model = tmp_path / "aerial.onnx"
    model.write_bytes(b"a stand-in: the test detector replaces the loaded model")
    monkeypatch.setattr(survey_cli, "load_detector", lambda path, conf: TruthDetector.for_survey(survey, tile=640))
    args = _parser().parse_args(
        ["survey", str(survey.survey.images[0].parent), "--streets", str(survey.streets_path),
         "--out", str(tmp_path / "out"), "--model", str(model), "--no-file", "--no-progress"]
    )  # fmt: skip
    assert survey_cli.cmd_survey(args) == 0
    out = capsys.readouterr().out
    assert f"street occupation: {len(survey.stalls)} finding(s)" in out
    assert f"{len(survey.survey.images)} of {len(survey.survey.images)} images processed" in out
    assert (tmp_path / "out" / "findings.geojson").is_file() and (tmp_path / "out" / "report.md").is_file()


def test_the_command_files_cases_into_the_named_database_and_vault(survey, tmp_path, monkeypatch, capsys):
    from nonsite import survey_cli

    folder = tmp_path / "flight"
    folder.mkdir()
    for p in survey.survey.images[6:9]:
        shutil.copy(p, folder / p.name)
    model = tmp_path / "aerial.onnx"
    model.write_bytes(b"stand-in")
    monkeypatch.setattr(survey_cli, "load_detector", lambda path, conf: TruthDetector.for_survey(survey, tile=640))
    argv = ["survey", str(folder), "--streets", str(survey.streets_path), "--out", str(tmp_path / "out"),
            "--model", str(model), "--db", f"sqlite:///{tmp_path / 'c.db'}", "--evidence", str(tmp_path / "ev"),
            "--keys", str(tmp_path / "keys"), "--no-progress"]  # fmt: skip
    assert survey_cli.cmd_survey(_parser().parse_args(argv)) == 0
    first = capsys.readouterr().out
    assert "case CG-" in first
    assert survey_cli.cmd_survey(_parser().parse_args(argv)) == 0  # again: the same cases, none new
    assert capsys.readouterr().out == first
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    with db.session() as s:
        assert s.query(Case).count() == first.count("case CG-")
    db.close()


def test_the_command_says_why_a_survey_cannot_run(survey, tmp_path, monkeypatch, capsys):
    from nonsite import survey_cli

    model = tmp_path / "m.onnx"
    model.write_bytes(b"stand-in")
    monkeypatch.setattr(survey_cli, "load_detector", lambda path, conf: TruthDetector.for_survey(survey, tile=640))
    args = _parser().parse_args(["survey", str(survey.survey.images[0].parent), "--baseline", str(tmp_path / "x"),
                                 "--model", str(model), "--out", str(tmp_path / "out"), "--no-file"])  # fmt: skip
    assert survey_cli.cmd_survey(args) == 1
    assert f"error: baseline {tmp_path / 'x'} does not exist" in capsys.readouterr().err


def test_the_default_model_is_the_aerial_one_when_it_exists(tmp_path, monkeypatch):
    from nonsite import survey_cli
    from nonsite.starter import starter_model_path

    assert survey_cli.AERIAL_MODEL.name == "street.onnx"  # the street specialist learns drone chips too
    monkeypatch.setattr(survey_cli, "AERIAL_MODEL", tmp_path / "aerial.onnx")
    assert survey_cli.default_model()[0] == starter_model_path()
    assert "does not recognise stalls from the air" in (survey_cli.default_model()[1] or "")
    (tmp_path / "aerial.onnx").write_bytes(b"x")
    assert survey_cli.default_model() == (tmp_path / "aerial.onnx", None)


def test_workers_share_a_batch_one_image_per_task_and_the_last_one_sends_the_merge(survey, tmp_path, monkeypatch):
    from pipelines import survey_tasks

    folder = tmp_path / "flight"
    folder.mkdir()
    for p in survey.survey.images[6:9]:
        shutil.copy(p, folder / p.name)
    plan = plan_survey(folder, out_dir=tmp_path / "out", model=_model(), streets=survey.streets_path, config=CONFIG)
    detector = TruthDetector.for_survey(survey, tile=TILE)
    monkeypatch.setattr(survey_tasks, "detector_for", lambda plan: detector)
    sent: list[tuple[str, tuple]] = []
    monkeypatch.setattr(survey_tasks.survey_image, "delay", lambda *a: sent.append(("image", a)))
    monkeypatch.setattr(survey_tasks.finish_survey_task, "delay", lambda *a: sent.append(("finish", a)))

    assert survey_tasks.dispatch_survey(tmp_path / "out") == 3
    assert [s[1][1] for s in sent] == [i.name for i in plan.images]
    sent.clear()
    out = str(tmp_path / "out")
    assert survey_tasks.survey_image.run(out, plan.images[0].name)["processed"]
    assert survey_tasks.finish_survey_task.run(out) == {"survey": out, "pending": 2}
    assert survey_tasks.survey_image.run(out, plan.images[1].name)["processed"]
    assert survey_tasks.survey_image.run(out, plan.images[1].name)["processed"] is False  # delivered twice
    assert sent == []
    assert survey_tasks.survey_image.run(out, plan.images[2].name)["processed"]
    assert sent == [("finish", (out,))]
    result = survey_tasks.finish_survey_task.run(out)
    assert result["findings"] == len(json.loads((tmp_path / "out" / "findings.geojson").read_text())["features"])
    assert result["findings"] > 0
    sent.clear()
    assert survey_tasks.dispatch_survey(out) == 0 and sent == [("finish", (out,))]


def test_a_worker_refuses_a_plan_without_a_model_file(survey, tmp_path):
    from pipelines import survey_tasks

    plan_survey(survey.survey.images[0].parent, out_dir=tmp_path, model=_model())
    result = survey_tasks.survey_image.run(str(tmp_path), survey.survey.images[0].name)
    assert "names no model file" in result["error"]


def test_an_expired_permit_covers_nothing_and_changing_permits_reprocesses_no_image(filed, tmp_path):
    permits = json.loads(filed.survey.permits_path.read_text())
    for feature in permits["features"]:
        feature["properties"]["valid_until"] = "2026-01-31"  # before the survey flew (2026-06-15)
    (tmp_path / "permits.geojson").write_text(json.dumps(permits))
    shutil.copytree(filed.out / "state", tmp_path / "out" / "state")
    calls = filed.detector.calls
    report = run_survey(
        filed.survey.survey.images[0].parent,
        out_dir=tmp_path / "out",
        detector=filed.detector,
        baseline=filed.survey.baseline.images[0].parent,
        permits=tmp_path / "permits.geojson",
        streets=filed.survey.streets_path,
        config=CONFIG,
    )
    assert filed.detector.calls == calls
    assert report.skipped_permitted == ()
    expired = [f for f in report.construction if "expired on 2026-01-31" in f.permit_check]
    numbers = sorted(f.permit_check.split()[5].rstrip(",") for f in expired)
    assert numbers == sorted(s.permit_no for s in filed.report.skipped_permitted)
    assert len(report.construction) == len(filed.report.construction) + len(filed.report.skipped_permitted)


def test_a_finding_that_cannot_be_filed_is_reported_and_filed_on_the_next_run(survey, tmp_path, monkeypatch):
    from cases.errors import FilingError

    folder = tmp_path / "flight"
    folder.mkdir()
    for p in survey.survey.images[6:9]:
        shutil.copy(p, folder / p.name)
    db = Database(f"sqlite:///{tmp_path / 'cases.db'}")
    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    book = Casebook(db, vault)
    detector = TruthDetector.for_survey(survey, tile=TILE)
    real = book.file_package
    failing = {"left": 1}

    def file_package(package_id: str):
        if failing["left"]:
            failing["left"] -= 1
            raise FilingError("the database is read-only (as the test asked)")
        return real(package_id)

    monkeypatch.setattr(book, "file_package", file_package)
    first = _streets_only(survey, folder, tmp_path / "out", detector, casebook=book)
    (broken,) = [f for f in first.findings if f.filing_error]
    assert "read-only" in broken.filing_error and broken.case_number is None
    assert first.counts["filing_errors"] == 1 and first.counts["cases_filed"] == len(first.findings) - 1
    again = _streets_only(survey, folder, tmp_path / "out", detector, casebook=book)
    assert again.counts["filing_errors"] == 0
    assert all(f.case_number for f in again.findings)
    with db.session() as s:
        assert s.query(Case).count() == len({f.case_number for f in again.findings})
    vault.close()
    db.close()


# --- the synthetic evaluation ----------------------------------------------------------------------


def test_the_survey_score_counts_what_was_found_missed_and_made_up(filed):
    survey, report = filed.survey, filed.report
    score = score_survey(survey, report)
    unpermitted = [s for s in survey.structures if not s.permitted]
    assert (score.structures, score.structures_found, score.construction_false) == (len(unpermitted),) * 2 + (0,)
    assert score.permitted_skipped == score.permitted == len(survey.structures) - len(unpermitted)
    assert (score.stalls, score.stalls_found, score.occupation_false) == (len(survey.stalls),) * 2 + (0,)
    assert max(score.structure_errors_m) < 3 * max(f.gsd_m for f in report.construction)
    assert max(score.area_errors) < AREA_TOLERANCE and score.change_s is not None

    # one structure missed, one made-up finding far from anything, a permit's structure reported
    first, *rest = report.construction
    far = first.model_copy(update={"id": "made-up", "lat": first.lat + 0.01})
    (skip,) = report.skipped_permitted[:1]
    at_permit = first.model_copy(update={"id": "at-permit", "lat": skip.lat, "lon": skip.lon})
    worse = score_survey(survey, report.model_copy(update={"findings": (*report.occupation, *rest, far, at_permit)}))
    assert worse.structures_found == score.structures_found - 1
    assert worse.construction_false == 2
    assert worse.permitted_skipped == score.permitted_skipped - 1
