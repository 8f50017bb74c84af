"""Drone survey batch runs: a flight's images in, findings on a map, sealed evidence and cases out.

A survey is a folder of geotagged drone photos (or videos with their DJI `.SRT`
telemetry, sampled into geotagged frames). It runs in three steps, each a plain
function, so that the embedded mode runs them in-process and distributed workers share
a batch through the Celery tasks of `pipelines.survey_tasks`:

1. `plan_survey` reads every image's metadata (`vision.geo.read_drone_shot`), the
   baseline survey's (a folder of images, or an orthomosaic GeoTIFF, `vision.ortho`),
   the street and permit polygons, and writes `plan.json`. Images without a position
   or height, and files that are no image, are listed with the reason; they never stop
   the batch.
2. `process_image` handles one image: tiled detection (`vision.tiling.detect_tiled`),
   each detection projected to the ground (`vision.geo.GroundProjector`); with a
   baseline folder, the baseline image whose footprint overlaps it most is registered
   onto it (with an orthomosaic, the orthomosaic resampled onto the image's own grid by
   its geotags), and its changes are judged (`pipelines.survey_structures`). The result
   goes to `state/<image>.json`, written atomically: a re-run skips the images that are
   done, so a crash loses at most the image it was on.
3. `finish_survey` merges the per-image results: stall, umbrella and goods detections
   whose ground point lies in a street polygon become street-occupation findings, one
   per object however many images saw it; structure candidates seen in enough views
   become construction findings unless they stand in a permitted parcel. It writes
   `findings.geojson`, `report.json` and `report.md`, and, given a casebook, seals each
   finding as an evidence package and files it as a camera-less case at its place on the
   ground. Filing is recorded in `filed.json`, so a re-run files nothing twice.

`run_survey` does all three. Positions are metres on the ENU plane of `vision.geo`
around the survey's first usable image.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nonsite import __version__
from pipelines.survey_geometry import (
    GeometryError,
    GeoPolygon,
    PlanarPolygons,
    cluster_by_distance,
    convex_overlap,
    points_in_ring,
    polygons_from_geojson,
    ring_area,
)
from pipelines.survey_structures import (
    PairResult,
    StructureCandidate,
    StructureRules,
    baseline_on_new_grid,
    compare_pair,
)
from vision.change import Registration
from vision.detectors.base import file_sha256
from vision.errors import DroneMetadataError, OrthoError, RegistrationError
from vision.geo import (
    DRONE_CAMERAS,
    CameraIntrinsics,
    DroneShot,
    GroundProjector,
    camera_for_model,
    enu_to_latlon,
    latlon_to_enu_array,
    parse_srt,
    read_drone_shot,
    shot_at,
)
from vision.ortho import Orthomosaic, read_orthomosaic, render_view, view_homography
from vision.tiling import detect_tiled

if TYPE_CHECKING:
    from cases.casebook import Casebook
    from evidence.package import PackageFile
    from evidence.vault import Vault
    from vision.detectors.base import Detector

logger = logging.getLogger(__name__)

PLAN_FORMAT = "nonsite.survey.plan/1"
IMAGE_FORMAT = "nonsite.survey.image/1"
REPORT_FORMAT = "nonsite.survey.report/1"
FILED_FORMAT = "nonsite.survey.filed/1"
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".avi", ".mkv"})


class SurveyError(Exception):
    """A survey cannot run as asked: a missing or empty folder, an unreadable plan, bad polygons."""


# --- configuration ------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TilingConfig(_Strict):
    """How large drone photos are cut for the detector (`vision.tiling.detect_tiled`)."""

    tile: int = Field(640, ge=64, le=4096, title="Tile size", description="Side of the square tiles, in pixels.")
    overlap: float = Field(0.2, ge=0.0, le=0.75, description="Least overlap of neighbouring tiles, as a share.")
    batch: int = Field(8, ge=1, le=256, description="Tiles sent to the detector in one call.")
    merge_iou: float = Field(
        0.5, gt=0.0, le=1.0, description="Overlap at which two boxes of one class from the tiles are one object."
    )
    include_full_image: bool = Field(
        False, description="Also run the detector on the whole image, for objects larger than a tile."
    )


class OccupationConfig(_Strict):
    """Which detections count as street occupation, and how observations of one object are merged."""

    classes: tuple[str, ...] = Field(
        ("stall", "umbrella", "goods"),
        min_length=1,
        description="Detector classes that occupy the street when their ground point lies in a street polygon.",
    )
    min_score: float = Field(0.3, ge=0.0, le=1.0, description="Least detection score that counts.")
    min_size_m: float = Field(
        0.3, gt=0.0, le=10.0, description="Boxes whose longer side is shorter on the ground than this are noise (m)."
    )
    max_size_m: float = Field(
        12.0,
        gt=0.0,
        le=200.0,
        description="Boxes whose longer side is longer on the ground than this are no stall (m).",
    )
    street_kinds: tuple[str, ...] | None = Field(
        None,
        description="Only street polygons whose 'kind' property is one of these count (e.g. road, sidewalk); "
        "None: every polygon.",
    )
    dedupe_gsd: float = Field(
        5.0,
        gt=0.0,
        le=200.0,
        description="Observations in overlapping images are one object when their ground points lie within this "
        "many ground sample distances of each other (or dedupe_min_m, whichever is larger).",
    )
    dedupe_min_m: float = Field(
        2.0, gt=0.0, le=50.0, description="Least merging distance in metres: the geotags' own error between images."
    )


class ChangeConfig(_Strict):
    """Change detection against a baseline survey, and what counts as a new structure."""

    min_area_m2: float = Field(8.0, gt=0.0, le=10_000.0, description="Smallest roof reported (m²).")
    max_area_m2: float = Field(2000.0, gt=0.0, le=100_000.0, description="Largest roof reported (m²).")
    min_rectangularity: float = Field(
        0.55, ge=0.0, le=1.0, description="A change region must fill this much of its rotated bounding box."
    )
    min_solidity: float = Field(0.7, ge=0.0, le=1.0, description="A change region must fill this much of its hull.")
    max_elongation: float = Field(
        5.0, ge=1.0, le=100.0, description="Longest ratio of a region's sides (roads and fences are longer)."
    )
    min_contrast: float = Field(
        10.0, ge=0.0, le=200.0, description="A new roof differs from its surroundings by at least this ΔE*ab now."
    )
    max_before_contrast_ratio: float = Field(
        0.75,
        ge=0.0,
        le=10.0,
        description="The same place may have stood out from the same surroundings before by at most this share "
        "of how it stands out now (else something was already there).",
    )
    shadow_lightness: float = Field(
        0.8, ge=0.0, le=2.0, description="A darkened region below this share of the image's median L* is a shadow."
    )
    lit_lightness: float = Field(
        1.75,
        ge=0.0,
        le=10.0,
        description="A region that only got lighter and is now below this share of the median L* is a shadow "
        "that went.",
    )
    min_baseline_overlap: float = Field(
        0.3, gt=0.0, le=1.0, description="A baseline image must cover this share of a new image's footprint."
    )
    baseline_candidates: int = Field(
        2, ge=1, le=10, description="Baseline images tried, most overlapping first, until one registers."
    )
    min_inliers: int = Field(25, ge=4, le=100_000, description="Matches that must agree on a registration.")
    work_side: int = Field(1600, ge=64, le=8192, description="Images are registered shrunk to this longer side (px).")
    max_geo_disagreement_m: float = Field(
        30.0,
        gt=0.0,
        le=1000.0,
        description="A registration that moves the image's centre farther than this from where the two geotags "
        "put it is refused as a false match (m).",
    )
    merge_distance_m: float = Field(
        3.0, gt=0.0, le=100.0, description="Structure candidates in overlapping images closer than this are one."
    )
    min_views: int = Field(
        2,
        ge=1,
        le=50,
        description="A structure must be judged one in at least this many image pairs, in most of the pairs "
        "that found a change there, and seen whole (not cut by an image's edge) in one of them.",
    )
    ignore_classes: tuple[str, ...] = Field(
        ("vehicle", "person"),
        description="Detector classes that come and go: a change under one of their boxes is no structure.",
    )

    def rules(self) -> StructureRules:
        return StructureRules(
            min_area_m2=self.min_area_m2,
            max_area_m2=self.max_area_m2,
            min_rectangularity=self.min_rectangularity,
            min_solidity=self.min_solidity,
            max_elongation=self.max_elongation,
            min_contrast=self.min_contrast,
            max_before_contrast_ratio=self.max_before_contrast_ratio,
            shadow_lightness=self.shadow_lightness,
            lit_lightness=self.lit_lightness,
        )

    @model_validator(mode="after")
    def _bounds(self) -> ChangeConfig:
        if self.min_area_m2 > self.max_area_m2:
            raise ValueError(f"min_area_m2 {self.min_area_m2} exceeds max_area_m2 {self.max_area_m2}")
        return self


Ring = tuple[tuple[float, float], ...]


class SurveyConfig(_Strict):
    """Everything a survey run decides by; recorded in its plan and report."""

    tiling: TilingConfig = Field(default_factory=TilingConfig, description="Tiled detection.")
    occupation: OccupationConfig = Field(default_factory=OccupationConfig, description="Street occupation.")
    change: ChangeConfig = Field(default_factory=ChangeConfig, description="New structures against a baseline.")
    streets: tuple[Ring, ...] = Field(
        (),
        description="Street and sidewalk polygons given here rather than in a file: rings of [lon, lat] (GeoJSON "
        "order).",
    )
    video_interval_s: float = Field(2.0, gt=0.0, le=600.0, description="A video is sampled every this many seconds.")
    video_camera: str | None = Field(
        None, description="Camera of the videos (a vision.geo.DRONE_CAMERAS key, e.g. FC6310); videos need it."
    )
    video_gimbal_pitch_deg: float | None = Field(
        None, ge=-90.0, le=30.0, description="Gimbal pitch of videos whose telemetry lacks it (-90: straight down)."
    )
    video_gimbal_yaw_deg: float | None = Field(
        None, ge=-180.0, le=360.0, description="Gimbal yaw of videos whose telemetry lacks it (0: north)."
    )
    crop_min_px: int = Field(128, ge=16, le=4096, description="Smallest evidence crop around a finding (px).")
    crop_max_px: int = Field(640, ge=16, le=8192, description="Largest evidence crop around a finding (px).")

    @model_validator(mode="after")
    def _check(self) -> SurveyConfig:
        if self.video_camera is not None and self.video_camera not in DRONE_CAMERAS:
            raise ValueError(f"video_camera must be one of {', '.join(DRONE_CAMERAS)}, but got {self.video_camera!r}")
        if self.crop_min_px > self.crop_max_px:
            raise ValueError(f"crop_min_px {self.crop_min_px} exceeds crop_max_px {self.crop_max_px}")
        for k, ring in enumerate(self.streets):
            if len(set(ring)) < 3:
                raise ValueError(f"streets[{k}] needs at least 3 distinct [lon, lat] positions")
            for lon, lat in ring:
                if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
                    raise ValueError(f"streets[{k}] has ({lon}, {lat}), not a [lon, lat] pair")
        return self


# --- the plan -------------------------------------------------------------------------------------


class ShotRecord(_Strict):
    """A `DroneShot` as JSON."""

    lat: float
    lon: float
    abs_alt_m: float | None
    rel_alt_m: float
    gimbal_pitch_deg: float
    gimbal_yaw_deg: float
    gimbal_roll_deg: float
    flight_yaw_deg: float | None
    taken_at: datetime | None
    make: str
    model: str
    focal_mm: float
    sensor_w_mm: float
    sensor_h_mm: float
    width_px: int
    height_px: int

    @classmethod
    def of(cls, shot: DroneShot) -> ShotRecord:
        k = shot.intrinsics
        return cls(
            lat=shot.lat,
            lon=shot.lon,
            abs_alt_m=shot.abs_alt_m,
            rel_alt_m=shot.rel_alt_m,
            gimbal_pitch_deg=shot.gimbal_pitch_deg,
            gimbal_yaw_deg=shot.gimbal_yaw_deg,
            gimbal_roll_deg=shot.gimbal_roll_deg,
            flight_yaw_deg=shot.flight_yaw_deg,
            taken_at=shot.taken_at,
            make=shot.make,
            model=shot.model,
            focal_mm=k.focal_mm,
            sensor_w_mm=k.sensor_w_mm,
            sensor_h_mm=k.sensor_h_mm,
            width_px=k.width_px,
            height_px=k.height_px,
        )

    def shot(self) -> DroneShot:
        return DroneShot(
            lat=self.lat,
            lon=self.lon,
            abs_alt_m=self.abs_alt_m,
            rel_alt_m=self.rel_alt_m,
            gimbal_pitch_deg=self.gimbal_pitch_deg,
            gimbal_yaw_deg=self.gimbal_yaw_deg,
            flight_yaw_deg=self.flight_yaw_deg,
            taken_at=self.taken_at,
            make=self.make,
            model=self.model,
            intrinsics=CameraIntrinsics(
                self.focal_mm, self.sensor_w_mm, self.sensor_h_mm, self.width_px, self.height_px
            ),
            gimbal_roll_deg=self.gimbal_roll_deg,
        )


class PlannedImage(_Strict):
    """One image of a survey (or one sampled video frame) whose metadata geo-references it."""

    name: str
    path: str
    kind: Literal["photo", "frame"]
    size: int
    mtime_ns: int
    shot: ShotRecord
    footprint: tuple[tuple[float, float], ...]  # (lat, lon) under the image's corners, clockwise from top-left
    gsd_m: float


class OrthoRecord(_Strict):
    """An orthomosaic used as the baseline: the file, its map grid, and the pyramid level compared with."""

    name: str
    path: str
    size: int
    mtime_ns: int
    sha256: str
    crs: str
    level: int
    width: int  # of the level
    height: int
    gsd_m: float  # of the level
    file_time: datetime | None  # TIFF DateTime: when the file was made, not when the flight was

    def identity(self) -> tuple[str, int, int, int]:
        return (self.path, self.size, self.mtime_ns, self.level)


class UnusableImage(_Strict):
    """A file of the survey that cannot be used, and why."""

    name: str
    path: str
    reason: str


class ModelRecord(_Strict):
    """The detector a survey ran: its file (for workers that load it), hash and classes."""

    path: str | None
    sha256: str
    names: tuple[str, ...]


class SurveyPlan(_Strict):
    """What a survey will process: written to `plan.json` by `plan_survey`, read by every worker."""

    format: Literal["nonsite.survey.plan/1"] = "nonsite.survey.plan/1"
    folder: str
    out_dir: str
    baseline: str | None
    config: SurveyConfig
    model: ModelRecord
    file_cases: bool
    origin: tuple[float, float]
    images: tuple[PlannedImage, ...]
    unusable: tuple[UnusableImage, ...]
    baseline_images: tuple[PlannedImage, ...]
    baseline_unusable: tuple[UnusableImage, ...]
    streets: tuple[dict[str, Any], ...]
    permits: tuple[dict[str, Any], ...]
    processing_key: str
    baseline_ortho: OrthoRecord | None = None

    @property
    def has_baseline(self) -> bool:
        return bool(self.baseline_images) or self.baseline_ortho is not None

    def image(self, name: str) -> PlannedImage:
        for image in self.images:
            if image.name == name:
                return image
        raise SurveyError(f"image {name!r} is not in the plan of {self.out_dir}")

    def image_key(self, image: PlannedImage) -> str:
        """What an image's result depends on: the file, the processing settings, the model, the baseline."""
        identity = f"{image.name}\0{image.size}\0{image.mtime_ns}\0{image.shot.model_dump_json()}"
        return hashlib.sha256(f"{identity}\0{self.processing_key}".encode()).hexdigest()


