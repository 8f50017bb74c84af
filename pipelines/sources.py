"""Frame sources: an image, a folder of images, a video file.

Each source yields `vision.Frame`s with a source id, an index and a capture time with its
clock noted. Streams (RTSP, HTTP) come with the camera workers; they share this
interface. Problems a caller can act on (a missing path, a file that is no image or
video, a folder with no images) raise `SourceError` naming the path and what is wrong;
unreadable images inside a folder are skipped, counted and logged, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from vision.types import ClockSource, Frame

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".ts", ".flv", ".mpg", ".mpeg"})


class SourceError(Exception):
    """A source cannot be opened or read; the message names it and the reason."""


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


@dataclass
class SourceStats:
    """What a source did: frames read and frames it had to skip."""

    read: int = 0
    skipped: int = 0
    skipped_paths: list[str] = field(default_factory=list)


class FileSource:
    """Frames from an image file, a folder of images (sorted by name) or a video file."""

    def __init__(self, path: str | Path, *, source_id: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SourceError(f"{self.path}: no such file or folder")
        self.source_id = source_id or self.path.stem or str(self.path)
        self.stats = SourceStats()
        if self.path.is_dir():
            self.kind = "folder"
            self._images = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise SourceError(f"{self.path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        elif self.path.suffix.lower() in IMAGE_SUFFIXES:
            self.kind = "image"
            self._images = [self.path]
        elif self.path.suffix.lower() in VIDEO_SUFFIXES:
            self.kind = "video"
            self._images = []
            self._probe_video()
        else:
            raise SourceError(f"{self.path}: not an image or video file (suffix {self.path.suffix or 'none'!r})")

    def _probe_video(self) -> None:
        capture = cv2.VideoCapture(str(self.path))
        try:
            if not capture.isOpened():
                raise SourceError(f"{self.path}: cannot open as a video (corrupt, or a codec OpenCV lacks)")
            self.fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
            self.frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
            ok, _ = capture.read()
            if not ok:
                raise SourceError(f"{self.path}: video opened but holds no decodable frame")
        finally:
            capture.release()

    def __len__(self) -> int:
        """Frames expected (a video's header count, which may be off by a few)."""
        return self.frame_count if self.kind == "video" else len(self._images)

    def __iter__(self) -> Iterator[Frame]:
        return self._video() if self.kind == "video" else self._folder()

    def _folder(self) -> Iterator[Frame]:
        for index, path in enumerate(self._images):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                if self.kind == "image":
                    raise SourceError(f"{path}: not a readable image (corrupt or unsupported format)")
                self.stats.skipped += 1
                self.stats.skipped_paths.append(str(path))
                logger.warning("skipping unreadable image %s", path)
                continue
            self.stats.read += 1
            yield Frame(
                image=image,
                source_id=self.source_id if self.kind == "image" else f"{self.source_id}/{path.name}",
                index=index,
                captured_at=_mtime(path),
                clock_source=ClockSource.FILE,
            )

    def _video(self) -> Iterator[Frame]:
        capture = cv2.VideoCapture(str(self.path))
        start = _mtime(self.path)
        try:
            index = 0
            while True:
                ok, image = capture.read()
                if not ok:
                    break
                if image is None or image.ndim != 3:
                    self.stats.skipped += 1
                    index += 1
                    continue
                offset_ms = capture.get(cv2.CAP_PROP_POS_MSEC)
                if not np.isfinite(offset_ms) or offset_ms < 0:
                    offset_ms = index * 1000.0 / self.fps
                self.stats.read += 1
                yield Frame(
                    image=image,
                    source_id=self.source_id,
                    index=index,
                    captured_at=start + timedelta(milliseconds=offset_ms),
                    clock_source=ClockSource.FILE,
                )
                index += 1
        finally:
            capture.release()
