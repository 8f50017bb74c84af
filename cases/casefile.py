"""The case file (卷宗): one case's whole process, recorded and archived (Administrative Penalty Law Art. 47).

`export_case_file` writes a folder holding the offline-verifiable bundle of every evidence
package of the case (all against one checkpoint of the log) and one self-contained, printable
HTML page: the case, its evidence with thumbnails and each bundle's verdict, the signed
history, the deadlines, and whether the history and the bundles verify. Every text on the
page is escaped; reasons and names are user input.
"""

from __future__ import annotations

import base64
import html
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from cases.casebook import Casebook
from cases.errors import UnknownRecordError
from cases.invariants import transition_problems
from cases.models import Case, Transition
from evidence.bundle import Check, export_bundle, verify_bundle
from evidence.errors import EvidenceError
from evidence.package import load_package
from evidence.vault import Checkpoint, StampedCheckpoint

logger = logging.getLogger(__name__)

#: what a case number looks like: agency, local year, sequence (CG-2026-000123)
CASE_NUMBER = re.compile(r"^[A-Z]{2,8}-\d{4}-\d{6}$")

HTML_NAME = "case-file.html"
BUNDLES = "bundles"
THUMB_WIDTH = 320
THUMBS_PER_PACKAGE = 8
_THUMB_ROLES = ("annotated", "keyframe")  # the annotated images if a package has any, else its keyframes


@dataclass(frozen=True, slots=True)
class CaseFile:
    """What `export_case_file` wrote, and whether everything in it verified."""

    html: Path
    bundles: list[Path]
    verified: bool


# --- what the page shows, read from the database in one transaction -------------------------


@dataclass(frozen=True, slots=True)
class _Evidence:
    package_id: str
    role: str
    observed_from: datetime | None
    observed_to: datetime | None
    score: float | None


@dataclass(frozen=True, slots=True)
class _Step:
    seq: int
    at: datetime
    action: str
    from_state: str
    to_state: str
    actor: str
    role: str
    reason: str
    reason_code: str | None
    attachments: list[str]
    leaf_index: int | None
    record_sha256: str


@dataclass(frozen=True, slots=True)
class _Deadline:
    name: str
    owner: str
    basis: str
    starts_at: datetime
    due_at: datetime
    met_at: datetime | None
    closed_by: str | None
    provisional: bool


@dataclass(frozen=True, slots=True)
class _Snapshot:
    facts: list[tuple[str, str]]  # (bilingual label, value) of the case itself
    number: str
    evidence: list[_Evidence]
    steps: list[_Step]
    deadlines: list[_Deadline]
    problems: list[str]  # what is wrong with the recorded history


@dataclass(frozen=True, slots=True)
class _Thumb:
    name: str
    data_uri: str | None  # None: the file is not a decodable image
    size: str


@dataclass(frozen=True, slots=True)
class _Bundle:
    evidence: _Evidence
    path: Path | None  # None: the bundle could not be exported
    checks: list[Check]
    thumbs: list[_Thumb]
    more_images: int  # images of the package not shown as thumbnails

    @property
    def ok(self) -> bool:
        return self.path is not None and bool(self.checks) and all(c.ok for c in self.checks)


# --- export ----------------------------------------------------------------------------------


def export_case_file(casebook: Casebook, case_number: str, out: Path, *, actor: str) -> CaseFile:
    """Write the case file of `case_number` into the new (or empty) folder `out`, as `actor`.

    Each exported bundle is recorded in its package's custody log (who exported it, and why).

    Raises `UnknownRecordError` for an unknown case and `ValueError` if `out` exists and is
    not an empty folder. A package that cannot be exported or verified, or a history with
    problems, does not stop the export: the page names it and `verified` is false.
    """
    out = Path(out)
    _check_out(out)
    snapshot = _read_case(casebook, case_number)
    (out / BUNDLES).mkdir(parents=True, exist_ok=True)
    stamped = casebook.vault.publish_checkpoint()  # signed and time-stamped, shared by every bundle
    bundles = [_bundle(casebook, e, out / BUNDLES, stamped) for e in snapshot.evidence]
    for b in bundles:
        if b.path is not None:
            casebook.record_custody(
                b.evidence.package_id, actor=actor, action="export", reason=f"case file of {case_number}"
            )
    verified = not snapshot.problems and all(b.ok for b in bundles)
    page = _page(casebook, snapshot, bundles, stamped.checkpoint, verified)
    html_path = out / HTML_NAME
    html_path.write_text(page, encoding="utf-8")
    logger.info("case file of %s written to %s (verified: %s)", case_number, out, verified)
    return CaseFile(html_path, [b.path for b in bundles if b.path is not None], verified)


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder; a case file needs a new or empty one")


