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
    assert main(["evidence", "export", "ab" * 32, "--out", str(tmp_path / "b.zip"), *vault]) == 1
    assert f"no logged package {'ab' * 32}" in capsys.readouterr().err


def test_an_export_is_recorded_in_the_custody_log(tmp_path):
    vault_args = ["--evidence", str(tmp_path / "evidence"), "--keys", str(tmp_path / "keys")]
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
    assert "consistent" in capsys.readouterr().out
    assert main(["evidence", "consistency", new, old, *vault_args]) == 1
    assert "FAILED at order" in capsys.readouterr().err
