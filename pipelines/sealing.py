"""From a closed violation to a sealed evidence package.

For recorded footage the frames of the violation's clip span are read back from the
source; keyframes are kept lossless (PNG), annotated copies get the boxes, the zone and
the camera and time burned in, and the clip covers the span with its pre- and post-roll.
Camera workers take the same frames from their ring buffer (`violation_package`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from evidence.package import PackageFile
from evidence.vault import LoggedPackage, Vault
from nonsite import __version__
from vision.camera import CameraConfig

logger = logging.getLogger(__name__)


class SealingError(Exception):
    """The frames a violation needs cannot be read back."""


def read_frames(video: Path, first: int, last: int) -> dict[int, np.ndarray]:
    """Frames `first`..`last` (inclusive, clipped to the video) of a video file."""
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise SealingError(f"{video}: cannot open to read evidence frames")
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, max(0, first))
        frames = {}
        for index in range(max(0, first), last + 1):
            ok, frame = capture.read()
            if not ok:
                break
            frames[index] = frame
        return frames
    finally:
        capture.release()


def encode_png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise SealingError("PNG encoding failed")
    return bytes(data.tobytes())


def encode_h264_clip(frames: list[np.ndarray], fps: float) -> bytes:
    """An MP4 that browsers play: H.264 (libx264, yuv420p), the index up front (faststart).

    yuv420p needs even sides, so an odd-sized frame is padded with black by one pixel;
    no pixel of the original is dropped. The clip is a viewing copy; keyframes stay lossless.
    """
    if not frames:
        raise SealingError("a clip needs at least one frame")
    h, w = frames[0].shape[:2]
    pad_h, pad_w = h % 2, w % 2
    fd, name = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        with av.open(name, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = w + pad_w, h + pad_h
            stream.pix_fmt = "yuv420p"
            # one encoder thread: clips are encoded beside live cameras, which need the cores more
            stream.options = {"crf": "20", "preset": "veryfast", "threads": "1"}
            for frame in frames:
                border = cv2.copyMakeBorder(frame, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
                even = np.asarray(border, dtype=np.uint8)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(even, format="bgr24")))
            container.mux(stream.encode())
        return Path(name).read_bytes()
    except av.FFmpegError as e:
        raise SealingError(f"H.264 encoding of a {w}x{h} clip failed: {e}") from e
    finally:
        Path(name).unlink(missing_ok=True)


def _annotated(image: np.ndarray, record: dict[str, Any], camera: CameraConfig, at: datetime) -> np.ndarray:
    out = image.copy()
    zone = next((z for z in camera.zones if z.name == record["zone"]), None)
    if zone is not None:
        polygon = np.asarray(zone.polygon, np.float64)
        detect = record.get("detect_stream")  # zones are drawn in the detect frames' pixels
        if detect:
            polygon *= (out.shape[1] / detect["width"], out.shape[0] / detect["height"])
        cv2.polylines(out, [polygon.round().astype(np.int32)], True, (0, 255, 255), 1, cv2.LINE_AA)
    x1, y1, x2, y2 = (round(v) for v in record["bbox"])
    cv2.rectangle(out, (x1, y1), (x2, y2), (0, 0, 255), 2, cv2.LINE_AA)
    caption = f"{camera.id}  {at.strftime('%Y-%m-%d %H:%M:%S')} UTC  {record['kind']} @ {record['zone']}"
    cv2.rectangle(out, (0, 0), (out.shape[1], 24), (0, 0, 0), -1)
    cv2.putText(out, caption, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def keyframe_files(
    index: int, frame: np.ndarray, record: dict[str, Any], camera: CameraConfig, at: datetime
) -> list[PackageFile]:
    """A keyframe kept lossless, and its annotated copy (zone, box, camera and time burned in)."""
    return [
        PackageFile(f"keyframe-{index:06d}.png", encode_png(frame), "image/png", "keyframe"),
        PackageFile(
            f"annotated-{index:06d}.png", encode_png(_annotated(frame, record, camera, at)), "image/png", "annotated"
        ),
    ]


def violation_package(
    frames: dict[int, np.ndarray],
    record: dict[str, Any],
    camera: CameraConfig,
    fps: float,
    clock_source: str,
    *,
    times: dict[int, datetime] | None = None,
) -> tuple[dict[str, Any], list[PackageFile]]:
    """The finding and files of one violation record (`Violation.to_record()`).

    `frames` holds the frames of the record's clip span that could be had, keyed by frame
    index (a recorded video gives all of them; a live camera's ring buffer may miss the
    middle of a long event); the clip is those frames in order and `capture.clip_frames`
    names them exactly. `times` are the frames' capture times where they are known (a live
    camera): keyframes are stamped with them and the clip plays at the rate they were
    captured; otherwise times follow from `fps`. A keyframe that is missing is left out.
    """
    if not frames:
        raise SealingError(f"{camera.id}: violation at {record['started_at']} has no frames to seal")
    indices = sorted(frames)
    started = datetime.fromisoformat(record["started_at"])
    clip_fps = fps
    if times and len(indices) > 1:
        span = (times[indices[-1]] - times[indices[0]]).total_seconds()
        if span > 0:
            clip_fps = min(120.0, max(0.5, (len(indices) - 1) / span))
    files = [PackageFile("clip.mp4", encode_h264_clip([frames[i] for i in indices], clip_fps), "video/mp4", "clip")]
    for k in record["keyframes"]:
        if k in frames:
            at = times[k] if times and k in times else started + timedelta(seconds=(k - record["start_frame"]) / fps)
            files += keyframe_files(k, frames[k], record, camera, at)
    location = camera.location.model_dump(mode="json") if camera.location else {}
    contiguous = indices[-1] - indices[0] + 1 == len(indices)
    finding = {
        "device": {"id": camera.id, "name": camera.name, "source": camera.masked_source},
        "place": location,
        "capture": {
            "started_at": record["started_at"],
            "ended_at": record["ended_at"],
            "clock_source": clock_source,
            "clip_frames": [indices[0], indices[-1]] if contiguous else indices,
            "fps": round(clip_fps, 3),
        },
        "violation": {k: v for k, v in record.items() if k not in ("rule", "model_id")},
        "model": {"sha256": record["model_id"]},
        "rule": record["rule"],
        "engine": {"name": "nonsite", "version": __version__},
    }
    return finding, files


def seal_recorded_violation(
    vault: Vault, record: dict[str, Any], video: Path, camera: CameraConfig, fps: float
) -> LoggedPackage:
    """Seal one closed violation record (`Violation.to_record()`) of a recorded video."""
    first, last = record["clip_span"]
    frames = read_frames(video, first, last)
    if not frames:
        raise SealingError(f"{video}: none of frames {first}..{last} could be read")
    return vault.seal(*violation_package(frames, record, camera, fps, "file"))