def _read_case(casebook: Casebook, case_number: str) -> _Snapshot:
    """Everything the page shows, and the history check, from one database transaction."""
    query = (
        select(Case)
        .where(Case.number == case_number)
        .options(
            selectinload(Case.camera),
            selectinload(Case.zone),
            selectinload(Case.party),
            selectinload(Case.previous_case),
            selectinload(Case.evidence),
            selectinload(Case.transitions).selectinload(Transition.actor),
            selectinload(Case.deadlines),
        )
    )
    with casebook.db.session() as s:
        case = s.scalar(query)
        if case is None:
            raise UnknownRecordError(f"no case numbered {case_number!r}")
        transitions = list(case.transitions)
        return _Snapshot(
            facts=_facts(case, casebook.policy.tz),
            number=case.number,
            evidence=[_Evidence(e.package_id, e.role, e.observed_from, e.observed_to, e.score) for e in case.evidence],
            steps=[_step(t) for t in transitions],
            deadlines=[
                _Deadline(d.name, d.owner, d.basis, d.starts_at, d.due_at, d.met_at, d.closed_by, d.provisional)
                for d in case.deadlines
            ],
            problems=transition_problems(casebook, case, transitions),
        )


def _facts(case: Case, tz: tzinfo) -> list[tuple[str, str]]:
    party = case.party
    facts = [
        ("案件编号 Case number", case.number),
        ("案件类型 Kind", case.kind),
        ("状态 State", case.state),
        ("执法机关 Agency", case.agency),
        ("摄像头 Camera", f"{case.camera.id} · {case.camera.name}" if case.camera else "—"),
        ("区域 Zone", f"{case.zone.name} ({case.zone.rule})" if case.zone else "—"),
    ]
    if case.camera is None and case.lat is not None and case.lon is not None:
        facts.append(("位置 Place", f"{case.lat:.6f}, {case.lon:.6f} ± {case.radius_m or 0:.0f} m"))
    if party is not None:
        facts.append(("当事人 Party", f"{party.name} · {party.address}" if party.address else party.name))
        if party.credit_code:
            facts.append(("统一社会信用代码 Credit code", party.credit_code))
    facts += [
        ("首次发现 First seen", _local(case.first_seen_at, tz)),
        ("最后发现 Last seen", _local(case.last_seen_at, tz)),
        ("登记 Opened", _local(case.opened_at, tz)),
        ("结案 Closed", _local(case.closed_at, tz)),
        ("结果 Outcome", case.outcome or "—"),
    ]
    if case.previous_case is not None:
        facts.append(("前案 Previous case (repeat)", case.previous_case.number))
    return facts


def _step(t: Transition) -> _Step:
    return _Step(
        seq=t.seq,
        at=t.at,
        action=t.action,
        from_state=t.from_state,
        to_state=t.to_state,
        actor=t.actor.username,
        role=t.actor.role,
        reason=t.reason,
        reason_code=t.reason_code,
        attachments=[str(a) for a in t.attachments or []],
        leaf_index=t.leaf_index,
        record_sha256=t.record_sha256,
    )


# --- bundles and thumbnails ----------------------------------------------------------------------


