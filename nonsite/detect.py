"""`nonsite detect`: run a detector over an image, a folder or a video and write the results.

Writes annotated images (or an annotated video) and `detections.jsonl`, one line per
frame: source id, frame index, capture time, image size and the detections in source
pixels with scores and class names.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from pipelines.sources import FileSource
from vision.annotate import annotate
from vision.detectors import Detector
from vision.types import Detections, Frame

logger = logging.getLogger(__name__)


@dataclass
class DetectReport:
    """What a detect run did, for the command line's summary."""

    frames: int = 0
    skipped: int = 0
    seconds: float = 0.0
    per_class: Counter[str] = field(default_factory=Counter)
    outputs: list[Path] = field(default_factory=list)


def _batches(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def frame_record(frame: Frame, detections: Detections, names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "source": frame.source_id,
        "frame": frame.index,
        "captured_at": frame.captured_at.isoformat(),
        "clock_source": frame.clock_source.value,
        "width": frame.width,
        "height": frame.height,
        "detections": detections.to_records(names),
    }


def run_detect(
    source: FileSource,
    detector: Detector,
    out_dir: Path,
    *,
    batch: int = 1,
    annotate_output: bool = True,
    progress: bool = True,
) -> DetectReport:
    """Detect in every frame of `source`, writing `detections.jsonl` and annotated copies to `out_dir`."""
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    report = DetectReport()
    names = detector.names
    jsonl_path = out_dir / "detections.jsonl"
    writer: cv2.VideoWriter | None = None
    video_path = out_dir / f"{source.path.stem}.annotated.mp4"
    started = time.perf_counter()
    bar = tqdm(total=len(source), unit="frame", disable=not progress or len(source) < 10, leave=False)
    try:
        with jsonl_path.open("w", encoding="utf-8") as jsonl:
            for frames in _batches(iter(source), batch):
                results = detector.detect([f.image for f in frames])
                for frame, detections in zip(frames, results, strict=True):
                    jsonl.write(json.dumps(frame_record(frame, detections, names), ensure_ascii=False) + "\n")
                    report.frames += 1
                    report.per_class.update(names[c] for c in detections.class_id.tolist())
                    if not annotate_output:
                        continue
                    drawn = annotate(frame.image, detections, names)
                    if source.kind == "video":
                        if writer is None:
                            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
                            writer = cv2.VideoWriter(str(video_path), fourcc, source.fps, (frame.width, frame.height))
                        writer.write(drawn)
                    else:
                        name = Path(frame.source_id).name if source.kind == "folder" else source.path.name
                        target = out_dir / name
                        cv2.imwrite(str(target), drawn)
                        report.outputs.append(target)
                bar.update(len(frames))
    finally:
        bar.close()
        if writer is not None:
            writer.release()
            report.outputs.append(video_path)
    report.outputs.insert(0, jsonl_path)
    report.skipped = source.stats.skipped
    report.seconds = time.perf_counter() - started
    return report
