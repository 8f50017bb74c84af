import base64
import hashlib
import shutil
import stat
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import rfc3161_client
from asn1crypto import core, tsp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from evidence.timestamp import (
    TSA_POLICY_OID,
    HttpTimestampAuthority,
    LocalTimestampAuthority,
    TimestampError,
    mask_url,
    serve_local_tsa,
    stamp,
    timestamp_gen_time,
    timestamp_request,
    verify_timestamp,
)

CHECKPOINT = b'{"size": 42, "root": "9f86d081884c7d659a2feaa0c55ad015"}'


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    return LocalTimestampAuthority.open_or_create(tmp_path_factory.mktemp("tsa") / "pki")


@pytest.fixture(scope="module")
def other_authority(tmp_path_factory):
    return LocalTimestampAuthority.open_or_create(tmp_path_factory.mktemp("other") / "pki", name="other TSA")


@pytest.fixture
def at():
    """A second shortly after the authorities' certificates start, as a TSA's clock would give."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


@pytest.fixture
def token(authority, at):
    return authority.respond(timestamp_request(CHECKPOINT), at=at)


def _root_pem(authority):
    return authority.root_certificate.public_bytes(Encoding.PEM)


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def _status(response_der):
    """The PKIStatusInfo, read without asn1crypto's TimeStampResp (which wrongly requires a token)."""
    return tsp.PKIStatusInfo.load(core.Sequence.load(response_der)[0].dump()).native


# --- the local authority's PKI ---------------------------------------------------------------


def test_the_pki_is_made_once_and_reused_with_keys_only_its_owner_can_read(tmp_path):
    first = LocalTimestampAuthority.open_or_create(tmp_path / "pki")
    assert stat.S_IMODE((tmp_path / "pki").stat().st_mode) == 0o700
    for key in ("root.key", "tsa.key"):
        assert stat.S_IMODE((tmp_path / "pki" / key).stat().st_mode) == 0o600
    again = LocalTimestampAuthority.open_or_create(tmp_path / "pki")
    assert again.root_certificate == first.root_certificate
    assert again.tsa_certificate == first.tsa_certificate
    assert again.certificates_pem() == first.certificates_pem()
    token = again.respond(timestamp_request(CHECKPOINT))
    assert verify_timestamp(token, CHECKPOINT, _root_pem(first)).ok


def test_the_certificates_carry_the_extensions_rfc3161_requires(authority):
    root, tsa = authority.root_certificate, authority.tsa_certificate
    constraints = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    eku = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    assert tsa.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert tsa.issuer == root.subject
    tsa.verify_directly_issued_by(root)
    assert tsa.not_valid_after_utc - tsa.not_valid_before_utc > timedelta(days=9 * 365)


def test_certificates_pem_holds_the_tsa_certificate_then_the_root(authority):
    assert x509.load_pem_x509_certificates(authority.certificates_pem()) == [
        authority.tsa_certificate,
        authority.root_certificate,
    ]


def test_a_private_key_readable_by_others_is_refused(tmp_path):
    LocalTimestampAuthority.open_or_create(tmp_path / "pki")
    (tmp_path / "pki" / "tsa.key").chmod(0o644)
    with pytest.raises(TimestampError, match="chmod 600"):
        LocalTimestampAuthority(tmp_path / "pki")


def test_a_tsa_certificate_from_another_root_is_refused(tmp_path):
    LocalTimestampAuthority.open_or_create(tmp_path / "a")
    LocalTimestampAuthority.open_or_create(tmp_path / "b")
    shutil.copy(tmp_path / "b" / "root.pem", tmp_path / "a" / "root.pem")
    with pytest.raises(TimestampError, match=r"not issued by root\.pem"):
        LocalTimestampAuthority(tmp_path / "a")


# --- tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize("trusted", ["root only", "tsa and root"])
def test_a_local_token_verifies_with_rfc3161_client_against_the_local_root(authority, token, at, trusted):
    roots_pem = _root_pem(authority) if trusted == "root only" else authority.certificates_pem()
    verdict = verify_timestamp(token, CHECKPOINT, roots_pem)
    assert verdict.ok, verdict.detail
    assert verdict.gen_time == at
    assert verdict.tsa == "CN=nonsite local TSA"
    assert isinstance(verdict.serial, int)
    assert verdict.detail.startswith("valid")


