import json

import pytest

from evidence.canonical import canonical_json
from evidence.package import PackageError, PackageFile, build_manifest, load_package, seal
from evidence.signing import KeyRing
from evidence.store import ContentStore

FINDING = {
    "device": {"id": "cam-1", "name": "Jiefang Rd east"},
    "place": {"lat": 30.51, "lon": 114.33, "published_location": "notice 2026-17"},
    "capture": {"started_at": "2026-11-27T10:00:00+00:00", "clock_source": "ntp"},
    "violation": {"kind": "occupation", "zone": "sidewalk", "start_frame": 10, "end_frame": 310},
    "model": {"sha256": "ab" * 32, "name": "starter.onnx"},
    "rule": {"min_dwell_s": 600},
    "engine": {"name": "nonsite", "version": "0.1.0"},
}


def files():
    return [
        PackageFile("keyframe-000160.png", b"png bytes", "image/png", "keyframe"),
        PackageFile("clip.mp4", b"mp4 bytes", "video/mp4", "clip"),
    ]


def test_the_manifest_lists_every_file_with_its_hash(tmp_path):
    manifest = build_manifest(FINDING, files())
    assert list(manifest["files"]) == ["clip.mp4", "keyframe-000160.png"]
    assert manifest["files"]["clip.mp4"]["size"] == 9
    assert manifest["violation"]["kind"] == "occupation"


def test_a_sealed_package_is_stored_signed_and_reads_back(tmp_path):
    store, keys = ContentStore(tmp_path / "store"), KeyRing.open_or_create(tmp_path / "keys")
    sealed = seal(store, keys, FINDING, files())
    assert keys.verify(canonical_json(sealed.manifest), sealed.signature)
    again, contents = load_package(store, sealed.package_id)
    assert again.manifest == sealed.manifest
    assert contents["clip.mp4"] == b"mp4 bytes"


def test_sealing_twice_gives_the_same_package(tmp_path):
    store, keys = ContentStore(tmp_path / "store"), KeyRing.open_or_create(tmp_path / "keys")
    first, second = seal(store, keys, FINDING, files()), seal(store, keys, FINDING, files())
    assert first.package_id == second.package_id
    assert first.signature == second.signature
    assert len(list((tmp_path / "store" / "packages").iterdir())) == 1


def test_an_altered_file_is_caught_on_load(tmp_path):
    store, keys = ContentStore(tmp_path / "store"), KeyRing.open_or_create(tmp_path / "keys")
    sealed = seal(store, keys, FINDING, files())
    path = store.path_of(sealed.manifest["files"]["clip.mp4"]["sha256"])
    path.chmod(0o644)
    path.write_bytes(b"forged")
    with pytest.raises(Exception, match="no longer matches its hash"):
        load_package(store, sealed.package_id)


@pytest.mark.parametrize(
    ("finding", "package_files", "message"),
    [
        ({k: v for k, v in FINDING.items() if k != "model"}, files(), "missing model"),
        (FINDING, [], "at least one file"),
        (FINDING, files() + files()[:1], "must be unique"),
    ],
)
def test_incomplete_packages_are_refused(finding, package_files, message):
    with pytest.raises(PackageError, match=message):
        build_manifest(finding, package_files)


@pytest.mark.parametrize("name", ["../etc/passwd", ".hidden", "a/b.png", "", "x" * 200])
def test_file_names_cannot_escape_or_hide(name):
    with pytest.raises(PackageError, match="file name must be"):
        PackageFile(name, b"", "image/png", "keyframe")


def test_the_package_record_holds_only_the_id_and_signature(tmp_path):
    store, keys = ContentStore(tmp_path / "store"), KeyRing.open_or_create(tmp_path / "keys")
    sealed = seal(store, keys, FINDING, files())
    record = json.loads((tmp_path / "store" / "packages" / f"{sealed.package_id}.json").read_text())
    assert record == {"package_id": sealed.package_id, "signature": sealed.signature.to_json()}