def _bundle(casebook: Casebook, evidence: _Evidence, folder: Path, checkpoint: StampedCheckpoint) -> _Bundle:
    """Export and verify one package's bundle, and make thumbnails of its images."""
    pid = evidence.package_id
    try:
        package, files = load_package(casebook.vault.store, pid)
        path = export_bundle(casebook.vault, pid, folder / f"{pid}.zip", checkpoint=checkpoint)
    except (EvidenceError, KeyError, ValueError, OSError) as e:
        logger.error("case file: package %s cannot be exported: %s", pid, e)
        return _Bundle(evidence, None, [Check("export", False, str(e))], [], 0)
    thumbs, more = _thumbnails(package.manifest, files)
    return _Bundle(evidence, path, verify_bundle(path), thumbs, more)


def _thumbnails(manifest: dict[str, Any], files: dict[str, bytes]) -> tuple[list[_Thumb], int]:
    """Thumbnails of the package's images of the first role in _THUMB_ROLES it has, and how many more."""
    listed: dict[str, Any] = manifest.get("files", {})
    for role in _THUMB_ROLES:
        names = sorted(name for name, entry in listed.items() if entry.get("role") == role and name in files)
        if names:
            shown = names[:THUMBS_PER_PACKAGE]
            return [_thumbnail(name, files[name]) for name in shown], len(names) - len(shown)
    return [], 0


def _thumbnail(name: str, data: bytes) -> _Thumb:
    """A JPEG data URI of the image at most THUMB_WIDTH wide, or a note that it is no image."""
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None:
        return _Thumb(name, None, f"{len(data)} bytes")
    height, width = image.shape[:2]
    if width > THUMB_WIDTH:
        size = (THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        return _Thumb(name, None, f"{width}×{height}")
    return _Thumb(
        name, "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii"), f"{width}×{height}"
    )


# --- the page ------------------------------------------------------------------------------------


class _Safe(str):
    """HTML made here from escaped parts; every other text is escaped when it goes into the page."""

    __slots__ = ()


def _e(value: object) -> _Safe:
    if isinstance(value, _Safe):
        return value
    return _Safe(html.escape("—" if value is None or value == "" else str(value)))


def _local(at: datetime | None, tz: tzinfo) -> str:
    return "—" if at is None else at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def _when(at: datetime | None, tz: tzinfo) -> _Safe:
    """A local time for a table cell, kept on one line."""
    return _Safe(f'<span class="nw">{_e(_local(at, tz))}</span>')


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], css: str = "") -> _Safe:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>\n" for row in rows)
    return _Safe(f'<table class="{_e(css)}"><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>')


def _section(title: str, *parts: _Safe) -> _Safe:
    return _Safe(f"<section><h2>{_e(title)}</h2>\n" + "\n".join(_e(p) for p in parts) + "</section>\n")


def _mono(text: str) -> _Safe:
    return _Safe(f'<span class="mono">{_e(text)}</span>')


def _verdict(ok: bool, text: str) -> _Safe:
    return _Safe(f'<span class="{"ok" if ok else "bad"} wrap">{"✓" if ok else "✗"} {_e(text)}</span>')


def _bundle_verdict(bundle: _Bundle) -> _Safe:
    if bundle.ok:
        return _verdict(True, f"all {len(bundle.checks)} checks OK")
    failed = "; ".join(f"{c.name}: {c.detail}" for c in bundle.checks if not c.ok)
    return _verdict(False, f"failed: {failed}")


def _case_section(snapshot: _Snapshot) -> _Safe:
    rows = "".join(f"<tr><th>{_e(label)}</th><td>{_e(value)}</td></tr>\n" for label, value in snapshot.facts)
    return _section("案件信息 Case", _Safe(f'<table class="facts"><tbody>\n{rows}</tbody></table>'))


def _evidence_section(bundles: list[_Bundle], tz: tzinfo) -> _Safe:
    rows = [
        [
            _mono(b.evidence.package_id),
            b.evidence.role,
            _Safe(f"{_when(b.evidence.observed_from, tz)} – {_when(b.evidence.observed_to, tz)}"),
            "—" if b.evidence.score is None else f"{b.evidence.score:.2f}",
            _bundle_verdict(b),
            _mono(f"{BUNDLES}/{b.path.name}") if b.path else "—",
        ]
        for b in bundles
    ]
    table = _table(
        ["证据包 Package", "角色 Role", "观察时段 Observed", "得分 Score", "核验 Bundle verdict", "文件 Bundle"],
        rows,
        "evidence",
    )
    return _section("证据 Evidence", table, *(_gallery(b) for b in bundles))