def test_the_token_is_stamped_at_the_given_time_for_the_requested_digest(token, at):
    assert timestamp_gen_time(token) == at
    info = rfc3161_client.decode_timestamp_response(token).tst_info
    assert info.message_imprint.message == hashlib.sha256(CHECKPOINT).digest()
    assert info.policy.dotted_string == TSA_POLICY_OID
    assert info.accuracy.seconds == 1


def test_the_nonce_round_trips(authority):
    request = timestamp_request(CHECKPOINT)
    nonce = tsp.TimeStampReq.load(request)["nonce"].native
    assert nonce is not None
    token = authority.respond(request)
    assert rfc3161_client.decode_timestamp_response(token).tst_info.nonce == nonce


def test_a_request_without_nonce_gets_a_token_without_one(authority):
    token = authority.respond(timestamp_request(CHECKPOINT, nonce=False))
    assert rfc3161_client.decode_timestamp_response(token).tst_info.nonce is None
    assert verify_timestamp(token, CHECKPOINT, _root_pem(authority)).ok


def test_serial_numbers_differ_between_tokens(authority):
    serials = {
        rfc3161_client.decode_timestamp_response(
            authority.respond(timestamp_request(CHECKPOINT))
        ).tst_info.serial_number
        for _ in range(5)
    }
    assert len(serials) == 5


def test_certificates_are_embedded_only_when_asked_for(authority):
    request = rfc3161_client.TimestampRequestBuilder(
        data=CHECKPOINT, hash_algorithm=rfc3161_client.HashAlgorithm.SHA256, cert_req=False
    ).build()
    token = authority.respond(request.as_bytes())
    assert rfc3161_client.decode_timestamp_response(token).signed_data.certificates == set()
    assert verify_timestamp(token, CHECKPOINT, authority.certificates_pem()).ok
    assert not verify_timestamp(token, CHECKPOINT, _root_pem(authority)).ok  # nothing names the TSA's key


def test_a_naive_time_is_refused(authority):
    with pytest.raises(ValueError, match="timezone-aware"):
        authority.respond(timestamp_request(CHECKPOINT), at=datetime(2025, 1, 1))


# --- verification failures --------------------------------------------------------------------


def _assert_refused(verdict):
    assert not verdict.ok
    assert verdict.gen_time is None and verdict.serial is None
    assert verdict.detail and "\n" not in verdict.detail


def test_a_token_does_not_verify_for_other_data(authority, token):
    verdict = verify_timestamp(token, CHECKPOINT + b" ", _root_pem(authority))
    _assert_refused(verdict)
    assert "Mismatch between messages" in verdict.detail


def test_a_token_does_not_verify_under_another_authoritys_root(other_authority, token):
    verdict = verify_timestamp(token, CHECKPOINT, _root_pem(other_authority))
    _assert_refused(verdict)
    assert verdict.tsa == "CN=nonsite local TSA"  # the claimed signer, for the message


def test_a_byte_flipped_in_the_signature_breaks_the_token(authority, token):
    # The SignerInfo's signature is the last element of the response.
    _assert_refused(verify_timestamp(_flip(token, len(token) - 10), CHECKPOINT, _root_pem(authority)))


def test_a_byte_flipped_in_the_tstinfo_breaks_the_token(authority, token):
    signed_data = tsp.TimeStampResp.load(token)["time_stamp_token"]["content"]
    tst_info = signed_data["encap_content_info"]["content"].parsed
    serial = tst_info["serial_number"].dump()
    at = token.index(tst_info.dump()) + tst_info.dump().index(serial) + len(serial) - 1
    tampered = _flip(token, at)
    assert rfc3161_client.decode_timestamp_response(tampered).tst_info.serial_number != tst_info["serial_number"].native
    _assert_refused(verify_timestamp(tampered, CHECKPOINT, _root_pem(authority)))


