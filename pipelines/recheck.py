"""A fresh look at a zone after a rectification deadline, sealed as evidence either way.

The camera's footage of the re-check is run through the same engine as ever; if the
violation is there again, its own sealed package is the evidence; if not, the look itself
(first, middle and last frame, with the zone drawn) is sealed with a manifest that says
what was looked for, where, and that it was absent, so that closing the case rests on
evidence as fixed as the finding that opened it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from evidence.package import PackageFile
from evidence.vault import Vault
from nonsite import __version__
from pipelines.sealing import SealingError, keyframe_files, read_frames, seal_recorded_violation
from pipelines.sources import FileSource
from vision.camera import CameraConfig


@dataclass(frozen=True, slots=True)
class RecheckResult:
    package_id: str
    violation_present: bool


def seal_recheck(
    vault: Vault,
    *,
    case_number: str,
    kind: str,
    zone: str,
    camera: CameraConfig,
    source: FileSource,
    violations: list[dict[str, Any]],
) -> RecheckResult:
    """Seal the outcome of a re-check of `zone` for `kind`, given the closed violation records
    the engine produced over the re-check footage `source`."""
    fps = source.fps
    again = [v for v in violations if v["kind"] == kind and v["zone"] == zone and v["closed"]]
    if again:
        # the manifest names the case, so a crash before the outcome is recorded is healed onto it
        logged = seal_recorded_violation(vault, {**again[0], "recheck_of": case_number}, source.path, camera, fps)
        return RecheckResult(logged.package.package_id, True)
    last = max(0, source.frame_count - 1)
    picks = sorted({0, last // 2, last})
    frames = read_frames(source.path, picks[0], picks[-1])
    if not frames:
        raise SealingError(f"{source.path}: no frame of the re-check footage could be read")
    started = _start_time(source)
    ended = started + timedelta(seconds=last / fps)
    look = {"kind": f"re-check: no {kind}", "zone": zone, "bbox": [0, 0, 0, 0]}  # the caption burned in
    files: list[PackageFile] = []
    for index in picks:
        if index not in frames:
            continue
        files += keyframe_files(index, frames[index], look, camera, started + timedelta(seconds=index / fps))
    finding = {
        "device": {"id": camera.id, "name": camera.name, "source": camera.masked_source},
        "place": camera.location.model_dump(mode="json") if camera.location else {},
        "capture": {
            "started_at": started.isoformat(),
            "ended_at": ended.isoformat(),
            "clock_source": "file",
            "frames": picks,
            "fps": fps,
        },
        "violation": {
            "kind": kind,
            "zone": zone,
            "present": False,
            "recheck_of": case_number,
            "started_at": started.isoformat(),
            "ended_at": ended.isoformat(),
        },
        "model": {"sha256": violations[0]["model_id"] if violations else None},
        "rule": {"recheck": True},
        "engine": {"name": "nonsite", "version": __version__},
    }
    return RecheckResult(vault.seal(finding, files).package.package_id, False)


def _start_time(source: FileSource) -> datetime:
    first = next(iter(source))
    return first.captured_at


def closed_records(violations_path: Path) -> list[dict[str, Any]]:
    """The closed violation records of a `violations.jsonl`."""
    lines = violations_path.read_text(encoding="utf-8").splitlines()
    return [record for record in map(json.loads, lines) if record["closed"]]