def _gallery(bundle: _Bundle) -> _Safe:
    figures = []
    for thumb in bundle.thumbs:
        if thumb.data_uri is None:
            figures.append(
                f'<figure class="noimage"><div>无法解码 not a decodable image</div>'
                f"<figcaption>{_e(thumb.name)} · {_e(thumb.size)}</figcaption></figure>"
            )
        else:
            figures.append(
                f'<figure><img src="{_e(thumb.data_uri)}" alt="{_e(thumb.name)}">'
                f"<figcaption>{_e(thumb.name)} · {_e(thumb.size)}</figcaption></figure>"
            )
    if bundle.more_images:
        figures.append(f'<p class="note">+{bundle.more_images} more images in the bundle</p>')
    if bundle.path is None:
        figures.append('<p class="bad">无法读取 the package cannot be read: see its bundle verdict</p>')
    elif not figures:
        figures.append('<p class="note">无图像 no images</p>')
    title = _e(f"{bundle.evidence.package_id[:16]} · {bundle.evidence.role}")
    return _Safe(f'<div class="gallery"><h3>{title}</h3>{"".join(figures)}</div>')


def _history_section(steps: list[_Step], tz: tzinfo) -> _Safe:
    rows = [
        [
            s.seq,
            _when(s.at, tz),
            s.action,
            f"{s.from_state} → {s.to_state}",
            f"{s.actor} ({s.role})",
            _Safe(f'<span class="wrap">{_e(s.reason)}</span>'),
            s.reason_code,
            _mono(", ".join(a[:16] + "…" for a in s.attachments)) if s.attachments else "—",
            s.leaf_index,
            _mono(s.record_sha256[:16]),
        ]
        for s in steps
    ]
    headers = [
        "序号 Seq",
        "时间 Time",
        "操作 Action",
        "状态 From → To",
        "执行人 Actor",
        "理由 Reason",
        "理由代码 Code",
        "附件 Attachments",
        "日志叶 Leaf",
        "记录哈希 Record hash",
    ]
    return _section("处理记录 History", _table(headers, rows, "history"))


def _deadline_status(d: _Deadline, now: datetime, tz: tzinfo) -> _Safe:
    if d.met_at is not None:
        late = d.met_at > d.due_at
        text = f"ended {_local(d.met_at, tz)} by {d.closed_by or 'a step'}" + (" (after due)" if late else "")
        return _Safe(f'<span class="{"late" if late else "ok"}">{_e(text)}</span>')
    if d.due_at <= now:
        return _Safe('<span class="bad">OVERDUE</span>')
    return _Safe('<span class="open">OPEN</span>')


def _deadlines_section(deadlines: list[_Deadline], now: datetime, tz: tzinfo) -> _Safe:
    rows = [
        [
            d.name,
            d.owner,
            d.basis,
            _when(d.starts_at, tz),
            _Safe(_when(d.due_at, tz) + (" (provisional 暂定)" if d.provisional else "")),
            _deadline_status(d, now, tz),
        ]
        for d in deadlines
    ]
    headers = ["期限 Name", "责任方 Owner", "依据 Basis", "起算 Start", "届满 Due", "状态 Status"]
    return _section("期限 Deadlines", _table(headers, rows, "deadlines"))