def test_a_tampered_embedded_tsa_certificate_breaks_the_chain_and_never_names_the_tsa(authority, token):
    tsa_der = authority.tsa_certificate.public_bytes(Encoding.DER)
    subject = authority.tsa_certificate.subject.public_bytes()
    last_letter = token.index(tsa_der) + tsa_der.index(subject) + len(subject) - 1
    tampered = _flip(token, last_letter)  # "CN=nonsite local TSA" becomes "CN=nonsite local TS@"
    _assert_refused(verify_timestamp(tampered, CHECKPOINT, _root_pem(authority)))
    # Given the TSA certificate, the signature is checked with it, and it names the TSA.
    verdict = verify_timestamp(tampered, CHECKPOINT, authority.certificates_pem())
    assert verdict.ok and verdict.tsa == "CN=nonsite local TSA"


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not DER at all", id="garbage"),
        pytest.param(b"\x30\x03\x02\x01\x00", id="granted-without-token"),
        pytest.param("half", id="truncated-half"),
        pytest.param("less-one", id="truncated-by-one"),
        pytest.param("trailing", id="trailing-byte"),
    ],
)
def test_malformed_responses_give_a_failed_verdict_not_an_exception(authority, token, response):
    if isinstance(response, str):
        response = {"half": token[: len(token) // 2], "less-one": token[:-1], "trailing": token + b"\x00"}[response]
    _assert_refused(verify_timestamp(response, CHECKPOINT, _root_pem(authority)))


def test_unusable_roots_are_the_callers_error(authority, token):
    with pytest.raises(TimestampError, match="no readable PEM"):
        verify_timestamp(token, CHECKPOINT, b"not PEM")
    tsa_only = authority.tsa_certificate.public_bytes(Encoding.PEM)
    with pytest.raises(TimestampError, match="no self-signed"):
        verify_timestamp(token, CHECKPOINT, tsa_only)


# --- rejections ------------------------------------------------------------------------------


def _request(algorithm="sha256", digest=None, policy=None):
    digest = digest if digest is not None else hashlib.new(algorithm, CHECKPOINT).digest()
    fields = {
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": algorithm}, "hashed_message": digest},
    }
    if policy:
        fields["req_policy"] = policy
    return tsp.TimeStampReq(fields).dump()


@pytest.mark.parametrize(
    ("request_der", "fail_info"),
    [
        pytest.param(b"\x00\x01garbage", "bad_data_format", id="not-DER"),
        pytest.param(b"", "bad_data_format", id="empty"),
        pytest.param(_request("sha1"), "bad_alg", id="sha1"),
        pytest.param(_request("md5"), "bad_alg", id="md5"),
        pytest.param(_request(digest=b"short"), "bad_data_format", id="digest-too-short"),
        pytest.param(_request(policy="1.2.3.4"), "unaccepted_policy", id="other-policy"),
    ],
)
def test_a_bad_request_gets_a_rejection_not_an_exception(authority, request_der, fail_info):
    response = authority.respond(request_der)
    status = _status(response)
    assert status["status"] == "rejection"
    assert status["fail_info"] == {fail_info}
    assert rfc3161_client.decode_timestamp_response(response).status == rfc3161_client.PKIStatus.REJECTION
    verdict = verify_timestamp(response, CHECKPOINT, _root_pem(authority))
    _assert_refused(verdict)
    assert fail_info in verdict.detail


def test_sha384_and_sha512_requests_are_granted(authority):
    for algorithm in ("sha384", "sha512"):
        assert _status(authority.respond(_request(algorithm)))["status"] == "granted"


def test_a_time_outside_the_tsa_certificate_is_rejected(authority):
    response = authority.respond(timestamp_request(CHECKPOINT), at=datetime(2000, 1, 1, tzinfo=UTC))
    assert _status(response)["fail_info"] == {"time_not_available"}
    with pytest.raises(TimestampError, match="time_not_available"):
        timestamp_gen_time(response)


# --- stamp and HTTP --------------------------------------------------------------------------


@pytest.fixture
def local_tsa_url(authority):
    server, url = serve_local_tsa(authority)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def test_stamp_over_http_against_the_served_local_tsa(authority, local_tsa_url):
    assert local_tsa_url.startswith("http://127.0.0.1:")
    response = stamp(HttpTimestampAuthority(local_tsa_url), CHECKPOINT)
    verdict = verify_timestamp(response, CHECKPOINT, _root_pem(authority))
    assert verdict.ok, verdict.detail
    assert abs(verdict.gen_time - datetime.now(UTC)) < timedelta(minutes=1)


def test_stamp_works_with_the_local_authority_directly(authority):
    assert verify_timestamp(stamp(authority, CHECKPOINT), CHECKPOINT, _root_pem(authority)).ok


def test_the_served_tsa_answers_only_posts_of_timestamp_queries(local_tsa_url):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as get:
        opener.open(local_tsa_url, timeout=5)
    assert get.value.code == 405
    get.value.close()
    post = urllib.request.Request(local_tsa_url, data=b"x", headers={"Content-Type": "text/plain"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as wrong_type:
        opener.open(post, timeout=5)
    assert wrong_type.value.code == 415
    wrong_type.value.close()


@contextmanager
def _fake_tsa(status: int, content_type: str, body: bytes = b"") -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A server on 127.0.0.1 answering every POST the same way; yields its URL and the headers it saw."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(dict(self.headers))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "content_type", "message"),
    [
        (500, "text/plain", "HTTP 500"),
        (200, "text/html", "answered text/html, not application/timestamp-reply"),
    ],
)
def test_a_failing_tsa_server_raises_naming_the_url(status, content_type, message):
    with (
        _fake_tsa(status, content_type, b"<html>oops</html>") as (url, _),
        pytest.raises(TimestampError, match=message) as error,
    ):
        stamp(HttpTimestampAuthority(url, timeout=5), CHECKPOINT)
    assert url in str(error.value)


def test_credentials_in_the_url_are_sent_as_basic_auth_and_masked(authority):
    with _fake_tsa(503, "text/plain") as (url, seen):
        with_credentials = url.replace("http://", "http://alice:s3cret@")
        tsa = HttpTimestampAuthority(with_credentials, timeout=5)
        with pytest.raises(TimestampError) as error:
            tsa.respond(timestamp_request(CHECKPOINT))
    assert "s3cret" not in str(error.value) and "alice" not in str(error.value)
    assert "***@127.0.0.1" in str(error.value)
    assert "s3cret" not in repr(tsa)
    assert seen[0]["Authorization"] == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert seen[0]["Content-Type"] == "application/timestamp-query"


def test_an_unreachable_tsa_raises_naming_the_url():
    with _fake_tsa(200, "application/timestamp-reply") as (url, _):
        pass  # the server is gone: nothing listens on its port any more
    with pytest.raises(TimestampError, match="unreachable") as error:
        stamp(HttpTimestampAuthority(url, timeout=5), CHECKPOINT)
    assert url in str(error.value)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://tsa.example/", "http:///no-host"])
def test_only_http_urls_are_accepted(url):
    with pytest.raises(ValueError, match="http"):
        HttpTimestampAuthority(url)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://tsa.example/tsr", "https://tsa.example/tsr"),
        ("https://u:p@tsa.example:8443/tsr", "https://***@tsa.example:8443/tsr"),
        ("https://token@tsa.example/", "https://***@tsa.example/"),
    ],
)
def test_mask_url_hides_credentials(url, masked):
    assert mask_url(url) == masked


class _Replaying:
    """A TSA that ignores the request and answers with a response made earlier."""

    def __init__(self, response: bytes) -> None:
        self.response = response

    def respond(self, request_der: bytes) -> bytes:
        return self.response


def test_stamp_refuses_a_replayed_response(authority):
    old = authority.respond(timestamp_request(CHECKPOINT))
    with pytest.raises(TimestampError, match="nonce"):
        stamp(_Replaying(old), CHECKPOINT)


def test_stamp_refuses_a_token_for_other_data(authority):
    other = authority.respond(timestamp_request(b"something else"))
    with pytest.raises(TimestampError, match="another digest"):
        stamp(_Replaying(other), CHECKPOINT)


def test_stamp_raises_on_a_rejection(authority):
    with pytest.raises(TimestampError, match=r"refused the request: rejection \[bad_data_format\]"):
        stamp(_Replaying(authority.respond(b"junk")), CHECKPOINT)


def test_empty_data_cannot_be_timestamped():
    with pytest.raises(ValueError, match="empty"):
        timestamp_request(b"")


# --- an independent verifier -----------------------------------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_ts_verify_accepts_the_token_and_refuses_other_data(authority, token, tmp_path):
    (tmp_path / "checkpoint").write_bytes(CHECKPOINT)
    (tmp_path / "other").write_bytes(CHECKPOINT + b" ")
    (tmp_path / "token.tsr").write_bytes(token)
    (tmp_path / "root.pem").write_bytes(_root_pem(authority))

    def openssl_verify(data_file):
        command = ["openssl", "ts", "-verify", "-data", str(data_file), "-in", str(tmp_path / "token.tsr")]
        command += ["-CAfile", str(tmp_path / "root.pem")]
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)

    good = openssl_verify(tmp_path / "checkpoint")
    assert good.returncode == 0 and "Verification: OK" in good.stdout, good.stdout + good.stderr
    bad = openssl_verify(tmp_path / "other")
    assert bad.returncode != 0 and "Verification: FAILED" in bad.stdout
