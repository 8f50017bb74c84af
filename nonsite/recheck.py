"""A re-check of one warned case: the camera that saw it takes a fresh look at the zone.

The footage runs through the camera's engine like any other; the outcome is sealed (the
violation's own package if it is back, else the look itself) and recorded on the case,
which then closes as rectified or escalates to the head.
"""

from __future__ import annotations

from pathlib import Path

from cases.casebook import Casebook
from cases.errors import IllegalTransitionError
from cases.models import Case
from cases.states import CaseState
from nonsite.analyze import analyze_source
from pipelines.recheck import RecheckResult, closed_records, seal_recheck
from pipelines.sources import FileSource
from vision.camera import CameraConfig
from vision.detectors import Detector


def recheck_case(
    book: Casebook, case_number: str, *, camera: CameraConfig, source: FileSource, detector: Detector, out_dir: Path
) -> RecheckResult:
    """Look again at the case's zone through `camera` over `source`; seal and record the outcome."""
    with book.db.session() as s:
        case = s.query(Case).filter_by(number=case_number).one_or_none()
        if case is None:
            raise IllegalTransitionError(f"no case numbered {case_number!r} to re-check")
        if case.camera_id != camera.id or case.zone is None:
            raise IllegalTransitionError(
                f"case {case_number} was seen by camera {case.camera_id!r}"
                f"{' in zone ' + case.zone.name if case.zone else ' outside any zone'}; "
                f"a re-check needs that camera's zone, not camera {camera.id!r}"
            )
        if case.state != CaseState.WARNED:
            raise IllegalTransitionError(f"case {case_number} is {case.state}: only a warned case is re-checked")
        kind, zone = case.kind, case.zone.name
    analysis = analyze_source(source, camera, detector, out_dir)
    look = seal_recheck(
        book.vault,
        case_number=case_number,
        kind=kind,
        zone=zone,
        camera=camera,
        source=source,
        violations=closed_records(analysis.violations_path),
    )
    book.record_recheck(case_number, package_id=look.package_id, violation_present=look.violation_present)
    return look