def _verification_section(casebook: Casebook, snapshot: _Snapshot, bundles: list[_Bundle], cp: Checkpoint) -> _Safe:
    steps = snapshot.steps
    if snapshot.problems:
        history = _Safe(
            f'<p>{_verdict(False, f"history: {len(snapshot.problems)} problems")}</p><ul class="problems">'
            + "".join(f"<li>{_e(p)}</li>" for p in snapshot.problems)
            + "</ul>"
        )
    else:
        unlogged = sum(s.leaf_index is None for s in steps)
        text = f"history verified: {len(steps)} steps, signatures, hash chain and log leaves OK"
        if unlogged:
            text += f" ({unlogged} steps not yet in the Merkle log)"
        history = _Safe(f"<p>{_verdict(True, text)}</p>")
    ok = sum(b.ok for b in bundles)
    evidence = _Safe(f"<p>{_verdict(ok == len(bundles), f'evidence: {ok} of {len(bundles)} bundles verify')}</p>")
    checkpoint = _Safe(
        f"<p>日志检查点 Log checkpoint: tree size {_e(cp.tree_size)}, root {_mono(cp.body['root'])}, "
        f"time {_e(cp.body['time'])}</p>"
    )
    keys = _table(
        ["密钥 Key id", "公钥 Public key (Ed25519)"],
        [[_mono(k), _mono(v.hex())] for k, v in sorted(casebook.vault.keys.public_keys().items())],
        "keys",
    )
    return _section("核验 Verification", history, evidence, checkpoint, keys)


_CSS = """
:root { --ok: #1a7f37; --bad: #b42318; --line: #d0d7de; --muted: #57606a; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif;
       font-size: 13px; color: #1f2328; margin: 24px auto; max-width: 1100px; padding: 0 16px; line-height: 1.45; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; border-bottom: 2px solid #1f2328; padding-bottom: 3px; margin: 22px 0 8px; }
h3 { font-size: 13px; margin: 10px 0 4px; font-weight: 600; }
.sub, .note { color: var(--muted); }
.banner { padding: 8px 12px; border-radius: 4px; font-weight: 600; margin: 12px 0; border: 1px solid; }
.banner.ok { color: var(--ok); background: #dafbe1; }
.banner.bad { color: var(--bad); background: #ffebe9; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; }
th, td { border: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top; }
thead th { background: #f6f8fa; white-space: nowrap; }
table.facts { width: auto; min-width: 60%; }
table.facts th { background: #f6f8fa; width: 14em; }
td { overflow-wrap: break-word; }
.nw { white-space: nowrap; }
.wrap { overflow-wrap: anywhere; }
.mono { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 11px; word-break: break-all; }
.ok { color: var(--ok); }
.bad { color: var(--bad); font-weight: 600; }
.open { color: #9a6700; font-weight: 600; }
.late { color: #9a6700; }
ul.problems { color: var(--bad); margin: 4px 0; }
.gallery { margin: 6px 0; break-inside: avoid; }
figure { display: inline-block; margin: 0 8px 8px 0; vertical-align: top; max-width: 322px; }
figure img { display: block; max-width: 320px; border: 1px solid var(--line); }
figure.noimage div { width: 160px; padding: 28px 6px; border: 1px dashed var(--bad); color: var(--bad);
                     text-align: center; }
figcaption { font-size: 11px; color: var(--muted); word-break: break-all; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 9.5px; }
  .mono { font-size: 8.5px; }
  th, td { padding: 2px 4px; }
  thead th, .nw { white-space: normal; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  thead { display: table-header-group; }
  tr, figure { break-inside: avoid; }
  h2 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def _page(casebook: Casebook, snapshot: _Snapshot, bundles: list[_Bundle], cp: Checkpoint, verified: bool) -> str:
    tz = casebook.policy.tz
    now = casebook.clock()
    banner = (
        _verdict(True, "已核验 Verified: the history and every evidence bundle verify")
        if verified
        else _verdict(False, "未通过核验 NOT verified: see Verification below")
    )
    body = "\n".join(
        [
            f"<h1>案件卷宗 Case file {_e(snapshot.number)}</h1>",
            '<p class="sub">《中华人民共和国行政处罚法》第四十七条 全过程记录归档 · '
            "Administrative Penalty Law Art. 47: the whole process, recorded and archived<br>"
            f"生成 Generated {_e(_local(now, tz))} · "
            f"时间均为当地时间 times are local ({_e(casebook.policy.timezone)})</p>",
            f'<div class="banner {"ok" if verified else "bad"}">{banner}</div>',
            _case_section(snapshot),
            _evidence_section(bundles, tz),
            _history_section(snapshot.steps, tz),
            _deadlines_section(snapshot.deadlines, now, tz),
            _verification_section(casebook, snapshot, bundles, cp),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>案件卷宗 Case file {_e(snapshot.number)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