def _write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_polygons(path: Path | None, what: str) -> list[GeoPolygon]:
    if path is None:
        return []
    if not path.is_file():
        raise SurveyError(f"{what} file {path} does not exist")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SurveyError(f"{what} file {path} is not readable GeoJSON: {e}") from e
    try:
        return polygons_from_geojson(document, source=str(path))
    except GeometryError as e:
        raise SurveyError(str(e)) from e


def _listing(folder: Path, what: str) -> tuple[list[Path], list[Path]]:
    """The photos and videos directly in `folder`, sorted by name."""
    if not folder.exists():
        raise SurveyError(f"{what} folder {folder} does not exist")
    if not folder.is_dir():
        raise SurveyError(f"{what} {folder} is not a folder of drone images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    photos = [p for p in files if p.suffix.lower() in PHOTO_SUFFIXES]
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    if not photos and not videos:
        kinds = ", ".join(sorted(PHOTO_SUFFIXES | VIDEO_SUFFIXES))
        raise SurveyError(f"{what} folder {folder} holds no drone photos or videos ({kinds})")
    return photos, videos


def _planned(path: Path, name: str, kind: Literal["photo", "frame"], shot: DroneShot) -> PlannedImage:
    projector = GroundProjector(shot)
    gsd = projector.gsd_m
    if gsd is None:
        raise DroneMetadataError(f"{path}: the image's centre sees the sky (gimbal pitch {shot.gimbal_pitch_deg})")
    stat = path.stat()
    return PlannedImage(
        name=name,
        path=str(path.resolve()),
        kind=kind,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        shot=ShotRecord.of(shot),
        footprint=tuple((float(a), float(b)) for a, b in projector.footprint_latlon()),
        gsd_m=gsd,
    )


def _plan_photo(path: Path) -> PlannedImage | UnusableImage:
    try:
        shot = read_drone_shot(path)
        if not shot.rel_alt_m > 0:
            raise DroneMetadataError(f"{path}: relative altitude {shot.rel_alt_m} m puts the drone on the ground")
        return _planned(path, path.name, "photo", shot)
    except (DroneMetadataError, ValueError, OSError) as e:
        return UnusableImage(name=path.name, path=str(path.resolve()), reason=_reason(e, path))


def _reason(error: Exception, path: Path) -> str:
    """An error's message without the path prefix the caller already names."""
    text = str(error)
    for prefix in (f"{path}: ", f"{path.resolve()}: "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def _srt_beside(video: Path) -> Path | None:
    for candidate in video.parent.iterdir():
        if candidate.stem == video.stem and candidate.suffix.lower() == ".srt":
            return candidate
    return None


def _plan_video(video: Path, config: SurveyConfig, frames_dir: Path) -> list[PlannedImage | UnusableImage]:
    """Frames of a video every `config.video_interval_s`, each geotagged from the `.SRT` beside it."""
    where = str(video.resolve())
    srt = _srt_beside(video)
    if srt is None:
        return [UnusableImage(name=video.name, path=where, reason="no .SRT telemetry file beside the video")]
    try:
        records = parse_srt(srt.read_text(encoding="utf-8", errors="replace"), source=str(srt))
    except (DroneMetadataError, OSError) as e:
        return [UnusableImage(name=video.name, path=where, reason=str(e))]
    if not records:
        return [UnusableImage(name=video.name, path=where, reason=f"{srt.name} holds no position with a GPS fix")]
    capture = cv2.VideoCapture(str(video))
    try:
        if not capture.isOpened():
            return [UnusableImage(name=video.name, path=where, reason="not a readable video")]
        fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
        step = max(1, round(config.video_interval_s * fps))
        out: list[PlannedImage | UnusableImage] = []
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % step:
                index += 1
                continue
            t = index / fps
            name = f"{video.name}@{t:.3f}s"
            index += 1
            record = shot_at(records, t, tolerance_s=0.5 / fps + 0.05)
            if record is None:
                out.append(UnusableImage(name=name, path=where, reason=f"no telemetry in {srt.name} at {t:.3f} s"))
                continue
            height, width = frame.shape[:2]
            if config.video_camera is None:
                out.append(UnusableImage(name=name, path=where, reason="videos need video_camera in the survey config"))
                continue
            intrinsics = camera_for_model(config.video_camera, width, height)
            if intrinsics is None:  # pragma: no cover - the config checks the key
                raise SurveyError(f"unknown video_camera {config.video_camera!r}")
            try:
                shot = record.to_shot(
                    intrinsics,
                    model=config.video_camera,
                    gimbal_pitch_deg=config.video_gimbal_pitch_deg,
                    gimbal_yaw_deg=config.video_gimbal_yaw_deg,
                )
            except DroneMetadataError as e:
                out.append(UnusableImage(name=name, path=where, reason=f"{srt.name}: {e}"))
                continue
            target = frames_dir / f"{_safe(video.name)}-{round(t * 1000):09d}.png"
            if not target.is_file():
                frames_dir.mkdir(parents=True, exist_ok=True)
                ok, png = cv2.imencode(".png", frame)
                if not ok:  # pragma: no cover - OpenCV encodes any decoded frame
                    raise SurveyError(f"cannot encode frame {name} as PNG")
                _write_bytes(target, png.tobytes())
            try:
                out.append(_planned(target, name, "frame", shot))
            except DroneMetadataError as e:
                out.append(UnusableImage(name=name, path=where, reason=str(e)))
        if not out:
            out.append(UnusableImage(name=video.name, path=where, reason="no frame could be decoded"))
        return out
    finally:
        capture.release()


def _write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _plan_folder(
    folder: Path, config: SurveyConfig, frames_dir: Path, what: str
) -> tuple[list[PlannedImage], list[UnusableImage]]:
    photos, videos = _listing(folder, what)
    items = [*(_plan_photo(p) for p in photos), *(x for v in videos for x in _plan_video(v, config, frames_dir))]
    usable = [i for i in items if isinstance(i, PlannedImage)]
    unusable = [i for i in items if isinstance(i, UnusableImage)]
    names = Counter(i.name for i in usable)
    if twice := sorted(n for n, c in names.items() if c > 1):
        raise SurveyError(f"{what} folder {folder} names images twice: {', '.join(twice)}")
    for item in unusable:
        logger.warning("%s: %s is unusable: %s", what, item.name, item.reason)
    return usable, unusable


def _processing_key(
    config: SurveyConfig, model: ModelRecord, baseline_images: Sequence[PlannedImage], ortho: OrthoRecord | None
) -> str:
    processing = config.model_dump(mode="json", include={"tiling", "occupation", "change"})
    identity: list[Any] = [(b.name, b.size, b.mtime_ns) for b in baseline_images]
    if ortho is not None:
        identity.append([ortho.sha256, ortho.level])
    text = json.dumps({"config": processing, "model": model.sha256, "baseline": identity}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _survey_gsd_m(images: Sequence[PlannedImage]) -> float:
    """The survey's median ground sample distance (0 without images)."""
    return float(np.median([i.gsd_m for i in images])) if images else 0.0


def _plan_ortho(path: Path, images: Sequence[PlannedImage]) -> OrthoRecord:
    """The orthomosaic's record, at the coarsest level still as fine as the survey's median pixel (or the
    finest coarser one that fits in memory)."""
    try:
        ortho = read_orthomosaic(path)
        level = ortho.level_for(_survey_gsd_m(images) or ortho.gsd_m)
    except OrthoError as e:
        raise SurveyError(f"baseline orthomosaic {e}") from e
    stat = path.stat()
    width, height = ortho.levels[level]
    return OrthoRecord(
        name=path.name,
        path=str(path.resolve()),
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        sha256=file_sha256(path),
        crs=ortho.crs,
        level=level,
        width=width,
        height=height,
        gsd_m=round(ortho.level_gsd_m(level), 5),
        file_time=ortho.file_time,
    )


def plan_survey(
    folder: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str],
    model: ModelRecord,
    baseline: str | os.PathLike[str] | None = None,
    permits: str | os.PathLike[str] | None = None,
    streets: str | os.PathLike[str] | None = None,
    config: SurveyConfig | None = None,
    file_cases: bool = False,
) -> SurveyPlan:
    """Read the metadata of a survey (and its baseline) and write `out_dir/plan.json`.

    `baseline` is the folder of an earlier flight's images, or an orthomosaic GeoTIFF
    of the area. Raises `SurveyError` for a missing or empty folder, a missing baseline,
    a baseline folder without one usable image, an orthomosaic that cannot be used, and
    unreadable polygon files. Images that cannot be geo-referenced are listed in the
    plan with the reason, not raised.
    """
    config = config or SurveyConfig()
    root, out = Path(folder), Path(out_dir)
    frames = out / "frames"
    images, unusable = _plan_folder(root, config, frames / "survey", "survey")
    baseline_images: list[PlannedImage] = []
    baseline_unusable: list[UnusableImage] = []
    ortho: OrthoRecord | None = None
    if baseline is not None and not Path(baseline).exists():
        raise SurveyError(f"baseline {baseline} does not exist: give an earlier survey's folder or its orthomosaic")
    if baseline is not None and Path(baseline).is_file():
        ortho = _plan_ortho(Path(baseline), images)
    elif baseline is not None:
        baseline_images, baseline_unusable = _plan_folder(Path(baseline), config, frames / "baseline", "baseline")
        if not baseline_images:
            reasons = "; ".join(f"{u.name}: {u.reason}" for u in baseline_unusable[:3])
            raise SurveyError(f"baseline folder {baseline} holds no geo-referenced image ({reasons})")
    street_polygons = _read_polygons(Path(streets) if streets is not None else None, "streets")
    street_polygons += [GeoPolygon((ring,), {"kind": "config"}, k) for k, ring in enumerate(config.streets)]
    permit_polygons = _read_polygons(Path(permits) if permits is not None else None, "permits")
    located = images or baseline_images
    origin = (located[0].shot.lat, located[0].shot.lon) if located else (0.0, 0.0)
    plan = SurveyPlan(
        folder=str(root.resolve()),
        out_dir=str(out.resolve()),
        baseline=str(Path(baseline).resolve()) if baseline is not None else None,
        config=config,
        model=model,
        file_cases=file_cases,
        origin=origin,
        images=tuple(images),
        unusable=tuple(unusable),
        baseline_images=tuple(baseline_images),
        baseline_unusable=tuple(baseline_unusable),
        streets=tuple(p.to_json() for p in street_polygons),
        permits=tuple(p.to_json() for p in permit_polygons),
        processing_key=_processing_key(config, model, baseline_images, ortho),
        baseline_ortho=ortho,
    )
    _write_json(out / "plan.json", plan.model_dump(mode="json"))
    logger.info("planned %d images (%d unusable) in %s", len(images), len(unusable), out)
    return plan


def load_plan(out_dir: str | os.PathLike[str]) -> SurveyPlan:
    """The plan `plan_survey` wrote to `out_dir`."""
    path = Path(out_dir) / "plan.json"
    try:
        return SurveyPlan.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise SurveyError(f"{path} does not exist: plan the survey first (plan_survey or `nonsite survey`)") from e
    except (OSError, ValidationError, ValueError) as e:
        raise SurveyError(f"{path} is not a survey plan: {e}") from e


# --- one image ----------------------------------------------------------------------------------


class DetectionRecord(_Strict):
    """A detection of one image on the ground."""

    class_name: str
    score: float
    xyxy: tuple[float, float, float, float]
    lat: float
    lon: float
    size_m: tuple[float, float]


class StructureRecord(_Strict):
    """A judged change region of one image: `pipelines.survey_structures.StructureCandidate` on the ground."""

    verdict: str
    lat: float
    lon: float
    outline: tuple[tuple[float, float], ...]  # (lat, lon)
    bbox_px: tuple[int, int, int, int]
    area_m2: float
    region_area_m2: float
    contrast_now: float
    contrast_before: float
    lightness_now: float
    lightness_before: float
    touches_edge: bool


class ChangeRecord(_Strict):
    """How one image was compared with the baseline."""

    baseline: str | None = None
    baseline_sha256: str | None = None
    homography: tuple[tuple[float, float, float], ...] | None = (
        None  # new-image pixels → baseline pixels (an orthomosaic's: of its level)
    )
    inliers: int = 0
    reprojection_error_px: float | None = None
    regions: int = 0
    shaped: int = 0
    error: str | None = None
    tried: tuple[str, ...] = ()


class ImageResult(_Strict):
    """What processing one image found; `state/<image>.json`."""

    format: Literal["nonsite.survey.image/1"] = "nonsite.survey.image/1"
    name: str
    key: str
    status: Literal["done", "unreadable"]
    reason: str | None = None
    sha256: str | None = None
    width: int = 0
    height: int = 0
    seconds: dict[str, float] = Field(default_factory=dict)
    detections: tuple[DetectionRecord, ...] = ()
    other_classes: dict[str, int] = Field(default_factory=dict)
    change: ChangeRecord | None = None
    structures: tuple[StructureRecord, ...] = ()


_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")


def _safe(name: str) -> str:
    safe = _UNSAFE.sub("_", name)
    if safe != name or safe.startswith("."):
        safe = f"{safe.lstrip('.')}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return safe


def state_path(out_dir: str | os.PathLike[str], name: str) -> Path:
    """Where the result of image `name` is kept."""
    return Path(out_dir) / "state" / f"{_safe(name)}.json"


def read_result(plan: SurveyPlan, name: str) -> ImageResult | None:
    """The stored result of image `name`, or None if it is missing, damaged or for other inputs."""
    path = state_path(plan.out_dir, name)
    try:
        result = ImageResult.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError, ValueError) as e:
        logger.warning("%s is damaged (%s); the image is processed again", path, e)
        return None
    return result if result.key == plan.image_key(plan.image(name)) else None


class ImageUnreadableError(Exception):
    """An image file whose pixels cannot be decoded."""


def read_image(path: str | os.PathLike[str]) -> tuple[bytes, np.ndarray]:
    """A file's bytes and its decoded BGR pixels; a truncated JPEG or undecodable file raises."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ImageUnreadableError(f"cannot read the file: {e}") from e
    if p.suffix.lower() in PHOTO_SUFFIXES and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise ImageUnreadableError("the JPEG is truncated (it does not end with the EOI marker FFD9)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageUnreadableError("the pixels cannot be decoded (corrupt or not an image)")
    return data, image


def _pixel_area_m2(projector: GroundProjector, x: float, y: float) -> float:
    g = projector.pixels_to_enu([[x - 0.5, y], [x + 0.5, y], [x, y - 0.5], [x, y + 0.5]])
    if np.isnan(g).any():
        return float("nan")
    a, b = g[1] - g[0], g[3] - g[2]
    return float(abs(a[0] * b[1] - a[1] * b[0]))


def _detections(
    plan: SurveyPlan, names: Sequence[str], found: Any, projector: GroundProjector
) -> tuple[list[DetectionRecord], dict[str, int]]:
    occupation = plan.config.occupation
    wanted = set(occupation.classes)
    records: list[DetectionRecord] = []
    others: Counter[str] = Counter()
    for xyxy, score, class_id in zip(found.xyxy.tolist(), found.score.tolist(), found.class_id.tolist(), strict=True):
        name = names[class_id] if 0 <= class_id < len(names) else str(class_id)
        if name not in wanted:
            others[name] += 1
            continue
        if score < occupation.min_score:
            others[f"{name} (score < {occupation.min_score})"] += 1
            continue
        x1, y1, x2, y2 = xyxy
        place = projector.box_latlon(x1, y1, x2, y2)
        size = projector.box_size_m(x1, y1, x2, y2)
        if place is None or size is None:
            others[f"{name} (sees the sky)"] += 1
            continue
        records.append(
            DetectionRecord(
                class_name=name,
                score=round(float(score), 4),
                xyxy=(round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)),
                lat=place[0],
                lon=place[1],
                size_m=(round(size[0], 3), round(size[1], 3)),
            )
        )
    return records, dict(sorted(others.items()))


def _footprint_en(plan: SurveyPlan, image: PlannedImage) -> np.ndarray:
    return latlon_to_enu_array(*plan.origin, list(image.footprint))


def _geo_check(new: PlannedImage, base: PlannedImage, limit_m: float) -> Callable[[Registration], None]:
    """Refuse a registration that moves the new image's centre far from where both geotags put it."""
    new_projector, base_projector = GroundProjector(new.shot.shot()), GroundProjector(base.shot.shot())
    k = new.shot
    centre = new_projector.pixel_to_latlon(k.width_px / 2, k.height_px / 2)

    def accept(registration: Registration) -> None:
        if centre is None:
            return
        expected = base_projector.latlon_to_pixel(*centre)
        if expected is None:
            return
        # the homography works in OpenCV pixels, whose centres are at integers
        mapped = registration.map_points(np.array([[k.width_px / 2 - 0.5, k.height_px / 2 - 0.5]]))[0] + 0.5
        offset_px = math.dist(mapped, expected)
        offset_m = offset_px * base.gsd_m
        if offset_m > limit_m:
            raise RegistrationError(
                f"the registration puts the image's centre {offset_m:.0f} m from where the geotags put it "
                f"(more than {limit_m:.0f} m): a false match"
            )

    return accept


def _view_check(gsd_m: float, size: tuple[int, int], limit_m: float) -> Callable[[Registration], None]:
    """Refuse a registration onto an orthomosaic's view that moves the image's centre farther than `limit_m`.

    The view was resampled onto the image's grid by the image's geotags, so a true
    registration is close to the identity: only the geotags' own error remains.
    """
    centre = np.array([[size[0] / 2 - 0.5, size[1] / 2 - 0.5]])

    def accept(registration: Registration) -> None:
        offset_m = float(np.linalg.norm(registration.map_points(centre)[0] - centre[0])) * gsd_m
        if offset_m > limit_m:
            raise RegistrationError(
                f"the registration moves the image's centre {offset_m:.0f} m from where its geotags put it on "
                f"the orthomosaic (more than {limit_m:.0f} m): a false match"
            )

    return accept


class _LoadedOrtho:
    """One orthomosaic level in memory, shared by every image of a batch in this process until the batch ends."""

    _cache: tuple[tuple[str, int, int, int], tuple[Orthomosaic, np.ndarray, np.ndarray]] | None = None

    @classmethod
    def get(cls, record: OrthoRecord) -> tuple[Orthomosaic, np.ndarray, np.ndarray]:
        """The orthomosaic, its level's BGR pixels and data mask; a file changed since planning is refused."""
        if cls._cache is not None and cls._cache[0] == record.identity():
            return cls._cache[1]
        path = Path(record.path)
        try:
            stat = path.stat()
        except OSError as e:
            raise SurveyError(f"baseline orthomosaic {path} cannot be read: {e}") from e
        if (stat.st_size, stat.st_mtime_ns) != (record.size, record.mtime_ns) or file_sha256(path) != record.sha256:
            raise SurveyError(f"baseline orthomosaic {path} changed since the survey was planned; plan it again")
        try:
            ortho = read_orthomosaic(path)
            pixels, valid = ortho.read(record.level)
        except OrthoError as e:
            raise SurveyError(f"baseline orthomosaic {e}") from e
        pixels.flags.writeable = False
        valid.flags.writeable = False
        cls._cache = (record.identity(), (ortho, pixels, valid))
        return ortho, pixels, valid

    @classmethod
    def release(cls) -> None:
        cls._cache = None


def _ortho_view(
    record: OrthoRecord, projector: GroundProjector, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The homography from the image's grid to the orthomosaic's level, and the view there and its mask."""
    ortho, pixels, valid = _LoadedOrtho.get(record)
    homography = view_homography(ortho, record.level, size, projector.pixels_to_latlon)
    view, view_valid = render_view(pixels, valid, homography, size)
    return homography, view, view_valid


def _compare_ortho(
    plan: SurveyPlan,
    image: PlannedImage,
    pixels: np.ndarray,
    projector: GroundProjector,
    movers: Sequence[tuple[float, float, float, float]],
) -> tuple[ChangeRecord, list[StructureRecord]]:
    """Compare one image with the orthomosaic, resampled onto the image's grid by its geotags, then registered."""
    record = plan.baseline_ortho
    assert record is not None
    change = plan.config.change
    k = image.shot
    size = (k.width_px, k.height_px)
    try:
        to_ortho, view, view_valid = _ortho_view(record, projector, size)
    except OrthoError as e:
        return ChangeRecord(error=f"{record.name}: {e}", tried=(record.name,)), []
    covered = float(view_valid.mean())
    if covered < change.min_baseline_overlap:
        return ChangeRecord(error=f"the orthomosaic {record.name} covers {covered:.0%} of it, less than "
                                  f"{change.min_baseline_overlap:.0%}", tried=(record.name,)), []  # fmt: skip
    gsd = projector.gsd_m or image.gsd_m
    try:
        pair = compare_pair(
            view,
            pixels,
            gsd_m=gsd,
            pixel_m2=_pixel_area_m2(projector, k.width_px / 2, k.height_px / 2),
            rules=change.rules(),
            work_side=change.work_side,
            min_inliers=change.min_inliers,
            accept=_view_check(gsd, size, change.max_geo_disagreement_m),
            baseline_valid=view_valid,
        )
    except RegistrationError as e:
        return ChangeRecord(error=f"{record.name}: {e}", tried=(record.name,)), []
    # new image → view (the registration) → orthomosaic level (the geotags' homography)
    to_level = to_ortho @ pair.registration.homography
    return _pair_record(pair, projector, movers, record.name, record.sha256, to_level / to_level[2, 2], (record.name,))


def _pair_record(
    pair: PairResult,
    projector: GroundProjector,
    movers: Sequence[tuple[float, float, float, float]],
    baseline: str,
    baseline_sha256: str,
    homography: np.ndarray,
    tried: tuple[str, ...],
) -> tuple[ChangeRecord, list[StructureRecord]]:
    """One registered comparison's record (`homography`: new image → baseline pixels) and its structures."""
    structures = [
        _structure_record(c, projector, "vehicle" if _inside_any(*c.centre_px, movers) else None)
        for c in pair.candidates
    ]
    record = ChangeRecord(
        baseline=baseline,
        baseline_sha256=baseline_sha256,
        homography=tuple((float(r[0]), float(r[1]), float(r[2])) for r in homography.tolist()),
        inliers=pair.registration.inliers,
        reprojection_error_px=round(pair.registration.reprojection_error_px, 3),
        regions=pair.regions,
        shaped=pair.shaped,
        tried=tried,
    )
    return record, [s for s in structures if s is not None]


def _inside_any(x: float, y: float, boxes: Sequence[tuple[float, float, float, float]]) -> bool:
    return any(x1 <= x <= x2 and y1 <= y <= y2 for x1, y1, x2, y2 in boxes)


def _compare(
    plan: SurveyPlan,
    image: PlannedImage,
    pixels: np.ndarray,
    projector: GroundProjector,
    movers: Sequence[tuple[float, float, float, float]] = (),
) -> tuple[ChangeRecord, list[StructureRecord]]:
    """Compare one image with the best-overlapping baseline images until one registers.

    `movers` are the boxes of detections that come and go (vehicles, people): a
    structure candidate centred in one is judged `vehicle`.
    """
    if plan.baseline_ortho is not None:
        return _compare_ortho(plan, image, pixels, projector, movers)
    change = plan.config.change
    mine = _footprint_en(plan, image)
    mine_area = ring_area(mine)
    overlaps = sorted(
        ((convex_overlap(mine, _footprint_en(plan, b)) / mine_area if mine_area else 0.0, b.name, b)
         for b in plan.baseline_images),
        key=lambda t: (-t[0], t[1]),
    )  # fmt: skip
    candidates = [b for share, _, b in overlaps if share >= change.min_baseline_overlap][: change.baseline_candidates]
    if not candidates:
        best = overlaps[0][0] if overlaps else 0.0
        return ChangeRecord(error=f"no baseline image covers {change.min_baseline_overlap:.0%} of it "
                                  f"(the best covers {best:.0%})"), []  # fmt: skip
    gsd = projector.gsd_m or image.gsd_m
    k = image.shot
    pixel_m2 = _pixel_area_m2(projector, k.width_px / 2, k.height_px / 2)
    errors: list[str] = []
    for base in candidates:
        try:
            data, base_pixels = read_image(base.path)
        except ImageUnreadableError as e:
            errors.append(f"{base.name}: {e}")
            continue
        try:
            pair = compare_pair(
                base_pixels,
                pixels,
                gsd_m=gsd,
                pixel_m2=pixel_m2,
                rules=change.rules(),
                work_side=change.work_side,
                min_inliers=change.min_inliers,
                accept=_geo_check(image, base, change.max_geo_disagreement_m),
            )
        except RegistrationError as e:
            errors.append(f"{base.name}: {e}")
            continue
        tried = tuple(b.name for b in candidates[: candidates.index(base) + 1])
        sha = hashlib.sha256(data).hexdigest()
        return _pair_record(pair, projector, movers, base.name, sha, pair.registration.homography, tried)
    return ChangeRecord(error="; ".join(errors), tried=tuple(b.name for b in candidates)), []


def _structure_record(
    candidate: StructureCandidate, projector: GroundProjector, verdict: str | None = None
) -> StructureRecord | None:
    centre = projector.pixel_to_latlon(*candidate.centre_px)
    outline = projector.pixels_to_latlon(candidate.outline_px)
    if centre is None or np.isnan(outline).any():
        return None
    pixel_m2 = _pixel_area_m2(projector, *candidate.centre_px)
    return StructureRecord(
        verdict=verdict or candidate.verdict,
        lat=centre[0],
        lon=centre[1],
        outline=tuple((float(a), float(b)) for a, b in outline),
        bbox_px=candidate.bbox_px,
        area_m2=round(candidate.roof_px * pixel_m2, 2),
        region_area_m2=round(candidate.region_area_m2, 2),
        contrast_now=candidate.contrast_now,
        contrast_before=candidate.contrast_before,
        lightness_now=candidate.lightness_now,
        lightness_before=candidate.lightness_before,
        touches_edge=candidate.touches_edge,
    )


def process_image(plan: SurveyPlan, name: str, *, detector: Detector) -> tuple[ImageResult, bool]:
    """Detect in one image of the plan (and compare it with the baseline), and store the result.

    Idempotent: a stored result for the same inputs is returned as it is, with False
    (not processed now). An image whose pixels cannot be decoded is stored as
    `unreadable` with the reason. Errors of the detector propagate: the batch stops, and
    a re-run carries on from this image.
    """
    image = plan.image(name)
    done = read_result(plan, name)
    if done is not None:
        return done, False
    key = plan.image_key(image)
    started = time.perf_counter()
    try:
        data, pixels = read_image(image.path)
    except ImageUnreadableError as e:
        result = ImageResult(name=name, key=key, status="unreadable", reason=str(e))
        _write_json(state_path(plan.out_dir, name), result.model_dump(mode="json"))
        logger.warning("%s: %s", name, e)
        return result, True
    k = image.shot
    if (pixels.shape[1], pixels.shape[0]) != (k.width_px, k.height_px):
        reason = f"the pixels are {pixels.shape[1]}x{pixels.shape[0]} but the metadata says {k.width_px}x{k.height_px}"
        result = ImageResult(name=name, key=key, status="unreadable", reason=reason)
        _write_json(state_path(plan.out_dir, name), result.model_dump(mode="json"))
        return result, True
    read_s = time.perf_counter() - started
    projector = GroundProjector(k.shot())
    tiling = plan.config.tiling
    t0 = time.perf_counter()
    found = detect_tiled(
        detector,
        pixels,
        tile=tiling.tile,
        overlap=tiling.overlap,
        batch=tiling.batch,
        merge_iou=tiling.merge_iou,
        include_full_image=tiling.include_full_image,
    )
    detect_s = time.perf_counter() - t0
    detections, others = _detections(plan, detector.names, found, projector)
    ignore = set(plan.config.change.ignore_classes)
    names = detector.names
    movers = [
        (x1, y1, x2, y2)
        for (x1, y1, x2, y2), score, c in zip(found.xyxy.tolist(), found.score.tolist(), found.class_id.tolist(),
                                              strict=True)
        if 0 <= c < len(names) and names[c] in ignore and score >= plan.config.occupation.min_score
    ]  # fmt: skip
    change: ChangeRecord | None = None
    structures: list[StructureRecord] = []
    change_s = 0.0
    if plan.has_baseline:
        t0 = time.perf_counter()
        change, structures = _compare(plan, image, pixels, projector, movers)
        change_s = time.perf_counter() - t0
        if change.error:
            logger.warning("%s: no change analysis: %s", name, change.error)
    result = ImageResult(
        name=name,
        key=key,
        status="done",
        sha256=hashlib.sha256(data).hexdigest(),
        width=k.width_px,
        height=k.height_px,
        seconds={
            "read": round(read_s, 3),
            "detect": round(detect_s, 3),
            "change": round(change_s, 3),
            "total": round(time.perf_counter() - started, 3),
        },
        detections=tuple(detections),
        other_classes=others,
        change=change,
        structures=tuple(structures),
    )
    _write_json(state_path(plan.out_dir, name), result.model_dump(mode="json"))
    return result, True


def pending_images(plan: SurveyPlan) -> list[str]:
    """The plan's images without a stored result for its current inputs."""
    return [image.name for image in plan.images if read_result(plan, image.name) is None]


# --- merging: findings ----------------------------------------------------------------------------


class SkippedStructure(_Strict):
    """A new structure left out because a permit covers its place."""

    lat: float
    lon: float
    area_m2: float
    permit_no: str
    holder: str | None = None
    valid_until: str | None = None
    images: tuple[str, ...] = ()


class RejectedCandidate(_Strict):
    """A building-shaped change that was judged no new structure, with the reason, for an officer to look at."""

    lat: float
    lon: float
    area_m2: float
    reason: str
    views: int
    images: tuple[str, ...] = ()


class SurveyFinding(_Strict):
    """One finding of a survey: street occupation or construction, at one place on the ground."""

    id: str
    kind: Literal["occupation", "construction"]
    class_name: str
    lat: float
    lon: float
    score: float
    size_m: tuple[float, float] | None = None
    area_m2: float | None = None
    outline: tuple[tuple[float, float], ...] | None = None  # (lat, lon) of the roof's outline
    images: tuple[str, ...]
    views: int  # images (pairs) that found it
    views_seen: int  # images (pairs) whose footprint holds it
    gsd_m: float
    street: str | None = None
    permit_check: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    evidence_image: str  # the image the evidence is cut from: the best view
    evidence_index: int  # which of that image's detections (occupation) or structures (construction)
    package_id: str | None = None
    case_number: str | None = None
    filing_error: str | None = None


class ImageTiming(_Strict):
    name: str
    status: str
    seconds: dict[str, float]
    detections: int
    structures: int
    change: str | None = None


class SurveyReport(_Strict):
    """What a survey found, skipped and could not use; `report.json`."""

    format: Literal["nonsite.survey.report/1"] = "nonsite.survey.report/1"
    folder: str
    baseline: str | None
    out_dir: str
    model: ModelRecord
    config: SurveyConfig
    engine: str
    counts: dict[str, int]
    findings: tuple[SurveyFinding, ...]
    skipped_permitted: tuple[SkippedStructure, ...]
    rejected: tuple[RejectedCandidate, ...]
    off_street: int  # occupation-class objects whose ground point lies in no street polygon
    unusable: tuple[UnusableImage, ...]
    images: tuple[ImageTiming, ...]
    notes: tuple[str, ...] = ()

    @property
    def occupation(self) -> list[SurveyFinding]:
        return [f for f in self.findings if f.kind == "occupation"]

    @property
    def construction(self) -> list[SurveyFinding]:
        return [f for f in self.findings if f.kind == "construction"]


@dataclass(frozen=True, slots=True)
class _Observation:
    image: PlannedImage
    index: int  # the image's index in the plan
    record: DetectionRecord | StructureRecord
    en: np.ndarray
    position: int  # the record's index in its image's result


def _median_latlon(observations: Sequence[_Observation], origin: tuple[float, float]) -> tuple[float, float]:
    en = np.median(np.array([o.en for o in observations]), axis=0)
    return enu_to_latlon(*origin, float(en[0]), float(en[1]))


def _times(images: Sequence[PlannedImage]) -> tuple[datetime | None, datetime | None]:
    taken = [i.shot.taken_at for i in images if i.shot.taken_at is not None]
    return (min(taken), max(taken)) if taken else (None, None)


def _seen_by(plan: SurveyPlan, en: np.ndarray, images: Sequence[PlannedImage]) -> int:
    return sum(bool(points_in_ring(en[None, :], _footprint_en(plan, i))[0]) for i in images)


def _occupation_findings(
    plan: SurveyPlan, results: dict[str, ImageResult], streets: PlanarPolygons
) -> tuple[list[SurveyFinding], int]:
    occupation = plan.config.occupation
    observations: list[_Observation] = []
    for index, image in enumerate(plan.images):
        result = results.get(image.name)
        if result is None or result.status != "done":
            continue
        for position, d in enumerate(result.detections):
            longest = max(d.size_m)
            if not occupation.min_size_m <= longest <= occupation.max_size_m:
                continue
            en = latlon_to_enu_array(*plan.origin, [(d.lat, d.lon)])[0]
            observations.append(_Observation(image, index, d, en, position))
    if not observations:
        return [], 0
    inside = streets.containing(np.array([o.en for o in observations]))
    on_street = [(o, k) for o, k in zip(observations, inside, strict=True) if k is not None]
    off_street = [o for o, k in zip(observations, inside, strict=True) if k is None]
    findings = []
    if on_street:
        radius = [max(occupation.dedupe_min_m, occupation.dedupe_gsd * o.image.gsd_m) for o, _ in on_street]
        clusters = cluster_by_distance(
            np.array([o.en for o, _ in on_street]),
            [o.index for o, _ in on_street],
            [float(o.record.score) for o, _ in on_street],  # type: ignore[union-attr]
            radius,
        )
        done_images = [i for i in plan.images if (r := results.get(i.name)) is not None and r.status == "done"]
        for members in clusters:
            obs = [on_street[m][0] for m in members]
            street = streets.polygons[on_street[members[0]][1]]
            dets = [o.record for o in obs if isinstance(o.record, DetectionRecord)]
            lead = obs[0]  # the best-scoring view: clusters start from it
            votes: dict[str, float] = {}
            for d in dets:
                votes[d.class_name] = votes.get(d.class_name, 0.0) + d.score
            lat, lon = _median_latlon(obs, plan.origin)
            started, ended = _times([o.image for o in obs])
            street_label = str(street.properties.get("name") or street.properties.get("kind") or "street")
            kind = street.properties.get("kind")
            if kind and kind != street_label:
                street_label = f"{street_label} ({kind})"
            findings.append(
                SurveyFinding(
                    id="",
                    kind="occupation",
                    class_name=max(votes, key=lambda name: (votes[name], name)),
                    lat=lat,
                    lon=lon,
                    score=max(d.score for d in dets),
                    size_m=(
                        round(float(np.median([max(d.size_m) for d in dets])), 2),
                        round(float(np.median([min(d.size_m) for d in dets])), 2),
                    ),
                    images=tuple(o.image.name for o in sorted(obs, key=lambda o: o.index)),
                    views=len(obs),
                    views_seen=_seen_by(plan, obs[0].en, done_images),
                    gsd_m=round(float(np.median([o.image.gsd_m for o in obs])), 4),
                    street=street_label,
                    permit_check="street occupation needs no parcel permit check",
                    started_at=started,
                    ended_at=ended,
                    evidence_image=lead.image.name,
                    evidence_index=lead.position,
                )
            )
    # objects off the streets, counted once per object as well
    off_clusters = cluster_by_distance(
        np.array([o.en for o in off_street]).reshape(-1, 2),
        [o.index for o in off_street],
        [float(o.record.score) for o in off_street],  # type: ignore[union-attr]
        [max(occupation.dedupe_min_m, occupation.dedupe_gsd * o.image.gsd_m) for o in off_street],
    )
    return findings, len(off_clusters)


@dataclass(frozen=True, slots=True)
class _Permit:
    permit_no: str
    holder: str | None
    valid_until: str | None


def _permit(polygon: GeoPolygon) -> _Permit:
    p = polygon.properties
    number = p.get("permit_no") or p.get("permit") or p.get("id") or f"feature {polygon.feature}"
    until = p.get("valid_until")
    return _Permit(
        str(number), None if p.get("holder") is None else str(p["holder"]), None if until is None else str(until)
    )


def _expired(permit: _Permit, on: datetime | None) -> bool:
    if permit.valid_until is None or on is None:
        return False
    try:
        until = date.fromisoformat(permit.valid_until[:10])
    except ValueError:
        return False
    return on.date() > until


def _construction_findings(
    plan: SurveyPlan, results: dict[str, ImageResult], streets: PlanarPolygons, permits: PlanarPolygons
) -> tuple[list[SurveyFinding], list[SkippedStructure], list[RejectedCandidate]]:
    change = plan.config.change
    observations: list[_Observation] = []
    compared: list[PlannedImage] = []
    for index, image in enumerate(plan.images):
        result = results.get(image.name)
        if result is None or result.change is None or result.change.error is not None:
            continue
        compared.append(image)
        for position, s in enumerate(result.structures):
            en = latlon_to_enu_array(*plan.origin, [(s.lat, s.lon)])[0]
            observations.append(_Observation(image, index, s, en, position))
    findings: list[SurveyFinding] = []
    skipped: list[SkippedStructure] = []
    rejected: list[RejectedCandidate] = []
    if not observations:
        return findings, skipped, rejected
    records = [o.record for o in observations]
    structures = [r for r in records if isinstance(r, StructureRecord)]
    # better views lead: judged a structure, whole in view, larger
    rank = [(s.verdict == "structure") * 2.0 + (not s.touches_edge) + s.area_m2 / 1e6 for s in structures]
    radius = [max(change.merge_distance_m, 0.5 * math.sqrt(max(s.area_m2, 0.0))) for s in structures]
    clusters = cluster_by_distance(np.array([o.en for o in observations]), [o.index for o in observations], rank,
                                   radius)  # fmt: skip
    for members in clusters:
        obs = [observations[m] for m in members]
        judged = [structures[m] for m in members]
        yes = [(o, s) for o, s in zip(obs, judged, strict=True) if s.verdict == "structure"]
        seen = _seen_by(plan, obs[0].en, compared)
        whole = [(o, s) for o, s in yes if not s.touches_edge]
        if len(yes) < change.min_views or 2 * len(yes) <= len(judged) or not whole:
            verdicts = Counter(s.verdict for s in judged if s.verdict != "structure")
            if 2 * len(yes) <= len(judged) and verdicts:
                reason = verdicts.most_common(1)[0][0]
            elif len(yes) < change.min_views:
                reason = f"judged a structure in {len(yes)} view(s), fewer than min_views {change.min_views}"
            else:
                reason = "never seen whole: cut by the image's edge in every view"
            lat, lon = _median_latlon(obs, plan.origin)
            rejected.append(
                RejectedCandidate(
                    lat=lat,
                    lon=lon,
                    area_m2=round(float(np.median([s.area_m2 for s in judged])), 1),
                    reason=reason,
                    views=len(judged),
                    images=tuple(o.image.name for o in obs),
                )
            )
            continue
        lat, lon = _median_latlon([o for o, _ in whole], plan.origin)
        centre_en = latlon_to_enu_array(*plan.origin, [(lat, lon)])[0]
        if streets.containing(centre_en)[0] is not None:  # a stall or a car: occupation is the detector's
            rejected.append(
                RejectedCandidate(
                    lat=lat,
                    lon=lon,
                    area_m2=round(float(np.median([s.area_m2 for _, s in whole])), 1),
                    reason="on_street",
                    views=len(judged),
                    images=tuple(o.image.name for o in obs),
                )
            )
            continue
        lead, best = max(whole, key=lambda pair: (not pair[1].touches_edge, pair[1].area_m2))
        area = round(float(np.median([s.area_m2 for _, s in whole])), 2)
        images = tuple(o.image.name for o in sorted(obs, key=lambda o: o.index))
        started, ended = _times([o.image for o in obs])
        permit_index = permits.containing(centre_en)[0]
        if permit_index is not None:
            permit = _permit(permits.polygons[permit_index])
            if not _expired(permit, started):
                skipped.append(
                    SkippedStructure(
                        lat=lat,
                        lon=lon,
                        area_m2=area,
                        permit_no=permit.permit_no,
                        holder=permit.holder,
                        valid_until=permit.valid_until,
                        images=images,
                    )
                )
                continue
            check = f"in the parcel of permit {permit.permit_no}, which expired on {permit.valid_until}"
        elif len(permits):
            check = "in no permitted parcel"
        else:
            check = "not checked: no permits given"
        findings.append(
            SurveyFinding(
                id="",
                kind="construction",
                class_name="structure",
                lat=lat,
                lon=lon,
                score=round(len(yes) / len(judged), 3),
                area_m2=area,
                outline=best.outline,
                images=images,
                views=len(yes),
                views_seen=seen,
                gsd_m=round(float(np.median([o.image.gsd_m for o, _ in whole])), 4),
                permit_check=check,
                started_at=started,
                ended_at=ended,
                evidence_image=lead.image.name,
                evidence_index=lead.position,
            )
        )
    return findings, skipped, rejected


def _numbered(findings: list[SurveyFinding]) -> list[SurveyFinding]:
    """Findings in a stable order (kind, then north to south, west to east), with ids."""
    out = []
    for kind, prefix in (("occupation", "O"), ("construction", "C")):
        mine = sorted((f for f in findings if f.kind == kind), key=lambda f: (-round(f.lat, 6), round(f.lon, 6)))
        out += [f.model_copy(update={"id": f"{prefix}{k + 1:03d}"}) for k, f in enumerate(mine)]
    return out


# --- evidence and filing ----------------------------------------------------------------------------


class _Filed(_Strict):
    finding_id: str
    kind: str
    lat: float
    lon: float
    radius_m: float
    package_id: str
    case_number: str
    created: bool


def _filed_path(out_dir: str | os.PathLike[str]) -> Path:
    return Path(out_dir) / "filed.json"


def _read_filed(out_dir: str | os.PathLike[str]) -> list[_Filed]:
    path = _filed_path(out_dir)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [_Filed.model_validate(entry) for entry in data["filed"]]
    except (OSError, ValueError, KeyError, ValidationError) as e:
        raise SurveyError(
            f"{path} is damaged ({e}); restore it before filing again, or cases may be filed twice"
        ) from e


def _radius_m(finding: SurveyFinding) -> float:
    if finding.size_m is not None:
        return round(max(0.5, math.hypot(*finding.size_m) / 2), 2)
    return round(max(1.0, math.sqrt((finding.area_m2 or 0.0) / math.pi)), 2)


def _crop_window(cx: float, cy: float, side: int, width: int, height: int) -> tuple[int, int, int, int]:
    side_x, side_y = min(side, width), min(side, height)
    x0 = round(min(max(cx - side_x / 2, 0.0), float(width - side_x)))
    y0 = round(min(max(cy - side_y / 2, 0.0), float(height - side_y)))
    return x0, y0, x0 + side_x, y0 + side_y


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        raise SurveyError("PNG encoding of an evidence crop failed")
    return bytes(data.tobytes())


def _aware(value: datetime | None, zone: tzinfo) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _source_image(plan: SurveyPlan, results: dict[str, ImageResult], name: str) -> dict[str, Any]:
    image = plan.image(name)
    result = results[name]
    return {"name": name, "sha256": result.sha256, "kind": image.kind, "gsd_m": round(image.gsd_m, 4),
            "taken_at": image.shot.taken_at.isoformat() if image.shot.taken_at else None}  # fmt: skip


def _source_pixels(plan: SurveyPlan, results: dict[str, ImageResult], name: str) -> np.ndarray:
    """The pixels of an image as processed: a file changed since is refused, for the manifest names its hash."""
    data, pixels = read_image(plan.image(name).path)
    if hashlib.sha256(data).hexdigest() != results[name].sha256:
        raise ImageUnreadableError(f"{name} changed since it was processed; run the survey again")
    return pixels


def _occupation_evidence(
    plan: SurveyPlan, results: dict[str, ImageResult], finding: SurveyFinding
) -> tuple[list[PackageFile], dict[str, Any]]:
    from evidence.package import PackageFile

    name = finding.evidence_image
    d = results[name].detections[finding.evidence_index]
    pixels = _source_pixels(plan, results, name)
    x1, y1, x2, y2 = d.xyxy
    side = int(min(plan.config.crop_max_px, max(plan.config.crop_min_px, 4 * max(x2 - x1, y2 - y1))))
    wx0, wy0, wx1, wy1 = _crop_window((x1 + x2) / 2, (y1 + y2) / 2, side, pixels.shape[1], pixels.shape[0])
    crop = pixels[wy0:wy1, wx0:wx1]
    box = [round(x1 - wx0, 1), round(y1 - wy0, 1), round(x2 - wx0, 1), round(y2 - wy0, 1)]
    files = [PackageFile("keyframe-000001.png", _png(crop), "image/png", "keyframe")]
    details = {
        "keyframes": [1],
        "start_frame": 1,
        "confirmed_frame": 1,
        "boxes": [{"frame": 1, "xyxy": box, "score": d.score}],
        "crop": {"image": name, "window_px": [wx0, wy0, wx1, wy1], "box_px": list(d.xyxy)},
    }
    return files, details


def _construction_evidence(
    plan: SurveyPlan, results: dict[str, ImageResult], finding: SurveyFinding
) -> tuple[list[PackageFile], dict[str, Any]]:
    from evidence.package import PackageFile

    name = finding.evidence_image
    s = results[name].structures[finding.evidence_index]
    result = results[name]
    change = result.change
    if change is None or change.homography is None or change.baseline is None:  # pragma: no cover
        raise SurveyError(f"finding {finding.id}: image {name} has no registration to the baseline")
    pixels = _source_pixels(plan, results, name)
    ortho = plan.baseline_ortho
    if ortho is not None:
        base_pixels = _LoadedOrtho.get(ortho)[1]
        taken_at = None  # an orthomosaic's flight time is not in the file
    else:
        base = next(b for b in plan.baseline_images if b.name == change.baseline)
        base_data, base_pixels = read_image(base.path)
        if hashlib.sha256(base_data).hexdigest() != change.baseline_sha256:
            raise ImageUnreadableError(f"baseline image {base.name} changed since {name} was compared with it")
        taken_at = base.shot.taken_at
    x1, y1, x2, y2 = s.bbox_px
    side = int(min(plan.config.crop_max_px, max(plan.config.crop_min_px, 2 * max(x2 - x1, y2 - y1))))
    wx0, wy0, wx1, wy1 = _crop_window((x1 + x2) / 2, (y1 + y2) / 2, side, pixels.shape[1], pixels.shape[0])
    after = pixels[wy0:wy1, wx0:wx1]
    # the baseline resampled onto exactly this window of the new image, for a side-by-side look
    shift = np.array([[1.0, 0.0, wx0], [0.0, 1.0, wy0], [0.0, 0.0, 1.0]])
    window = Registration(np.asarray(change.homography, np.float64) @ shift, change.inliers, change.inliers, 0.0)
    before, _ = baseline_on_new_grid(base_pixels, (wy1 - wy0, wx1 - wx0, 3), window)
    files = [
        PackageFile("after.png", _png(after), "image/png", "after"),
        PackageFile("before.png", _png(before), "image/png", "before"),
    ]
    details = {
        "crop": {"image": name, "window_px": [wx0, wy0, wx1, wy1], "roof_bbox_px": list(s.bbox_px)},
        "baseline": {"name": change.baseline, "sha256": change.baseline_sha256,
                     "taken_at": taken_at.isoformat() if taken_at else None,
                     "homography_new_to_baseline": [list(r) for r in change.homography]},
        **({"orthomosaic": {"crs": ortho.crs, "level": ortho.level, "gsd_m": ortho.gsd_m,
                            "file_time": ortho.file_time.isoformat() if ortho.file_time else None}}
           if ortho is not None else {}),
        "judgement": {"contrast_now": s.contrast_now, "contrast_before": s.contrast_before,
                      "lightness_now": s.lightness_now, "lightness_before": s.lightness_before,
                      "views": finding.views, "views_seen": finding.views_seen},
    }  # fmt: skip
    return files, details


def _evidence(
    plan: SurveyPlan, results: dict[str, ImageResult], finding: SurveyFinding, zone: tzinfo
) -> tuple[dict[str, Any], list[PackageFile]]:
    """The sealed finding (manifest fields) and files of one survey finding; the same inputs give the same bytes."""
    if finding.kind == "occupation":
        files, details = _occupation_evidence(plan, results, finding)
    else:
        files, details = _construction_evidence(plan, results, finding)
    started, ended = _aware(finding.started_at, zone), _aware(finding.ended_at, zone)
    clock = "drone clock (EXIF DateTimeOriginal or SRT)"
    if finding.started_at is not None and finding.started_at.tzinfo is None:
        clock += f", zone assumed {zone}"
    if started is None or ended is None:
        mtimes = [plan.image(n).mtime_ns for n in finding.images]
        started = datetime.fromtimestamp(min(mtimes) / 1e9, tz=UTC)
        ended = datetime.fromtimestamp(max(mtimes) / 1e9, tz=UTC)
        clock = "file modification time (the images carry no capture time)"
    first = plan.image(finding.images[0]).shot
    violation: dict[str, Any] = {
        "kind": finding.kind,
        "zone": None,
        "started_at": started.isoformat(),
        "ended_at": ended.isoformat(),
        "score": finding.score,
        "attributes": {"class_name": finding.class_name},
        "survey": {
            "finding": finding.id,
            "views": finding.views,
            "views_seen": finding.views_seen,
            "size_m": list(finding.size_m) if finding.size_m else None,
            "area_m2": finding.area_m2,
            "street": finding.street,
            "permit_check": finding.permit_check,
        },
        **details,
    }
    place: dict[str, Any] = {
        "lat": round(finding.lat, 8),
        "lon": round(finding.lon, 8),
        "radius_m": _radius_m(finding),
        "gsd_m": finding.gsd_m,
        "datum": "WGS84",
    }
    if finding.outline:
        place["outline_lonlat"] = [[round(lon, 8), round(lat, 8)] for lat, lon in finding.outline]
    manifest = {
        "device": {"id": f"drone:{first.make or 'drone'}:{first.model or 'unknown'}", "kind": "drone",
                   "name": f"{first.make} {first.model}".strip() or "drone"},
        "place": place,
        "capture": {"started_at": started.isoformat(), "ended_at": ended.isoformat(), "clock_source": clock,
                    "images": [_source_image(plan, results, n) for n in finding.images]},
        "violation": violation,
        "model": {"sha256": plan.model.sha256, "classes": list(plan.model.names),
                  "change": "pipelines.survey_structures over vision.change (classical, unsupervised)"},
        "rule": {"source": "drone survey",
                 "config": plan.config.model_dump(mode="json", include={"occupation", "change"})},
        "engine": {"name": "nonsite", "version": __version__},
    }  # fmt: skip
    return manifest, files


def _file_findings(
    plan: SurveyPlan,
    results: dict[str, ImageResult],
    findings: list[SurveyFinding],
    casebook: Casebook,
    vault: Vault,
) -> list[SurveyFinding]:
    """Seal and file each finding not filed before (by kind and place); returns them with case numbers."""
    from cases.errors import CaseError
    from evidence.errors import EvidenceError

    filed = _read_filed(plan.out_dir)
    out = []
    for finding in findings:
        reach = max(plan.config.occupation.dedupe_min_m, _radius_m(finding))
        en = latlon_to_enu_array(*plan.origin, [(finding.lat, finding.lon)])[0]
        earlier = next(
            (
                f
                for f in filed
                if f.kind == finding.kind
                and math.dist(en, latlon_to_enu_array(*plan.origin, [(f.lat, f.lon)])[0]) <= max(reach, f.radius_m)
            ),
            None,
        )
        if earlier is not None:
            out.append(
                finding.model_copy(update={"package_id": earlier.package_id, "case_number": earlier.case_number})
            )
            continue
        try:
            manifest, files = _evidence(plan, results, finding, casebook.policy.tz)
            logged = vault.seal(manifest, files)
            package_id = logged.package.package_id
            case = casebook.file_package(package_id)
        except (CaseError, EvidenceError, ImageUnreadableError, OSError) as e:
            logger.error("finding %s could not be filed: %s", finding.id, e)
            out.append(finding.model_copy(update={"filing_error": str(e)}))
            continue
        entry = _Filed(
            finding_id=finding.id,
            kind=finding.kind,
            lat=finding.lat,
            lon=finding.lon,
            radius_m=_radius_m(finding),
            package_id=package_id,
            case_number=case.case_number,
            created=case.created,
        )
        filed.append(entry)
        _write_json(_filed_path(plan.out_dir), {"format": FILED_FORMAT, "filed": [f.model_dump() for f in filed]})
        logger.info("filed %s %s as case %s", finding.kind, finding.id, case.case_number)
        out.append(finding.model_copy(update={"package_id": package_id, "case_number": case.case_number}))
    return out


# --- outputs ------------------------------------------------------------------------------------------


def _signed_area(ring: Sequence[Sequence[float]]) -> float:
    return 0.5 * sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, [*ring[1:], ring[0]], strict=True))


