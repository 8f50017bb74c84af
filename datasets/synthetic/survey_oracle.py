"""A detector that finds exactly what a synthetic survey's truth put there (an oracle).

It measures the survey pipeline (tiling, merging, registration, change detection, permits)
apart from any model, in the tests and in `pipelines.evaluate_survey`: it knows, for every tile the
pipeline will cut from every image, which truth objects it shows, and reports their
boxes clipped to the tile, as a detector sees an object cut by the tile's edge.
It recognises a tile by its exact pixels (the pipeline decodes the same files), so it
also proves that the pipeline hands it the tiles of the images it claims to process.

Colour keys, tried first, do not work at 600×400: a stall's table colour hides under
its goods, and sidewalks, roofs and cars share the umbrellas' colours (about fifty false
blobs per image), so the tests would measure the colour keying rather than the pipeline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from datasets.synthetic.survey import SurveyTruth
from vision.detectors.base import Detector, ModelInfo
from vision.geo import DroneShot, GroundProjector, enu_to_latlon_array
from vision.tiling import tile_grid
from vision.types import Detections

NAMES = ("smoke", "stall", "umbrella", "goods", "person", "vehicle", "scaffolding", "machinery")
SHA = "5" * 64

# (class name, ring of (lat, lon)) of one object on the ground
GroundObject = tuple[str, list[tuple[float, float]]]


def _square(lat: float, lon: float, half_m: float) -> list[tuple[float, float]]:
    """A square `2 * half_m` metres a side around (lat, lon), as (lat, lon) corners."""
    corners = [[-half_m, -half_m], [half_m, -half_m], [half_m, half_m], [-half_m, half_m]]
    return [(float(a), float(b)) for a, b in enu_to_latlon_array(lat, lon, corners)]


def truth_objects(truth: SurveyTruth) -> list[GroundObject]:
    """The new flight's stalls and umbrellas (their own class), its parked cars (vehicle), and goods
    on every new structure's roof (an occupation class off the streets)."""
    objects: list[GroundObject] = [(s.kind, [(lat, lon) for lon, lat in s.polygon_lonlat]) for s in truth.stalls]
    objects += [("vehicle", _square(lat, lon, 2.3)) for lat, lon in truth.survey.cars_latlon]
    objects += [("goods", _square(s.lat, s.lon, 0.6)) for s in truth.structures]
    return objects


def _tile_key(tile: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(tile).tobytes()).hexdigest()


class TruthDetector(Detector):
    """Reports the truth objects each prepared tile shows; raises on a tile it was not prepared for."""

    def __init__(
        self,
        objects: Iterable[GroundObject],
        views: Iterable[tuple[Path, DroneShot]],
        *,
        tile: int,
        overlap: float = 0.2,
        min_visible: float = 0.4,
        path: Path = Path("truth.onnx"),
    ) -> None:
        self.info = ModelInfo(path, SHA, NAMES, (640, 640), "test", True, (), {})
        self.calls = 0
        self.fail_after: int | None = None  # raise on the call after this many
        self._table: dict[str, list[tuple[int, float, float, float, float]]] = {}
        objects = list(objects)
        for image_path, shot in views:
            image = cv2.imdecode(np.frombuffer(Path(image_path).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"{image_path} is not an image the oracle can read")
            projector = GroundProjector(shot)
            boxes = []
            for name, ring in objects:
                px = projector.latlons_to_pixels(ring)
                (x1, y1), (x2, y2) = px.min(axis=0), px.max(axis=0)
                boxes.append((NAMES.index(name), x1, y1, x2, y2))
            h, w = image.shape[:2]
            for x0, y0, x1, y1 in tile_grid(h, w, tile, overlap):
                shown = []
                for cls, bx1, by1, bx2, by2 in boxes:
                    cx1, cy1, cx2, cy2 = max(bx1, x0), max(by1, y0), min(bx2, x1), min(by2, y1)
                    if cx2 <= cx1 or cy2 <= cy1:
                        continue
                    if (cx2 - cx1) * (cy2 - cy1) < min_visible * (bx2 - bx1) * (by2 - by1):
                        continue
                    shown.append((cls, cx1 - x0, cy1 - y0, cx2 - x0, cy2 - y0))
                self._table[_tile_key(image[y0:y1, x0:x1])] = shown

    @classmethod
    def for_survey(cls, truth: SurveyTruth, *, tile: int, overlap: float = 0.2) -> TruthDetector:
        return cls(truth_objects(truth), zip(truth.survey.images, truth.survey.shots, strict=True), tile=tile,
                   overlap=overlap)  # fmt: skip

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError(f"the detector failed on call {self.calls} (as asked by fail_after)")
        out = []
        for tile in images:
            key = _tile_key(tile)
            if key not in self._table:
                raise ValueError(f"a {tile.shape} tile the oracle detector was not prepared for")
            shown = self._table[key]
            out.append(
                Detections(
                    xyxy=np.array([s[1:] for s in shown], np.float32).reshape(-1, 4),
                    score=np.full(len(shown), 0.9, np.float32),
                    class_id=np.array([s[0] for s in shown], np.int32),
                )
            )
        return out
