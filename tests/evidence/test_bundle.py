"""Bundles verify offline, and every kind of tampering is caught and named."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from evidence.bundle import export_bundle, verify_bundle
from evidence.canonical import canonical_json
from evidence.package import PackageFile
from evidence.vault import Vault
from tests.evidence.test_package import FINDING


def finding(kind: str = "occupation") -> dict:
    return {**FINDING, "violation": {**FINDING["violation"], "kind": kind}}


def package_files(tag: bytes) -> list[PackageFile]:
    return [
        PackageFile("keyframe-000160.png", b"png " + tag, "image/png", "keyframe"),
        PackageFile("clip.mp4", b"mp4 " + tag, "video/mp4", "clip"),
    ]


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    v = Vault(tmp_path / "evidence", tmp_path / "keys")
    yield v
    v.close()


@pytest.fixture
def bundle(vault: Vault, tmp_path: Path) -> Path:
    vault.seal(finding("fume"), package_files(b"other"))
    logged = vault.seal(finding(), package_files(b"one"))
    vault.seal(finding("construction"), package_files(b"later"))
    return export_bundle(vault, logged.package.package_id, tmp_path / "bundle.zip")


def failed(path: Path) -> list[str]:
    return [c.name for c in verify_bundle(path) if not c.ok]


def rewrite(path: Path, out: Path, *, drop=(), replace=None, add=None) -> Path:
    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            if name in drop:
                continue
            dst.writestr(name, replace.get(name, src.read(name)))
        for name, data in add.items():
            dst.writestr(name, data)
    return out


def test_a_fresh_bundle_verifies_every_check(bundle):
    checks = verify_bundle(bundle)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    names = {c.name for c in checks}
    assert {"package id", "manifest signature", "log leaf", "checkpoint signature", "inclusion proof"} <= names
    assert {"file clip.mp4", "file keyframe-000160.png"} <= names


def test_sealing_again_after_a_crash_gives_the_same_leaf(vault):
    first = vault.seal(finding(), package_files(b"x"))
    package_id = first.package.package_id
    # the crash: the leaf was appended, its index never written; the intent says so
    (vault.store.root / "packages" / f"{package_id}.log.json").unlink()
    (vault.root / "log" / "seal-intent.json").write_text(json.dumps({"package_id": package_id, "size": 0}))
    vault.append_record({"type": "case.transition", "case": "CG-2026-000001"})  # another process appends
    again = vault.seal(finding(), package_files(b"x"))
    assert again.leaf_index == first.leaf_index
    assert vault.log.size == 2, "the package is not logged twice"
    assert not (vault.root / "log" / "seal-intent.json").exists()


def test_a_seal_interrupted_before_its_append_is_logged_by_the_next_seal(vault):
    (vault.root / "log" / "seal-intent.json").write_text(json.dumps({"package_id": "0" * 64, "size": 0}))
    logged = vault.seal(finding(), package_files(b"y"))
    assert logged.leaf_index == 0 and vault.log.size == 1


def test_flipping_one_byte_of_a_file_is_caught(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as z:
        data = bytearray(z.read("files/clip.mp4"))
    data[0] ^= 1
    assert failed(rewrite(bundle, tmp_path / "t.zip", replace={"files/clip.mp4": bytes(data)})) == ["file clip.mp4"]


def test_a_dropped_or_added_file_is_caught(bundle, tmp_path):
    assert failed(rewrite(bundle, tmp_path / "a.zip", drop=("files/clip.mp4",))) == ["file clip.mp4"]
    assert failed(rewrite(bundle, tmp_path / "b.zip", add={"files/extra.png": b"x"})) == ["file extra.png"]


def test_keyframes_swapped_between_bundles_are_caught(vault, bundle, tmp_path):
    other_id = vault.seal(finding("fume"), package_files(b"other")).package.package_id
    other = export_bundle(vault, other_id, tmp_path / "other.zip")
    with zipfile.ZipFile(other) as z:
        foreign = z.read("files/keyframe-000160.png")
    swapped = rewrite(bundle, tmp_path / "s.zip", replace={"files/keyframe-000160.png": foreign})
    assert failed(swapped) == ["file keyframe-000160.png"]


def test_a_rewritten_manifest_field_is_caught(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as z:
        manifest = json.loads(z.read("manifest.json"))
    manifest["violation"]["kind"] = "fume"
    forged = rewrite(bundle, tmp_path / "m.zip", replace={"manifest.json": canonical_json(manifest)})
    assert {"package id", "manifest signature", "log leaf"} <= set(failed(forged))


def test_a_replayed_old_checkpoint_does_not_cover_the_package(vault, tmp_path):
    old = vault.publish_checkpoint()  # signed and stamped before the package was logged
    logged = vault.seal(finding(), package_files(b"late"))
    with pytest.raises(ValueError, match="does not cover leaf"):
        export_bundle(vault, logged.package.package_id, tmp_path / "x.zip", checkpoint=old)
    good = export_bundle(vault, logged.package.package_id, tmp_path / "good.zip")
    with zipfile.ZipFile(tmp_path / "good.zip") as z:
        bundle = json.loads(z.read("bundle.json"))
    # splice the old (validly signed) checkpoint into the new bundle
    bundle["checkpoint_signature"] = old.checkpoint.signature.to_json()
    replayed = rewrite(
        good,
        tmp_path / "r.zip",
        replace={
            "checkpoint.json": canonical_json(old.checkpoint.body),
            "bundle.json": canonical_json(bundle),
            "timestamp.tsr": old.token,
        },
    )
    assert failed(replayed) == ["inclusion proof"]


def test_a_rewritten_log_is_caught(vault, bundle, tmp_path):
    with zipfile.ZipFile(bundle) as z:
        checkpoint = json.loads(z.read("checkpoint.json"))
    checkpoint["root"] = "00" * 32  # a log rewritten after the fact has another root
    assert set(
        failed(rewrite(bundle, tmp_path / "c.zip", replace={"checkpoint.json": canonical_json(checkpoint)}))
    ) == {
        "checkpoint signature",
        "inclusion proof",
        "timestamp",  # the authority stamped the original checkpoint, not this one
    }


def test_a_signature_by_another_key_is_caught(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as z:
        keys = json.loads(z.read("keys.json"))
    (key_id,) = keys
    keys[key_id] = "11" * 32
    assert "manifest signature" in failed(
        rewrite(bundle, tmp_path / "k.zip", replace={"keys.json": canonical_json(keys)})
    )


def test_what_is_not_a_bundle_says_so(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert [(c.name, c.ok) for c in verify_bundle(junk)] == [("bundle", False)]
    assert failed(rewrite(rewrite_base(tmp_path), tmp_path / "p.zip", drop=("keys.json",))) == ["bundle"]


def rewrite_base(tmp_path: Path) -> Path:
    path = tmp_path / "base.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name in ("bundle.json", "manifest.json", "checkpoint.json", "keys.json"):
            z.writestr(name, b"{}")
    return path


def test_keys_may_not_live_inside_the_evidence_root(tmp_path):
    with pytest.raises(ValueError, match="outside the evidence root"):
        Vault(tmp_path / "evidence", tmp_path / "evidence" / "keys")


def test_the_checkpoint_carries_a_timestamp_that_verifies(bundle):
    checks = {c.name: c for c in verify_bundle(bundle)}
    assert checks["timestamp"].ok and "nonsite local TSA" in checks["timestamp time"].detail


def test_a_timestamp_from_another_checkpoint_is_caught(vault, bundle, tmp_path):
    vault.seal(finding(), package_files(b"more"))
    other = vault.publish_checkpoint()
    swapped = rewrite(bundle, tmp_path / "t.zip", replace={"timestamp.tsr": other.token})
    assert failed(swapped) == ["timestamp"]


def test_a_corrupted_timestamp_token_is_caught(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as z:
        token = bytearray(z.read("timestamp.tsr"))
    token[-40] ^= 0x01  # inside the signature
    assert failed(rewrite(bundle, tmp_path / "f.zip", replace={"timestamp.tsr": bytes(token)})) == ["timestamp"]


def test_a_timestamp_against_other_roots_is_caught(bundle, tmp_path):
    from evidence.timestamp import LocalTimestampAuthority

    stranger = LocalTimestampAuthority.open_or_create(tmp_path / "stranger-tsa")
    checks = verify_bundle(bundle, tsa_roots=stranger.certificates_pem())
    assert [c.name for c in checks if not c.ok] == ["timestamp"]


def test_a_bundle_without_its_timestamp_is_named(bundle, tmp_path):
    stripped = rewrite(bundle, tmp_path / "s.zip", drop={"timestamp.tsr"})
    assert failed(stripped) == ["bundle"]
    assert "timestamp.tsr" in verify_bundle(stripped)[0].detail


def test_published_checkpoints_are_reused_until_the_log_grows(vault, bundle):
    first = vault.latest_checkpoint()
    assert first is not None and vault.publish_checkpoint() == first
    vault.seal(finding(), package_files(b"grow"))
    grown = vault.publish_checkpoint()
    assert grown.checkpoint.tree_size == first.checkpoint.tree_size + 1
    assert vault.latest_checkpoint() == grown