def findings_geojson(findings: Sequence[SurveyFinding], skipped: Sequence[SkippedStructure] = ()) -> dict[str, Any]:
    """Findings as a GeoJSON FeatureCollection ([lon, lat], WGS84): points for occupation, roof outlines
    for construction, each with its kind, class, size or area, score, images, permit check and case;
    new structures a permit covers are points of kind `permitted` with the permit's number and holder."""
    features = []
    for k in skipped:
        permitted: dict[str, Any] = {
            "kind": "permitted", "area_m2": k.area_m2, "permit_no": k.permit_no, "holder": k.holder,
            "valid_until": k.valid_until, "lat": round(k.lat, 8), "lon": round(k.lon, 8), "images": ", ".join(k.images),
        }  # fmt: skip
        point = {"type": "Point", "coordinates": [round(k.lon, 8), round(k.lat, 8)]}
        features.append({"type": "Feature", "geometry": point, "properties": permitted})
    for f in findings:
        if f.outline:
            ring = [[round(lon, 8), round(lat, 8)] for lat, lon in f.outline]
            if _signed_area(ring) < 0:  # RFC 7946: outer rings run counterclockwise
                ring.reverse()
            ring.append(ring[0])
            geometry: dict[str, Any] = {"type": "Polygon", "coordinates": [ring]}
        else:
            geometry = {"type": "Point", "coordinates": [round(f.lon, 8), round(f.lat, 8)]}
        properties: dict[str, Any] = {
            "id": f.id,
            "kind": f.kind,
            "class": f.class_name,
            "score": f.score,
            "lat": round(f.lat, 8),
            "lon": round(f.lon, 8),
            "images": ", ".join(f.images),
            "views": f.views,
            "permit_check": f.permit_check,
            "case_number": f.case_number,
        }
        if f.size_m is not None:
            properties["size_m"] = f"{f.size_m[0]:.1f} x {f.size_m[1]:.1f}"
            properties["length_m"], properties["width_m"] = f.size_m
        if f.area_m2 is not None:
            properties["area_m2"] = f.area_m2
        if f.street:
            properties["street"] = f.street
        if f.filing_error:
            properties["filing_error"] = f.filing_error
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    return {"type": "FeatureCollection", "features": features}


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def report_markdown(report: SurveyReport) -> str:
    """The report for people: counts, findings, what permits skipped, what could not be used, timings."""
    c = report.counts
    lines = [
        f"# Drone survey: {Path(report.folder).name}",
        "",
        f"- survey folder: `{report.folder}`",
        f"- baseline: `{report.baseline}`" if report.baseline else "- baseline: none (no change detection)",
        f"- model: `{report.model.path or 'given in-process'}` (sha256 {report.model.sha256[:12]})",
        f"- engine: {report.engine}",
        "",
        "## Counts",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k.replace('_', ' ')} | {v} |" for k, v in c.items()),
        "",
    ]
    if report.notes:
        lines += ["## Notes", "", *(f"- {n}" for n in report.notes), ""]
    lines += ["## Findings", ""]
    if report.findings:
        lines += [
            "| id | kind | class | lat | lon | size / area | score | views | images | permit check | case |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for f in report.findings:
            size = f"{f.size_m[0]:.1f} × {f.size_m[1]:.1f} m" if f.size_m else f"{f.area_m2:.1f} m²"
            case = f.case_number or (f"not filed: {f.filing_error}" if f.filing_error else "")
            lines.append(
                f"| {f.id} | {f.kind} | {f.class_name} | {f.lat:.7f} | {f.lon:.7f} | {size} | {f.score:.2f} | "
                f"{f.views}/{f.views_seen} | {_md_cell(', '.join(f.images))} | {_md_cell(f.permit_check)} | "
                f"{_md_cell(case)} |"
            )
    else:
        lines.append("None.")
    lines += ["", "## Skipped: covered by a permit", ""]
    if report.skipped_permitted:
        lines += ["| lat | lon | area | permit | holder | valid until | images |", "|---|---|---|---|---|---|---|"]
        for s in report.skipped_permitted:
            lines.append(
                f"| {s.lat:.7f} | {s.lon:.7f} | {s.area_m2:.1f} m² | {_md_cell(s.permit_no)} | "
                f"{_md_cell(s.holder or '')} | {s.valid_until or ''} | {_md_cell(', '.join(s.images))} |"
            )
    else:
        lines.append("None.")
    lines += ["", "## Building-shaped changes judged no new structure", ""]
    if report.rejected:
        lines += ["| lat | lon | area | reason | views |", "|---|---|---|---|---|"]
        lines += [
            f"| {r.lat:.7f} | {r.lon:.7f} | {r.area_m2:.1f} m² | {r.reason} | {r.views} |" for r in report.rejected
        ]
    else:
        lines.append("None.")
    lines += ["", "## Images that could not be used", ""]
    if report.unusable:
        lines += ["| image | reason |", "|---|---|"]
        lines += [f"| {_md_cell(u.name)} | {_md_cell(u.reason)} |" for u in report.unusable]
    else:
        lines.append("None.")
    lines += [
        "",
        "## Per image",
        "",
        "| image | status | read s | detect s | change s | total s | objects | structures | change |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in report.images:
        took = t.seconds
        lines.append(
            f"| {_md_cell(t.name)} | {t.status} | {took.get('read', 0):.2f} | {took.get('detect', 0):.2f} | "
            f"{took.get('change', 0):.2f} | {took.get('total', 0):.2f} | {t.detections} | {t.structures} | "
            f"{_md_cell(t.change or '')} |"
        )
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _finish_lock(out_dir: str | os.PathLike[str]) -> Iterator[None]:
    """One finisher per survey at a time (two workers may both see the batch complete)."""
    path = Path(out_dir) / ".finish.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def finish_survey(plan: SurveyPlan, *, casebook: Casebook | None = None, vault: Vault | None = None) -> SurveyReport:
    """Merge every image's result into findings, write findings.geojson, report.json and report.md,
    and, given a casebook, seal and file the findings not filed before.

    Raises `SurveyError` naming the images that have no result yet.
    """
    if casebook is not None and vault is not None and Path(vault.root).resolve() != Path(casebook.vault.root).resolve():
        raise SurveyError(f"the vault {vault.root} is not the casebook's ({casebook.vault.root}): filing would fail")
    with _finish_lock(plan.out_dir):
        results: dict[str, ImageResult] = {}
        missing = []
        for image in plan.images:
            result = read_result(plan, image.name)
            if result is None:
                missing.append(image.name)
            else:
                results[image.name] = result
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise SurveyError(f"{len(missing)} image(s) of {plan.out_dir} have no result yet: {shown}")
        origin = plan.origin
        kinds = plan.config.occupation.street_kinds
        street_polygons = [GeoPolygon.from_json(p) for p in plan.streets]
        if kinds is not None:
            street_polygons = [p for p in street_polygons if p.properties.get("kind") in kinds]
        streets = PlanarPolygons(street_polygons, origin)
        permits = PlanarPolygons([GeoPolygon.from_json(p) for p in plan.permits], origin)
        occupation, off_street = _occupation_findings(plan, results, streets)
        construction: list[SurveyFinding] = []
        skipped: list[SkippedStructure] = []
        rejected: list[RejectedCandidate] = []
        if plan.has_baseline:
            construction, skipped, rejected = _construction_findings(plan, results, streets, permits)
        findings = _numbered([*occupation, *construction])
        notes = []
        if not len(streets):
            notes.append("no street polygons were given: no detection counts as street occupation")
        ortho = plan.baseline_ortho
        gsd = _survey_gsd_m(plan.images)
        if ortho is not None and gsd and ortho.gsd_m > 2 * gsd:
            notes.append(
                f"the orthomosaic's pixels ({ortho.gsd_m:.2f} m) are over twice the survey's ({gsd:.2f} m): "
                "structures smaller than a few of its pixels cannot be told from what changed around them"
            )
        wanted = set(plan.config.occupation.classes)
        if not wanted & set(plan.model.names):
            notes.append(
                f"the model has none of the occupation classes {', '.join(sorted(wanted))}: street occupation "
                "cannot be found with it"
            )
        if casebook is not None:
            findings = _file_findings(plan, results, findings, casebook, vault or casebook.vault)
        unreadable = [
            UnusableImage(name=r.name, path=plan.image(r.name).path, reason=r.reason or "unreadable")
            for r in results.values()
            if r.status != "done"
        ]
        unusable = (*plan.unusable, *unreadable, *(u.model_copy(update={"name": f"baseline/{u.name}"})
                                                   for u in plan.baseline_unusable))  # fmt: skip
        no_change = [r for r in results.values() if r.change is not None and r.change.error is not None]
        timings = tuple(
            ImageTiming(
                name=r.name,
                status=r.status,
                seconds=r.seconds,
                detections=len(r.detections),
                structures=sum(s.verdict == "structure" for s in r.structures),
                change=None if r.change is None else (r.change.error or f"against {r.change.baseline}"),
            )
            for r in (results[i.name] for i in plan.images)
        )
        counts = {
            "images": len(plan.images) + len(plan.unusable),
            "images_processed": sum(r.status == "done" for r in results.values()),
            "images_unusable": len(plan.unusable) + len(unreadable),
            "baseline_images": len(plan.baseline_images),
            "baseline_orthomosaics": int(plan.baseline_ortho is not None),
            "images_without_change_analysis": len(no_change),
            "occupation_findings": sum(f.kind == "occupation" for f in findings),
            "construction_findings": sum(f.kind == "construction" for f in findings),
            "skipped_permitted": len(skipped),
            "rejected_candidates": len(rejected),
            "occupation_objects_off_street": off_street,
            "cases_filed": sum(f.case_number is not None for f in findings),
            "filing_errors": sum(f.filing_error is not None for f in findings),
        }
        report = SurveyReport(
            folder=plan.folder,
            baseline=plan.baseline,
            out_dir=plan.out_dir,
            model=plan.model,
            config=plan.config,
            engine=f"nonsite {__version__}",
            counts=counts,
            findings=tuple(findings),
            skipped_permitted=tuple(skipped),
            rejected=tuple(rejected),
            off_street=off_street,
            unusable=tuple(unusable),
            images=timings,
            notes=tuple(notes),
        )
        out = Path(plan.out_dir)
        _write_json(out / "findings.geojson", findings_geojson(findings, skipped))
        _write_json(out / "report.json", report.model_dump(mode="json"))
        fd, tmp = tempfile.mkstemp(prefix=".report.md.", dir=out)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(report_markdown(report))
        os.replace(tmp, out / "report.md")
    _LoadedOrtho.release()  # the survey is done: its orthomosaic need not stay in this process's memory
    return report


# --- the whole run -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SurveyProgress:
    """One step of a run, for a progress bar: `done` of `total` images, the last one's name and outcome."""

    done: int
    total: int
    image: str
    status: Literal["processed", "skipped", "unreadable"]
    seconds: float


def model_record(detector: Detector) -> ModelRecord:
    """The plan's record of a loaded detector."""
    info = detector.info
    path = Path(info.path)
    return ModelRecord(
        path=str(path.resolve()) if path.is_file() else None, sha256=info.sha256, names=tuple(info.names)
    )


def run_survey(
    folder: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str],
    detector: Detector,
    baseline: str | os.PathLike[str] | None = None,
    permits: str | os.PathLike[str] | None = None,
    streets: str | os.PathLike[str] | None = None,
    casebook: Casebook | None = None,
    vault: Vault | None = None,
    config: SurveyConfig | None = None,
    progress: Callable[[SurveyProgress], None] | None = None,
) -> SurveyReport:
    """Run a drone survey in this process: plan, process every image not done yet, merge and file.

    Resumable: each image's result is stored as soon as it is done, so a re-run after a
    crash carries on from the image it stopped at, and a complete run again only merges.
    Filing (given `casebook`; `vault` defaults to the casebook's) is idempotent.
    """
    plan = plan_survey(
        folder,
        out_dir=out_dir,
        model=model_record(detector),
        baseline=baseline,
        permits=permits,
        streets=streets,
        config=config,
        file_cases=casebook is not None,
    )
    total = len(plan.images)
    for done, image in enumerate(plan.images, start=1):
        started = time.perf_counter()
        result, processed = process_image(plan, image.name, detector=detector)
        if progress is not None:
            status: Literal["processed", "skipped", "unreadable"] = (
                "unreadable" if result.status != "done" else "processed" if processed else "skipped"
            )
            progress(SurveyProgress(done, total, image.name, status, time.perf_counter() - started))
    return finish_survey(plan, casebook=casebook, vault=vault)
