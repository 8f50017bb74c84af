import zipfile

from evidence.bundle import export_bundle
from evidence.vault import Vault
from nonsite.cli import main
from tests.evidence.test_bundle import finding, package_files


def test_verify_passes_a_good_bundle_and_names_the_first_failure_of_a_bad_one(tmp_path, capsys):
    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    logged = vault.seal(finding(), package_files(b"cli"))
    bundle = export_bundle(vault, logged.package.package_id, tmp_path / "b.zip")
    vault.close()
    assert main(["verify", str(bundle)]) == 0
    assert "verified: every check passed" in capsys.readouterr().out
    tampered = tmp_path / "t.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(tampered, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data + b"!" if name == "files/clip.mp4" else data)
    assert main(["verify", str(tampered)]) == 1
    assert "FAILED at file clip.mp4" in capsys.readouterr().err


def test_exporting_an_unknown_package_names_it(tmp_path, capsys):
    vault = ["--evidence", str(tmp_path / "evidence"), "--keys", str(tmp_path / "keys")]
    vault += ["--db", f"sqlite:///{tmp_path / 'cases.db'}"]
    assert main(["evidence", "export", "ab" * 32, "--out", str(tmp_path / "b.zip"), *vault]) == 1
    assert f"no logged package {'ab' * 32}" in capsys.readouterr().err


def test_an_export_is_recorded_in_the_custody_log(tmp_path):
    vault_args = ["--evidence", str(tmp_path / "evidence"), "--keys", str(tmp_path / "keys")]
    vault_args += ["--db", f"sqlite:///{tmp_path / 'cases.db'}"]
    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    package_id = vault.seal(finding(), package_files(b"custody")).package.package_id
    vault.close()
    args = ["evidence", "export", package_id, "--out", str(tmp_path / "b.zip"), "--actor", "officer-7"]
    assert main([*args, "--reason", "case file", *vault_args]) == 0
    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    [event] = vault.custody_report(package_id)
    vault.close()
    assert (event.actor, event.action, event.reason) == ("officer-7", "export", "case file")


def test_checkpoints_and_their_consistency_from_the_command_line(tmp_path, capsys):
    vault_args = ["--evidence", str(tmp_path / "evidence"), "--keys", str(tmp_path / "keys")]
    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    vault.seal(finding(), package_files(b"one"))
    vault.close()
    assert main(["evidence", "checkpoint", "--out", str(tmp_path / "old.json"), *vault_args]) == 0
    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    vault.seal(finding("fume"), package_files(b"two"))
    vault.close()
    assert main(["evidence", "checkpoint", "--out", str(tmp_path / "new.json"), *vault_args]) == 0
    capsys.readouterr()
    old, new = str(tmp_path / "old.json"), str(tmp_path / "new.json")
    assert main(["evidence", "consistency", old, new, *vault_args]) == 0
    out = capsys.readouterr().out
    assert "consistent" in out
    assert "ok   timestamp of old.json" in out and "ok   timestamp of new.json" in out
    assert main(["evidence", "consistency", new, old, *vault_args]) == 1
    assert "FAILED at order" in capsys.readouterr().err


def test_verify_pins_the_time_stamping_authority_when_told(tmp_path, capsys):
    from evidence.timestamp import LocalTimestampAuthority

    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    logged = vault.seal(finding(), package_files(b"pin"))
    bundle = export_bundle(vault, logged.package.package_id, tmp_path / "b.zip")
    vault.close()
    ours = tmp_path / "ours.pem"
    ours.write_bytes(LocalTimestampAuthority.open_or_create(tmp_path / "keys" / "tsa").certificates_pem())
    theirs = tmp_path / "theirs.pem"
    theirs.write_bytes(LocalTimestampAuthority.open_or_create(tmp_path / "other-tsa").certificates_pem())
    assert main(["verify", str(bundle)]) == 0
    assert "time-stamped under root" in capsys.readouterr().out
    assert main(["verify", str(bundle), "--tsa-roots", str(ours)]) == 0
    capsys.readouterr()
    assert main(["verify", str(bundle), "--tsa-roots", str(theirs)]) == 1
    assert "FAILED at timestamp" in capsys.readouterr().err


def test_checkpoints_are_published_at_an_interval(tmp_path, capsys):
    vault_args = ["--evidence", str(tmp_path / "evidence"), "--keys", str(tmp_path / "keys")]
    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    vault.seal(finding(), package_files(b"first"))
    vault.close()
    args = ["evidence", "publish", "--every", "0.01", "--count", "2", "--copy-to", str(tmp_path / "public")]
    assert main([*args, *vault_args]) == 0
    assert capsys.readouterr().out.count("checkpoint 000000000001.json") == 2  # the log did not grow in between
    assert sorted(p.name for p in (tmp_path / "public").iterdir()) == ["000000000001.json"]


def test_a_notary_authority_without_its_roots_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NONSITE_TSA_URL", "https://user:secret@tsa.example/tsr")
    monkeypatch.delenv("NONSITE_TSA_ROOTS", raising=False)
    vault_args = ["--evidence", str(tmp_path / "evidence"), "--keys", str(tmp_path / "keys")]
    assert main(["evidence", "publish", *vault_args]) == 1
    assert "NONSITE_TSA_URL needs NONSITE_TSA_ROOTS" in capsys.readouterr().err


def test_checkpoints_stamped_by_an_authority_over_http_verify(tmp_path, capsys, monkeypatch):
    from evidence.timestamp import LocalTimestampAuthority, serve_local_tsa

    notary = LocalTimestampAuthority.open_or_create(tmp_path / "notary", name="county notary TSA")
    server, url = serve_local_tsa(notary)
    try:
        roots = tmp_path / "notary.pem"
        roots.write_bytes(notary.certificates_pem())
        monkeypatch.setenv("NONSITE_TSA_URL", url)
        monkeypatch.setenv("NONSITE_TSA_ROOTS", str(roots))
        vault = Vault(tmp_path / "evidence", tmp_path / "keys", tsa_url=url, tsa_roots=roots)
        package = vault.seal(finding(), package_files(b"notary")).package.package_id
        vault.close()
        vault_args = ["--evidence", str(tmp_path / "evidence"), "--keys", str(tmp_path / "keys")]
        assert main(["evidence", "export", package, "--out", str(tmp_path / "b.zip"), *vault_args]) == 0
    finally:
        server.shutdown()
        server.server_close()
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "b.zip"), "--tsa-roots", str(roots)]) == 0
    assert "county notary TSA" in capsys.readouterr().out
    assert not (tmp_path / "keys" / "tsa").exists()  # no local authority was made


def test_a_bundle_verifies_with_nothing_but_itself(tmp_path):
    import shutil
    import subprocess
    import sys

    vault = Vault(tmp_path / "evidence", tmp_path / "keys")
    logged = vault.seal(finding(), package_files(b"alone"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bundle = export_bundle(vault, logged.package.package_id, elsewhere / "b.zip")
    vault.close()
    shutil.rmtree(tmp_path / "evidence")
    shutil.rmtree(tmp_path / "keys")  # no store, no log, no keys, no local authority
    result = subprocess.run(
        [sys.executable, "-m", "nonsite.cli", "verify", bundle.name],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ok   timestamp" in result.stdout and "verified: every check passed" in result.stdout
    assert sorted(p.name for p in elsewhere.iterdir()) == ["b.zip"]  # verifying wrote nothing
