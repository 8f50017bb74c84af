"""Field evidence: an officer's photos and audio, uploaded in resumable chunks, sealed like
camera evidence with the officer as the device, and attached to a case."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import cv2
import numpy as np

from cases.casebook import Finding
from evidence.bundle import export_bundle, verify_bundle
from evidence.package import PackageFile, load_package
from tests.api.conftest import Deployment


def photo() -> bytes:
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def upload(deployment: Deployment, data: bytes, *, user: str = "officer-li", media_type: str = "image/jpeg") -> str:
    client, headers = deployment.client, deployment.login(user)
    declared = client.post(
        "/api/uploads",
        json={
            "filename": "IMG 0001.jpg",
            "media_type": media_type,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
        headers=headers,
    )
    assert declared.status_code == 201, declared.text
    upload_id = declared.json()["id"]
    for start in range(0, len(data), 4096):
        chunk = data[start : start + 4096]
        sent = client.patch(
            f"/api/uploads/{upload_id}", content=chunk, headers={**headers, "Upload-Offset": str(start)}
        )
        assert sent.status_code == 200, sent.text
    return upload_id


def test_a_dropped_upload_resumes_from_the_servers_offset(deployment: Deployment) -> None:
    client, headers = deployment.client, deployment.login("officer-li")
    data = photo()
    upload_id = client.post(
        "/api/uploads", json={"filename": "a.jpg", "media_type": "image/jpeg", "size": len(data)}, headers=headers
    ).json()["id"]
    client.patch(f"/api/uploads/{upload_id}", content=data[:5000], headers={**headers, "Upload-Offset": "0"})
    # the connection dropped mid-chunk; the client re-sends from where it thinks it was
    stale = client.patch(f"/api/uploads/{upload_id}", content=data[3000:], headers={**headers, "Upload-Offset": "3000"})
    assert stale.status_code == 409 and stale.headers["Upload-Offset"] == "5000"
    status = client.get(f"/api/uploads/{upload_id}", headers=headers).json()
    assert (status["offset"], status["complete"]) == (5000, False)
    done = client.patch(f"/api/uploads/{upload_id}", content=data[5000:], headers={**headers, "Upload-Offset": "5000"})
    assert done.json()["complete"] is True


def test_field_evidence_is_sealed_with_the_officer_as_device_and_verifies(deployment: Deployment, tmp_path) -> None:
    client, headers = deployment.client, deployment.login("officer-li")
    number = deployment.cases["cam-street"]
    ids = [upload(deployment, photo()), upload(deployment, b"ID3" + bytes(3000), media_type="audio/mpeg")]
    response = client.post(
        f"/api/cases/{number}/field-evidence",
        json={"uploads": ids, "captured_at": "2026-12-07T09:30:00+08:00", "note": "stall still there", "lat": 30.2},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    sealed = response.json()
    assert sealed["device"] == {"id": "officer:officer-li", "kind": "officer", "name": "Officer-Li"}
    assert [(f["name"], f["kind"]) for f in sealed["files"]] == [
        ("01-IMG_0001.jpg", "field-photo"),
        ("02-IMG_0001.jpg", "field-audio"),
    ]
    case = client.get(f"/api/cases/{number}", headers=headers).json()
    held = {e["package_id"]: e["role"] for e in case["evidence_packages"]}
    assert held[sealed["package_id"]] == "attachment"
    assert case["transitions"][-1]["action"] == "add_evidence" and case["transitions"][-1]["actor"] == "officer-li"
    bundle = export_bundle(deployment.vault, sealed["package_id"], tmp_path / "field.zip")
    assert all(check.ok for check in verify_bundle(bundle))
    assert client.get(f"/api/uploads/{ids[0]}", headers=headers).status_code == 404, "uploads go once sealed"


def test_uploads_are_refused_when_they_are_not_field_evidence_or_do_not_add_up(deployment: Deployment) -> None:
    client, headers = deployment.client, deployment.login("officer-li")
    exe = client.post(
        "/api/uploads",
        json={"filename": "x.exe", "media_type": "application/x-msdownload", "size": 10},
        headers=headers,
    )
    assert exe.status_code == 409 and "not field evidence" in exe.json()["detail"]
    huge = client.post(
        "/api/uploads", json={"filename": "v.mp4", "media_type": "video/mp4", "size": 1 << 40}, headers=headers
    )
    assert huge.status_code == 409 and "bytes" in huge.json()["detail"]
    small = client.post(
        "/api/uploads", json={"filename": "a.jpg", "media_type": "image/jpeg", "size": 10}, headers=headers
    )
    upload_id = small.json()["id"]
    past = client.patch(f"/api/uploads/{upload_id}", content=bytes(20), headers={**headers, "Upload-Offset": "0"})
    assert past.status_code == 409 and "past its declared 10" in past.json()["detail"]
    other = client.get(f"/api/uploads/{upload_id}", headers=deployment.login("officer-wang"))
    assert other.status_code == 404, "an upload is its officer's alone"


def test_an_upload_that_does_not_match_its_declared_hash_is_not_sealed(deployment: Deployment) -> None:
    client, headers = deployment.client, deployment.login("officer-li")
    data = photo()
    upload_id = client.post(
        "/api/uploads",
        json={"filename": "a.jpg", "media_type": "image/jpeg", "size": len(data), "sha256": "0" * 64},
        headers=headers,
    ).json()["id"]
    client.patch(f"/api/uploads/{upload_id}", content=data, headers={**headers, "Upload-Offset": "0"})
    number = deployment.cases["cam-street"]
    response = client.post(
        f"/api/cases/{number}/field-evidence",
        json={"uploads": [upload_id], "captured_at": "2026-12-07T09:30:00+08:00"},
        headers=headers,
    )
    assert response.status_code == 409 and "SHA-256" in response.json()["detail"]


def test_a_closed_case_takes_no_field_evidence(deployment: Deployment) -> None:
    client, headers = deployment.client, deployment.login("officer-li")
    number = deployment.cases["cam-kitchen"]
    version = client.get(f"/api/cases/{number}", headers=headers).json()["version"]
    client.post(
        f"/api/cases/{number}/steps",
        json={"action": "reject", "version": version, "reason_code": "steam"},
        headers=headers,
    )
    upload_id = upload(deployment, photo())
    response = client.post(
        f"/api/cases/{number}/field-evidence",
        json={"uploads": [upload_id], "captured_at": "2026-12-07T09:30:00+08:00"},
        headers=headers,
    )
    assert response.status_code == 409 and "rejected" in response.json()["detail"]


def test_field_evidence_sealed_before_a_crash_is_attached_by_heal(deployment: Deployment) -> None:
    number = deployment.cases["cam-site"]
    at = datetime(2026, 12, 7, 1, 0, tzinfo=UTC).isoformat()
    finding = {
        "device": {"id": "officer:officer-li", "kind": "officer", "name": "Li"},
        "place": {},
        "capture": {"started_at": at, "ended_at": at, "clock_source": "officer device"},
        "violation": {"kind": "construction", "zone": None, "started_at": at, "ended_at": at, "attach_to": number},
        "model": {},
        "rule": {"source": "field evidence"},
        "engine": {"name": "nonsite", "version": "test"},
    }
    package_id = deployment.vault.seal(
        finding, [PackageFile("01-a.jpg", photo(), "image/jpeg", "field-photo")]
    ).package.package_id
    package, _ = load_package(deployment.vault.store, package_id)
    assert Finding.from_manifest(package_id, package.manifest).camera_id is None, "an officer is not a camera"
    (filed,) = deployment.casebook.heal()
    assert (filed.package_id, filed.case_number, filed.joined) == (package_id, number, True)
