"""`nonsite db` and `nonsite cases` as a user meets them: register, file, step, show, check, report."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from evidence.vault import Vault
from nonsite.cli import main
from tests.cases.conftest import seal_finding

CAMERAS = """
cameras:
  - id: cam-1
    name: Wenhua Rd east
    source: rtsp://admin:secret@10.0.0.5/stream
    location: {lat: 30.25, lon: 120.16}
    zones:
      - name: sidewalk
        polygon: [[0, 0], [100, 0], [100, 100], [0, 100]]
        rule: no_occupation
        classes: [stall]
"""


@pytest.fixture
def place(tmp_path):
    evidence, keys = tmp_path / "evidence", tmp_path / "keys"
    common = ["--db", f"sqlite:///{tmp_path / 'cases.db'}", "--evidence", str(evidence), "--keys", str(keys)]
    (tmp_path / "cameras.yaml").write_text(CAMERAS)
    vault = Vault(evidence, keys)
    now = datetime.now(UTC) - timedelta(hours=1)
    packages = [seal_finding(vault, started_at=now), seal_finding(vault, started_at=now + timedelta(minutes=20))]
    vault.close()
    return tmp_path, common, packages


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_case_from_filing_to_a_verified_history(place, capsys):
    tmp_path, common, packages = place
    assert _run(capsys, "db", "upgrade", "--db", common[1])[0] == 0
    code, out, _ = _run(capsys, "cases", "register", *common, "--cameras", str(tmp_path / "cameras.yaml"))
    assert code == 0 and "registered camera cam-1 with zones sidewalk" in out
    assert _run(capsys, "cases", "user", *common, "li", "--role", "officer")[0] == 0
    code, out, _ = _run(capsys, "cases", "file", *common)
    year = datetime.now(UTC).astimezone().year
    assert code == 0 and out.count("case CG-") == 2 and "opened" in out and "joined" in out
    number = out.split("case ")[1].split()[0]
    assert number.startswith("CG-") and str(year - 1) <= number[3:7] <= str(year + 1)
    code, out, _ = _run(capsys, "cases", "step", *common, number, "confirm", "--actor", "li")
    assert code == 0 and "pending_review -> confirmed" in out
    code, out, _ = _run(capsys, "cases", "show", *common, number)
    assert code == 0 and "confirm" in out and "history verified" in out
    code, out, _ = _run(capsys, "cases", "list", *common, "--state", "confirmed")
    assert code == 0 and number in out and "1 case(s)" in out
    code, out, _ = _run(capsys, "cases", "check", *common)
    assert code == 0 and "invariants hold" in out
    code, out, _ = _run(capsys, "cases", "kpi", *common, "--by", "camera")
    assert code == 0 and "cam-1" in out
    code, out, _ = _run(capsys, "cases", "export", *common, number, "--out", str(tmp_path / "casefile"))
    assert code == 0 and (tmp_path / "casefile" / "case-file.html").is_file()
    bundle = tmp_path / "one.zip"
    code, out, _ = _run(capsys, "evidence", "export", packages[0], "--out", str(bundle), "--actor", "zhao", *common)
    assert code == 0 and bundle.is_file()
    code, out, _ = _run(capsys, "evidence", "export", number, "--out", str(tmp_path / "again"), *common)
    assert code == 0 and (tmp_path / "again" / "case-file.html").is_file()
    code, out, _ = _run(capsys, "cases", "show", *common, number)
    assert "confirm  by li" in out and "export   by zhao" in out


def test_check_fails_while_a_sealed_package_has_no_case(place, capsys):
    tmp_path, common, packages = place
    _run(capsys, "cases", "register", *common, "--cameras", str(tmp_path / "cameras.yaml"))
    code, out, _ = _run(capsys, "cases", "check", *common)
    assert code == 1 and "sealed packages without a case: 2" in out and packages[0] in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cases", "show", "CG-2026-424242"], "no case numbered 'CG-2026-424242'"),
        (["cases", "step", "CG-2026-424242", "confirm", "--actor", "li"], "no case numbered"),
        (["cases", "file", "ab" * 32], "cannot be read from the evidence store"),
    ],
)
def test_bad_requests_end_with_a_one_line_reason(place, capsys, argv, message):
    _, common, _ = place
    code, _, err = _run(capsys, *argv[:2], *common, *argv[2:])
    assert code == 1 and message in err and "Traceback" not in err


def test_an_unknown_camera_is_named_and_its_package_stays_unfiled(place, capsys):
    _, common, packages = place
    code, _, err = _run(capsys, "cases", "file", *common, packages[0])
    assert code == 1 and "camera 'cam-1', which is not registered" in err


def test_a_malformed_policy_file_is_refused(place, capsys):
    tmp_path, common, _ = place
    (tmp_path / "policy.yaml").write_text("agency: cg\nmerge_window_hourz: 2\n")
    code, _, err = _run(capsys, "cases", "list", *common, "--policy", str(tmp_path / "policy.yaml"))
    assert code == 1 and "agency" in err and "merge_window_hourz" in err


def test_a_recheck_from_new_footage_closes_a_rectified_case(tmp_path, capsys):
    import yaml

    from datasets.synthetic import SceneSpec, write_video
    from nonsite.analyze import synthetic_camera

    video = tmp_path / "look.mp4"
    truth = write_video(SceneSpec.distractor_only(seed=5, duration_s=2.0), video)
    camera = synthetic_camera("cam-r", truth, str(video))
    (tmp_path / "cam.yaml").write_text(yaml.safe_dump({"cameras": [camera.model_dump(mode="json")]}))
    common = [
        "--db",
        f"sqlite:///{tmp_path / 'cases.db'}",
        "--evidence",
        str(tmp_path / "ev"),
        "--keys",
        str(tmp_path / "k"),
    ]
    vault = Vault(tmp_path / "ev", tmp_path / "k")
    package = seal_finding(vault, camera="cam-r", zone="street", started_at=datetime.now(UTC) - timedelta(hours=2))
    vault.close()
    _run(capsys, "cases", "register", *common, "--cameras", str(tmp_path / "cam.yaml"))
    _run(capsys, "cases", "user", *common, "li", "--role", "officer")
    number = _run(capsys, "cases", "file", *common, package)[1].split("case ")[1].split()[0]
    _run(capsys, "cases", "step", *common, number, "confirm", "--actor", "li")
    _run(capsys, "cases", "step", *common, number, "warn", "--actor", "li", "--days", "1")
    os.utime(video)  # the new footage is taken after the warning (file sources stamp frames from the file time)
    args = ["--cameras", str(tmp_path / "cam.yaml"), "--source", str(video), "--out", str(tmp_path / "look")]
    code, out, err = _run(capsys, "cases", "recheck", *common, number, *args)
    assert code == 0, err
    assert "gone: rectified and closed" in out
    code, out, _ = _run(capsys, "cases", "show", *common, number)
    assert "closed  (version" in out and "recheck" in out and "history verified" in out


def test_a_user_given_a_password_can_log_in_and_a_camera_gets_a_device_token(place, capsys, monkeypatch):
    import io

    from api.accounts import login, resolve
    from cases.db import Database

    tmp_path, common, _ = place
    _run(capsys, "cases", "register", *common, "--cameras", str(tmp_path / "cameras.yaml"))
    monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\n"))
    code, out, _ = _run(capsys, "cases", "user", *common, "li", "--role", "officer", "--password-stdin")
    assert code == 0 and "can log in" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = _run(capsys, "cases", "user", *common, "li", "--role", "officer", "--password-stdin")
    assert code != 0 and "at least 10 characters" in err
    code, out, err = _run(capsys, "cases", "device-token", *common, "cam-1", "--label", "box-3")
    assert code == 0 and "shown once" in err
    db = Database(common[1])
    try:
        assert login(db, username="li", password="a long passphrase", hours=1).principal.role == "officer"
        device = resolve(db, token=out.strip())
        assert device is not None and (device.kind, device.camera_id) == ("device", "cam-1")
    finally:
        db.close()
    code, _, err = _run(capsys, "cases", "device-token", *common, "cam-9")
    assert code != 0 and "no camera 'cam-9'" in err


def test_premises_are_imported_and_listed_and_a_bad_file_names_its_rows(place, capsys):
    tmp_path, common, _ = place
    _run(capsys, "cases", "register", *common, "--cameras", str(tmp_path / "cameras.yaml"))
    good = tmp_path / "premises.csv"
    good.write_text("编号,名称,街道,风险等级,监控区域\nR-1,老王面馆,文化街道,B,cam-1:sidewalk\n", encoding="utf-8")
    code, out, _ = _run(capsys, "cases", "import-premises", *common, str(good), "--dry-run")
    assert code == 0 and "1 would be created" in out
    code, out, _ = _run(capsys, "cases", "import-premises", *common, str(good))
    assert code == 0 and "1 created" in out
    code, out, _ = _run(capsys, "cases", "premises", *common)
    assert code == 0 and "R-1" in out and "老王面馆" in out and "no cases" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("编号,名称,街道,风险等级\nR-2,,文化街道,Q\n", encoding="utf-8")
    code, _, err = _run(capsys, "cases", "import-premises", *common, str(bad))
    assert code == 1 and "row 2, 名称" in err and "row 2, 风险等级" in err and "nothing was imported" in err
