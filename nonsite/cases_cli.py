"""`nonsite db` and `nonsite cases`: the case database from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cases.errors import CaseError

if TYPE_CHECKING:
    from cases.casebook import Casebook, DeadlineView

DEFAULT_DB_HELP = "case database URL (default: $NONSITE_DATABASE_URL, else sqlite:///var/nonsite.db)"


def add_commands(sub: Any, vault_arguments: Any) -> None:
    """Add the `db` and `cases` commands to the top-level subparsers."""
    db = sub.add_parser("db", help="the case database: bring its schema up to date")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_sub.add_parser("upgrade", help="apply the Alembic migrations (safe to run again)")
    upgrade.add_argument("--db", help=DEFAULT_DB_HELP)

    cases = sub.add_parser("cases", help="cases: file sealed findings, move them along, check, report")
    cases_sub = cases.add_subparsers(dest="cases_command", required=True, metavar="ACTION")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = cases_sub.add_parser(name, help=help_text)
        parser.add_argument("--db", help=DEFAULT_DB_HELP)
        vault_arguments(parser)
        parser.add_argument("--policy", type=Path, help="YAML file of the agency's case policy (CasePolicy)")
        return parser

    register = command("register", "register the cameras and zones of camera configs")
    register.add_argument("--cameras", type=Path, required=True, help="camera config or run file (YAML)")
    user = command("user", "add a user with a role")
    user.add_argument("username")
    user.add_argument("--role", required=True, choices=["officer", "legal_reviewer", "head", "engineer", "admin"])
    user.add_argument("--name", default="", help="display name")
    user.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the user's console password from the first line of stdin (sets it for an existing user)",
    )
    imports = command("import-premises", "import the premises registry from a CSV or Excel file")
    imports.add_argument("file", type=Path)
    imports.add_argument("--dry-run", action="store_true", help="check the file and say what would change")
    premises = command("premises", "the premises registry with each one's cases (--repeat: repeat offenders only)")
    premises.add_argument("--street")
    premises.add_argument("--repeat", action="store_true")
    device = command("device-token", "a token a camera worker uses to report its camera's health and snapshot")
    device.add_argument("camera")
    device.add_argument("--label", default="", help="what the token is for (a machine's name)")
    device.add_argument("--days", type=int, default=365, help="days until it expires")
    file = command("file", "file sealed packages as cases (no ids: every sealed package not yet filed)")
    file.add_argument("packages", nargs="*", help="package ids (manifest hashes)")
    listing = command("list", "list cases")
    listing.add_argument("--state")
    listing.add_argument("--kind")
    listing.add_argument("--camera")
    listing.add_argument("--limit", type=int, default=50)
    show = command("show", "a case with its evidence, history and deadlines")
    show.add_argument("number")
    step = command("step", "take a lifecycle step on a case")
    step.add_argument("number")
    step.add_argument("action", help="confirm, reject, warn, file, send_pre_notice, record_defense, ...")
    step.add_argument("--actor", required=True, help="username of who takes the step")
    step.add_argument("--reason", default="")
    step.add_argument("--code", help="reason code (reject: false_detection, steam, fog, shadow, ...)")
    step.add_argument("--attach", nargs="*", default=[], metavar="PACKAGE", help="sealed package ids to attach")
    step.add_argument("--version", type=int, help="the case version you saw; refused if it has moved on")
    step.add_argument("--days", type=int, help="rectification period in working days (warn)")
    overdue = command("overdue", "deadlines that have passed (and with --soon, those about to)")
    overdue.add_argument("--soon", action="store_true")
    command("rechecks", "warned cases whose rectification period has ended: due for a fresh look")
    recheck = command("recheck", "re-check a warned case from new footage of its camera; closes or escalates it")
    recheck.add_argument("number")
    recheck.add_argument("--cameras", type=Path, required=True, help="camera config YAML naming the case's camera")
    recheck.add_argument("--source", type=Path, required=True, help="the camera's new footage (video file)")
    recheck.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped starter model)")
    recheck.add_argument("--out", type=Path, help="analysis folder (default: var/rechecks/NUMBER)")
    command("check", "check the closed-loop invariants; exit status 1 if one is broken")
    kpi = command("kpi", "KPIs of a period")
    kpi.add_argument("--from", dest="start", type=date.fromisoformat, help="first local day (default: 7 days ago)")
    kpi.add_argument("--to", dest="end", type=date.fromisoformat, help="last local day (default: today)")
    kpi.add_argument("--by", choices=["all", "camera", "kind"], default="all")
    kpi.add_argument("--json", action="store_true", help="print JSON instead of tables")
    export = command("export", "write a case file (卷宗): HTML with evidence thumbnails and history, plus bundles")
    export.add_argument("number")
    export.add_argument("--out", type=Path, help="folder (default: var/casefiles/NUMBER)")
    export.add_argument("--actor", help="who exports, for the custody log (default: $USER)")
    day = sub.add_parser(
        "day", help="a synthetic day of footage from four cameras through the whole closed loop, with KPIs"
    )
    day.add_argument("--out", type=Path, default=Path("var/day"), help="output folder, rebuilt each run")
    day.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped starter model)")
    district = sub.add_parser(
        "district",
        help="a synthetic district (premises, fume monitors, cameras) for simulated days: cases by path, fusion",
    )
    district.add_argument("--out", type=Path, default=Path("var/district"), help="output folder, rebuilt each run")
    district.add_argument("--days", type=int, default=7, help="days to simulate")
    district.add_argument("--seed", type=int, default=20261123)


def cmd_db(args: argparse.Namespace) -> int:
    from cases.db import Database, database_url

    Database(args.db).close()
    print(f"case database at {_masked(database_url(args.db))} is up to date")
    return 0


def _masked(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def _casebook(args: argparse.Namespace) -> Iterator[Casebook]:
    import yaml
    from pydantic import ValidationError

    from cases.casebook import Casebook
    from cases.db import Database
    from cases.policy import CasePolicy
    from nonsite.cli import CommandError, open_vault

    policy = CasePolicy()
    if args.policy is not None:
        try:
            policy = CasePolicy.model_validate(yaml.safe_load(args.policy.read_text(encoding="utf-8")) or {})
        except (OSError, yaml.YAMLError, ValidationError) as e:
            raise CommandError(f"policy {args.policy}: {e}") from e
    db = Database(args.db)
    vault = open_vault(args)
    try:
        yield Casebook(db, vault, policy=policy)
    finally:
        vault.close()
        db.close()


def cmd_cases(args: argparse.Namespace) -> int:
    with _casebook(args) as book:
        return int(HANDLERS[args.cases_command](book, args))


def _register(book: Casebook, args: argparse.Namespace) -> int:
    from pipelines.settings import load_cameras, register_cameras

    cameras = load_cameras(args.cameras)
    register_cameras(book, cameras)
    for camera in cameras:
        print(f"registered camera {camera.id} with zones {', '.join(z.name for z in camera.zones)}")
    return 0


def _user(book: Casebook, args: argparse.Namespace) -> int:
    from api.accounts import AccountError, update_user

    book.add_user(args.username, args.role, display_name=args.name)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        try:
            update_user(book.db, username=args.username, password=password)
        except AccountError as e:
            raise CaseError(f"user {args.username}: {e}") from e
    login = "can log in to the console" if args.password_stdin else "has no console password yet (--password-stdin)"
    print(f"user {args.username} ({args.role}) {login}")
    return 0


def _import_premises(book: Casebook, args: argparse.Namespace) -> int:
    from cases.premises import import_premises

    if not args.file.is_file():
        raise CaseError(f"premises file {args.file} does not exist")
    report = import_premises(book.db, args.file, at=book.clock(), dry_run=args.dry_run)
    for problem in report.problems:
        print(f"{args.file.name}: {problem}", file=sys.stderr)
    if not report.ok:
        print(f"{len(report.problems)} problem(s); nothing was imported", file=sys.stderr)
        return 1
    would = "would be " if args.dry_run else ""
    print(
        f"{report.rows} premises: {len(report.created)} {would}created, {len(report.updated)} {would}updated, "
        f"{len(report.unchanged)} unchanged"
    )
    return 0


def _premises(book: Casebook, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from cases.models import Party
    from cases.premises import premises_history

    with book.db.session() as s:
        query = select(Party).where(Party.code.is_not(None)).order_by(Party.street, Party.code)
        if args.street:
            query = query.where(Party.street == args.street)
        rows = list(s.scalars(query))
    history = premises_history(book.db, [p.code for p in rows if p.code], at=book.clock())
    for party in rows:
        h = history.get(party.code or "")
        if args.repeat and not (h and h.repeat_offender):
            continue
        cases = f"{h.cases} case(s), {h.open_cases} open, {h.cases_last_year} in the last year" if h else "no cases"
        repeat = "  REPEAT" if h and h.repeat_offender else ""
        print(f"{party.code:<12} {party.street or '-':<10} {party.risk_grade or '-':<2} {party.name}  {cases}{repeat}")
    return 0


def _device_token(book: Casebook, args: argparse.Namespace) -> int:
    from api.accounts import AccountError, issue_device_token

    try:
        issued = issue_device_token(book.db, camera_id=args.camera, label=args.label, days=args.days)
    except AccountError as e:
        raise CaseError(str(e)) from e
    print(issued.token)
    print(
        f"camera {args.camera}: expires {issued.expires_at.isoformat(timespec='seconds')}; shown once", file=sys.stderr
    )
    return 0


def _file(book: Casebook, args: argparse.Namespace) -> int:
    filed = [book.file_package(p) for p in args.packages] if args.packages else book.heal()
    for f in filed:
        what = "opened" if f.created else "joined" if f.joined else "already in"
        repeat = f" (repeats {f.repeat_of})" if f.repeat_of else ""
        print(f"{f.package_id[:16]}… {what} case {f.case_number}{repeat}")
    if not filed:
        print("nothing to file: every sealed package belongs to a case")
    return 0


def _list(book: Casebook, args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from cases.models import Case

    with book.db.session() as s:
        query = select(Case).order_by(Case.id.desc())
        for column, value in ((Case.state, args.state), (Case.kind, args.kind), (Case.camera_id, args.camera)):
            if value:
                query = query.where(column == value)
        total = s.scalar(select(func.count()).select_from(query.subquery()))
        for case in s.scalars(query.limit(args.limit)):
            opened = case.opened_at.astimezone(book.policy.tz).strftime("%Y-%m-%d %H:%M")
            print(f"{case.number}  {case.kind:12} {case.state:16} {case.camera_id or '-':20} opened {opened}")
        print(f"{total} case(s)")
    return 0


def _show(book: Casebook, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from cases.errors import UnknownRecordError
    from cases.invariants import verify_history
    from cases.models import Case, CustodyRecord

    tz = book.policy.tz
    with book.db.session() as s:
        case = s.scalar(select(Case).where(Case.number == args.number))
        if case is None:
            raise UnknownRecordError(f"no case numbered {args.number!r}")
        zone = case.zone.name if case.zone else "-"
        print(f"{case.number}  {case.kind}  {case.state}  (version {case.version})")
        print(f"camera {case.camera_id or '-'}, zone {zone}; opened {case.opened_at.astimezone(tz):%Y-%m-%d %H:%M}")
        if case.previous_case:
            print(f"repeats {case.previous_case.number}")
        print("evidence:")
        for e in case.evidence:
            print(f"  {e.package_id}  {e.role}")
            custody = select(CustodyRecord).where(CustodyRecord.package_id == e.package_id).order_by(CustodyRecord.id)
            for c in s.scalars(custody):
                when = c.at.astimezone(tz)
                print(f"      {when:%Y-%m-%d %H:%M} {c.action:8} by {c.actor}  {c.reason}  (leaf {c.leaf_index})")
        print("history:")
        for t in case.transitions:
            why = f"  [{t.reason_code}]" if t.reason_code else ""
            why += f"  {t.reason}" if t.reason else ""
            print(f"  {t.seq:3d} {t.at.astimezone(tz):%Y-%m-%d %H:%M} {t.action:16} {t.from_state} -> {t.to_state} "
                  f"by {t.actor.username} ({t.actor.role}){why}")  # fmt: skip
        print("deadlines:")
        for d in case.deadlines:
            met = f"ended {d.met_at.astimezone(tz):%Y-%m-%d %H:%M} by {d.closed_by}" if d.met_at else "OPEN"
            provisional = " (provisional calendar)" if d.provisional else ""
            print(f"  {d.name:16} {d.owner:6} due {d.due_at.astimezone(tz):%Y-%m-%d %H:%M}  {met}  {d.basis}"
                  f"{provisional}")  # fmt: skip
    problems = verify_history(book, args.number)
    print("history verified: signatures, hash chain, log leaves" if not problems else "PROBLEMS:")
    for p in problems:
        print(f"  {p}")
    return 0 if not problems else 1


def _step(book: Casebook, args: argparse.Namespace) -> int:
    stepped = book.apply(
        args.number,
        args.action,
        actor=args.actor,
        reason=args.reason,
        reason_code=args.code,
        evidence=args.attach,
        expected_version=args.version,
        rectify_days=args.days,
    )
    print(f"{stepped.case_number}: {stepped.from_state} -> {stepped.to_state} (step {stepped.seq}, "
          f"version {stepped.version})")  # fmt: skip
    return 0


def _print_deadlines(book: Casebook, views: list[DeadlineView], title: str) -> None:
    now = book.clock()
    print(f"{title}: {len(views)}")
    for v in views:
        hours = (now - v.due_at).total_seconds() / 3600
        when = f"{hours:.0f} h overdue" if hours >= 0 else f"due in {-hours:.0f} h"
        print(f"  {v.case_number}  {v.kind:12} {v.state:16} {v.name:16} {v.owner:6} "
              f"{v.due_at.astimezone(book.policy.tz):%Y-%m-%d %H:%M}  {when}  {v.basis}")  # fmt: skip


def _overdue(book: Casebook, args: argparse.Namespace) -> int:
    _print_deadlines(book, book.overdue(), "overdue")
    if args.soon:
        _print_deadlines(book, book.due_soon(), f"due within {book.policy.due_soon_hours:g} h")
    return 0


def _rechecks(book: Casebook, args: argparse.Namespace) -> int:
    _print_deadlines(book, book.due_rechecks(), "due for a re-check")
    return 0


def _recheck(book: Casebook, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from cases.errors import UnknownRecordError
    from cases.models import Case
    from nonsite.cli import _pick_camera
    from nonsite.recheck import recheck_case
    from nonsite.starter import starter_model_path
    from pipelines.sources import FileSource
    from vision.detectors import create_detector
    from vision.detectors.onnx import sniff_backend

    with book.db.session() as s:
        camera_id = s.scalar(select(Case.camera_id).where(Case.number == args.number))
        if camera_id is None:
            raise UnknownRecordError(f"no case numbered {args.number!r} seen by a camera")
    camera = _pick_camera(args.cameras, camera_id)
    model = args.model or starter_model_path()
    detector = create_detector({"type": sniff_backend(model), "path": model})
    source = FileSource(args.source, source_id=camera.id)
    out = args.out or Path("var") / "rechecks" / args.number
    look = recheck_case(book, args.number, camera=camera, source=source, detector=detector, out_dir=out)
    verdict = "still there: escalated to the head" if look.violation_present else "gone: rectified and closed"
    print(f"{args.number}: re-check sealed as {look.package_id}; violation {verdict}")
    return 0


def _check(book: Casebook, args: argparse.Namespace) -> int:
    from cases.invariants import check_invariants

    report = check_invariants(book)
    print(f"{report.cases} cases, {report.transitions} transitions checked")
    print(f"sealed packages without a case: {len(report.unfiled_packages)}")
    for package in report.unfiled_packages:
        print(f"  {package}  (file it with: nonsite cases file {package})")
    if report.unlogged_transitions:
        print(f"transitions not yet in the Merkle log: {report.unlogged_transitions} (nonsite cases file logs them)")
    for problem in report.problems:
        print(f"BROKEN {problem}")
    _print_deadlines(book, report.overdue, "overdue (listed, so no case is forgotten)")
    print("invariants hold" if report.ok else "invariants BROKEN")
    return 0 if report.ok else 1


def _kpi(book: Casebook, args: argparse.Namespace) -> int:
    from cases.kpi import format_report, kpi_report

    tz = book.policy.tz
    today = datetime.now(tz).date()
    last = args.end or today
    first = args.start or last - timedelta(days=6)
    start = datetime.combine(first, time(0), tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), tz).astimezone(UTC)
    report = kpi_report(book, start=start, end=end, group_by=args.by)
    print(json.dumps(report.to_json(), indent=2, ensure_ascii=False) if args.json else format_report(report))
    return 0


def _export(book: Casebook, args: argparse.Namespace) -> int:
    from cases.casefile import export_case_file

    out = args.out or Path("var") / "casefiles" / args.number
    result = export_case_file(book, args.number, out, actor=args.actor or os.environ.get("USER") or "command line")
    print(f"wrote {result.html} and {len(result.bundles)} evidence bundle(s)")
    print("verified: bundles and history" if result.verified else "VERIFICATION FAILED: see the case file")
    return 0 if result.verified else 1


HANDLERS = {
    "register": _register,
    "user": _user,
    "device-token": _device_token,
    "import-premises": _import_premises,
    "premises": _premises,
    "file": _file,
    "list": _list,
    "show": _show,
    "step": _step,
    "overdue": _overdue,
    "rechecks": _rechecks,
    "recheck": _recheck,
    "check": _check,
    "kpi": _kpi,
    "export": _export,
}


def cmd_district(args: argparse.Namespace) -> int:
    from nonsite.district import format_district, run_district

    if args.days < 1:
        raise CaseError(f"--days must be at least 1, but got {args.days}")
    result = run_district(args.out, days=args.days, seed=args.seed)
    print(format_district(result))
    print(f"wrote {args.out / 'district.json'}")
    return 0 if result.invariants_ok else 1


def cmd_day(args: argparse.Namespace) -> int:
    from cases.kpi import format_report
    from nonsite.day import run_synthetic_day
    from nonsite.starter import starter_model_path
    from vision.detectors import create_detector

    detector = create_detector({"type": "onnx_yolo", "path": args.model or starter_model_path()})
    print("a synthetic day (all footage rendered; figures are synthetic, not real-world)")
    result = run_synthetic_day(detector, args.out)
    print(f"{result.scenes} scenes from 4 cameras, {result.packages} sealed packages; cases by state: "
          + ", ".join(f"{k} {v}" for k, v in sorted(result.states.items())))  # fmt: skip
    print(format_report(result.kpis))
    print()
    print(format_report(result.kpis_by_kind).split("\n\n")[0])
    verdict = "hold" if result.invariants.ok else "BROKEN: " + "; ".join(result.invariants.problems[:3])
    print(f"closed-loop invariants {verdict}; {len(result.invariants.overdue)} overdue")
    out = result.out_dir
    where = f"--db sqlite:///{out / 'cases.db'} --evidence {out / 'evidence'} --keys {out / 'keys'}"
    print(f"wrote {out / 'kpis.json'}; look closer with: nonsite cases list {where}")
    return 0 if result.invariants.ok else 1
