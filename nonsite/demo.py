"""`nonsite demo`: the main job on the embedded default, on footage the project renders itself.

Renders three camera scenes (a restaurant street with an exhaust plume, a sidewalk where a
stall appears, a site where scaffolding goes up), runs the shipped starter model over each
like a camera feed, and writes annotated videos and `detections.jsonl`; then runs each
scene through the camera engine (motion gate, tracker, zone rules), writes the
violations it found to `violations.jsonl`, seals each as evidence, files it as a case in
`cases.db` (awaiting an officer's review) and exports a bundle that verifies offline. Because the scenes
are synthetic, their exact ground truth is known, and the summary says how many of the
truth boxes the detector found (synthetic figures, never to be read as real-world ones).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cases.casebook import Casebook
from cases.db import Database
from datasets.synthetic import SceneSpec, SceneTruth, write_video
from evidence.bundle import export_bundle, verify_bundle
from evidence.vault import Vault
from nonsite.analyze import analyze_source, synthetic_camera
from nonsite.detect import DetectReport, run_detect
from pipelines.sources import FileSource
from vision.detectors import Detector
from vision.geometry import box_iou_matrix

logger = logging.getLogger(__name__)

#: the demo cameras: (scene preset, seed)
DEMO_SCENES = (("restaurant_street", 3), ("sidewalk_stall", 3), ("construction_site", 3))
MATCH_IOU = 0.5
MIN_VISIBLE = 0.5


@dataclass(frozen=True)
class SceneResult:
    name: str
    report: DetectReport
    truth_boxes: int
    found: int
    extra: int
    violations: list[dict[str, Any]]
    bundle: Path | None
    bundle_verified: bool
    cases: list[str]


def match_against_truth(jsonl: Path, truth: SceneTruth) -> tuple[int, int, int]:
    """(truth boxes, truth boxes found, detections matching no truth box) over a scene.

    A truth box counts when at least half of it is visible; it is found by a detection of
    the same class with IoU >= 0.5. A detection of a box too hidden to count is neither
    found nor false.
    """
    records = {r["frame"]: r["detections"] for r in map(json.loads, jsonl.read_text(encoding="utf-8").splitlines())}
    total = found = extra = 0
    for frame in truth.frames:
        detections = records.get(frame.index, [])
        visible = np.array([o.visible_fraction >= MIN_VISIBLE for o in frame.objects], bool)
        total += int(visible.sum())
        if not detections or not frame.objects:
            extra += len(detections)
            continue
        iou = box_iou_matrix(
            np.array([o.xyxy for o in frame.objects], np.float32), np.array([d["xyxy"] for d in detections], np.float32)
        )
        same_class = np.array([[d["class_name"] == o.class_name for d in detections] for o in frame.objects])
        hit = same_class & (iou >= MATCH_IOU)
        used = np.zeros(len(detections), bool)
        for i in np.flatnonzero(visible):
            candidates = np.flatnonzero(hit[i] & ~used)
            if len(candidates):
                used[candidates[np.argmax(iou[i, candidates])]] = True
                found += 1
        extra += int((~hit.any(axis=0)).sum())
    return total, found, extra


def run_demo(detector: Detector, out_dir: Path, *, progress: bool) -> list[SceneResult]:
    """Render the demo footage under `out_dir/footage`, detect, analyse and seal each scene.

    Evidence goes to `out_dir/evidence` (keys in `out_dir/keys`); each scene's first package
    is exported as `evidence-bundle.zip` and verified as a stranger would verify it.
    """
    footage = out_dir / "footage"
    footage.mkdir(parents=True, exist_ok=True)
    vault = Vault(out_dir / "evidence", out_dir / "keys")
    db = Database(f"sqlite:///{out_dir / 'cases.db'}")
    try:
        book = Casebook(db, vault)
        return [_run_scene(name, seed, detector, out_dir, footage, book, progress) for name, seed in DEMO_SCENES]
    finally:
        vault.close()
        db.close()


def _run_scene(
    name: str, seed: int, detector: Detector, out_dir: Path, footage: Path, book: Casebook, progress: bool
) -> SceneResult:
    spec: SceneSpec = getattr(SceneSpec, name)(seed=seed)
    video = footage / f"{name}.mp4"
    logger.info("rendering %s", video)
    truth = write_video(spec, video)
    report = run_detect(FileSource(video, source_id=f"demo/{name}"), detector, out_dir / name, progress=progress)
    total, found, extra = match_against_truth(out_dir / name / "detections.jsonl", truth)
    camera = synthetic_camera(f"demo-{name}", truth, str(video))
    vault = book.vault
    analysis = analyze_source(FileSource(video, source_id=camera.id), camera, detector, out_dir / name, vault=vault)
    book.register_camera(camera.id, name=camera.name, zones=[(z.name, z.rule) for z in camera.zones])
    cases = sorted({book.file_package(package).case_number for package in analysis.packages})
    lines = analysis.violations_path.read_text(encoding="utf-8").splitlines()
    violations = [r for r in map(json.loads, lines) if r["closed"]]
    bundle, verified = None, False
    if analysis.packages:
        bundle = export_bundle(vault, analysis.packages[0], out_dir / name / "evidence-bundle.zip")
        verified = all(check.ok for check in verify_bundle(bundle))
    return SceneResult(name, report, total, found, extra, violations, bundle, verified, cases)
