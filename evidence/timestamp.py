"""RFC 3161 trusted timestamps for the transparency log's checkpoints.

A timestamp authority (TSA) signs "this SHA-256 digest existed at this time"; the signed
token proves a checkpoint was not made later, by anyone. A deployment points nonsite at a
notary's TSA URL (`HttpTimestampAuthority`); the default is a `LocalTimestampAuthority`
with its own small PKI, so that the whole chain works offline and in tests.

Tokens are made with asn1crypto (the local TSA) and checked with rfc3161-client, which
verifies the CMS signature, the chain to a given root at the token's time, the critical
timeStamping extended key usage and the message imprint. Verification needs nothing but
the response DER, the data and the root certificates in PEM.

The local TSA folder holds `root.key`, `root.pem`, `tsa.key` and `tsa.pem`; like a signing
key ring it lives outside the evidence store, mode 0700, with private keys mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Protocol

import rfc3161_client
from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from evidence.errors import EvidenceError
from evidence.signing import read_private_key
from evidence.store import write_atomic

logger = logging.getLogger(__name__)

# The local authority's policy: a UUID-derived OID (ITU-T X.667, arc 2.25), which needs no
# registration and is nobody else's. An agency whose TSA stamps for others should use an
# OID under its own registered arc.
TSA_POLICY_OID = "2.25.329864478644051078775903903756352381875"

TIMESTAMP_QUERY = "application/timestamp-query"
TIMESTAMP_REPLY = "application/timestamp-reply"

_SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
_DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}
_ROOT_VALIDITY = timedelta(days=20 * 366)
_TSA_VALIDITY = timedelta(days=10 * 366)
_CLOCK_SKEW = timedelta(hours=1)  # certificates start a little in the past
_MAX_REQUEST_BYTES = 64 * 1024
_MAX_RESPONSE_BYTES = 1024 * 1024


class TimestampError(EvidenceError):
    """A timestamp cannot be made or read: TSA unreachable or refusing, bad PKI folder."""


class _RequestRejectedError(Exception):
    """A request the TSA refuses; becomes a rejection response, never leaves this module."""

    def __init__(self, fail_info: str, text: str) -> None:
        super().__init__(text)
        self.fail_info = fail_info
        self.text = text


class TimestampAuthority(Protocol):
    """Anything that answers a DER TimeStampReq with a DER TimeStampResp."""

    def respond(self, request_der: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class TimestampVerdict:
    """The outcome of verifying a timestamp response.

    `gen_time` and `serial` are set only when `ok`. `tsa` is the subject of the TSA
    certificate, the one given with the roots if any, else the token's own copy; "" when
    none can be read, and only a claim when not `ok`. `detail` says in one line what was
    checked or what failed.
    """

    ok: bool
    gen_time: datetime | None
    serial: int | None
    tsa: str
    detail: str


# --- the local authority ---------------------------------------------------------------


def _write_private_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_atomic(path, pem)  # the temporary file is made 0600, so the key is never readable by others
    os.chmod(path, 0o600)


def _load_private_key(path: Path) -> rsa.RSAPrivateKey:
    key = read_private_key(path, TimestampError, "TSA key")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TimestampError(f"{path}: expected an RSA private key, but got {type(key).__name__}")
    return key


def _load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as e:
        raise TimestampError(f"{path}: cannot read certificate: {e}") from e
    except ValueError as e:
        raise TimestampError(f"{path}: not a PEM certificate: {e}") from e


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _root_certificate(key: rsa.RSAPrivateKey, name: str, now: datetime) -> x509.Certificate:
    """A self-signed CA certificate that can sign only certificates (and CRLs)."""
    subject = _name(f"{name} root CA")
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + _ROOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _tsa_certificate(
    key: rsa.RSAPrivateKey, name: str, root: x509.Certificate, root_key: rsa.RSAPrivateKey, now: datetime
) -> x509.Certificate:
    """The TSA's leaf certificate: digital signatures for time stamping only (RFC 3161 §2.3)."""
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(root.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + _TSA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _new_serial() -> int:
    """A random positive 64-bit serial: unique without keeping a counter across processes."""
    return secrets.randbits(64) | 1


def _sorted_set(items: list[Any]) -> list[Any]:
    """`items` in DER SET OF order (by encoding), which strict DER parsers insist on."""
    return sorted(items, key=lambda item: item.dump())


def _signed_attributes(tst_info_der: bytes, tsa_cert: asn1_x509.Certificate) -> cms.CMSAttributes:
    """Content type, message digest and the RFC 5816 signing-certificate-v2 attribute."""
    ess_cert_id = {
        # hash_algorithm is left out: SHA-256 is its DEFAULT, which DER must omit
        "cert_hash": hashlib.sha256(tsa_cert.dump()).digest(),
        "issuer_serial": {
            "issuer": [asn1_x509.GeneralName(name="directory_name", value=tsa_cert.issuer)],
            "serial_number": tsa_cert.serial_number,
        },
    }
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(tst_info_der).digest()]}),
        cms.CMSAttribute({"type": "signing_certificate_v2", "values": [{"certs": [ess_cert_id]}]}),
    ]
    return cms.CMSAttributes(_sorted_set(attributes))


def _parse_request(request_der: bytes) -> tsp.TimeStampReq:
    """The request, checked; raises `_RequestRejectedError` with the RFC 3161 failure to report."""
    try:
        request = tsp.TimeStampReq.load(request_der, strict=True)
        _ = request.native  # asn1crypto parses lazily: force every field now
    except Exception as e:  # asn1crypto raises ValueError, TypeError, AttributeError... on hostile DER
        raise _RequestRejectedError("bad_data_format", f"not a DER TimeStampReq: {e}") from e
    if request["version"].native != "v1":
        raise _RequestRejectedError("bad_request", f"unsupported request version {request['version'].native}")
    imprint = request["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    if algorithm not in _DIGEST_SIZES:
        raise _RequestRejectedError("bad_alg", f"unsupported hash algorithm {algorithm}")
    if len(imprint["hashed_message"].native) != _DIGEST_SIZES[algorithm]:
        raise _RequestRejectedError("bad_data_format", f"a {algorithm} digest has {_DIGEST_SIZES[algorithm]} bytes")
    policy = request["req_policy"]
    if policy.native is not None and policy.dotted != TSA_POLICY_OID:
        raise _RequestRejectedError("unaccepted_policy", f"policy {policy.dotted} is not {TSA_POLICY_OID}")
    if request["extensions"].native:
        raise _RequestRejectedError("unaccepted_extensions", "request extensions are not supported")
    return request


class _TimeStampResp(core.Sequence):
    """RFC 3161 §2.4.2 TimeStampResp; asn1crypto 1.5's own wrongly requires the token, which a rejection lacks."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _rejection(fail_info: str, text: str) -> bytes:
    status = {"status": "rejection", "status_string": [text], "fail_info": tsp.PKIFailureInfo({fail_info})}
    return _TimeStampResp({"status": status}).dump()


class LocalTimestampAuthority:
    """A time-stamping authority run by nonsite itself, with its own root and TSA certificate.

    Its tokens prove as much as the secrecy of its keys and the honesty of the host clock:
    enough for offline deployments and tests; a notary's TSA proves more.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._root = _load_certificate(self.folder / "root.pem")
        self._tsa = _load_certificate(self.folder / "tsa.pem")
        self._key = _load_private_key(self.folder / "tsa.key")
        self._check_pki()
        self._asn1_root = asn1_x509.Certificate.load(self._root.public_bytes(serialization.Encoding.DER))
        self._asn1_tsa = asn1_x509.Certificate.load(self._tsa.public_bytes(serialization.Encoding.DER))

    @classmethod
    def open_or_create(cls, folder: Path, *, name: str = "nonsite local TSA") -> LocalTimestampAuthority:
        """The authority in `folder`, made with a new root and TSA certificate on first use."""
        folder = Path(folder)
        if not (folder / "tsa.pem").is_file():
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(folder, 0o700)
            cls._create(folder, name)
            logger.info("created a local timestamp authority in %s", folder)
        return cls(folder)

    @staticmethod
    def _create(folder: Path, name: str) -> None:
        # tsa.pem is written last: its presence marks a complete PKI, and a crash before
        # it makes the next open start over.
        now = datetime.now(UTC)
        root_key, tsa_key = _new_key(), _new_key()
        root = _root_certificate(root_key, name, now)
        tsa = _tsa_certificate(tsa_key, name, root, root_key, now)
        _write_private_key(folder / "root.key", root_key)
        _write_private_key(folder / "tsa.key", tsa_key)
        write_atomic(folder / "root.pem", root.public_bytes(serialization.Encoding.PEM))
        write_atomic(folder / "tsa.pem", tsa.public_bytes(serialization.Encoding.PEM))

    def _check_pki(self) -> None:
        """Refuse a folder whose TSA certificate is not the root's or not its key's."""
        try:
            self._tsa.verify_directly_issued_by(self._root)
        except (ValueError, TypeError, InvalidSignature) as e:
            raise TimestampError(f"{self.folder}: tsa.pem is not issued by root.pem: {e}") from e
        if self._tsa.public_key() != self._key.public_key():
            raise TimestampError(f"{self.folder}: tsa.key does not belong to tsa.pem")

    @property
    def root_certificate(self) -> x509.Certificate:
        return self._root

    @property
    def tsa_certificate(self) -> x509.Certificate:
        return self._tsa

    def certificates_pem(self) -> bytes:
        """The TSA certificate then the root, PEM: what a verifier needs besides the token."""
        return self._tsa.public_bytes(serialization.Encoding.PEM) + self._root.public_bytes(serialization.Encoding.PEM)

    def respond(self, request_der: bytes, *, at: datetime | None = None) -> bytes:
        """A DER TimeStampResp for `request_der`, stamped `at` (default now).

        A bad request gets a rejection response with an RFC 3161 failInfo, as a TSA
        answers, rather than an exception. `at` must be timezone-aware.
        """
        if at is not None and at.tzinfo is None:
            raise ValueError(f"at must be timezone-aware, but got naive {at.isoformat()}")
        try:
            request = _parse_request(request_der)
            gen_time = self._gen_time(at)
        except _RequestRejectedError as rejected:
            logger.warning("local TSA rejected a request (%s): %s", rejected.fail_info, rejected.text)
            return _rejection(rejected.fail_info, rejected.text)
        token = self._token(request, gen_time)
        return _TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()

    def _gen_time(self, at: datetime | None) -> datetime:
        """The time to stamp, whole seconds (accuracy is 1 s), inside the TSA certificate's validity."""
        gen_time = (at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        if not self._tsa.not_valid_before_utc <= gen_time <= self._tsa.not_valid_after_utc:
            raise _RequestRejectedError(
                "time_not_available", f"{gen_time.isoformat()} is outside the TSA certificate's validity"
            )
        return gen_time

    def _tst_info(self, request: tsp.TimeStampReq, gen_time: datetime) -> tsp.TSTInfo:
        return tsp.TSTInfo(
            {
                "version": "v1",
                "policy": TSA_POLICY_OID,
                "message_imprint": tsp.MessageImprint.load(request["message_imprint"].dump()),
                "serial_number": _new_serial(),
                "gen_time": gen_time,
                "accuracy": {"seconds": 1},
                "nonce": request["nonce"].native,
                "tsa": asn1_x509.GeneralName(name="directory_name", value=self._asn1_tsa.subject),
            }
        )

    def _token(self, request: tsp.TimeStampReq, gen_time: datetime) -> cms.ContentInfo:
        """The TimeStampToken: CMS SignedData over the TSTInfo, signed by the TSA key."""
        tst_info = self._tst_info(request, gen_time)
        signed_attrs = _signed_attributes(tst_info.dump(), self._asn1_tsa)
        # Sign the attributes as a SET (tag 0x31); in SignerInfo they are re-tagged [0].
        signature = self._key.sign(signed_attrs.dump(), padding.PKCS1v15(), hashes.SHA256())
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": {
                    "issuer_and_serial_number": {
                        "issuer": self._asn1_tsa.issuer,
                        "serial_number": self._asn1_tsa.serial_number,
                    }
                },
                "digest_algorithm": {"algorithm": "sha256"},
                "signed_attrs": signed_attrs,
                "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
                "signature": signature,
            }
        )
        signed_data: dict[str, Any] = {
            "version": "v3",  # encapsulated content is not id-data (RFC 5652 §5.1)
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "tst_info", "content": tst_info},
            "signer_infos": [signer_info],
        }
        if request["cert_req"].native:
            signed_data["certificates"] = _sorted_set([self._asn1_tsa, self._asn1_root])
        return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})


# --- the client side ---------------------------------------------------------------------


def _request(data: bytes, *, nonce: bool) -> rfc3161_client.TimeStampRequest:
    if not data:
        raise ValueError("cannot timestamp empty data")
    builder = rfc3161_client.TimestampRequestBuilder().data(data).hash_algorithm(rfc3161_client.HashAlgorithm.SHA256)
    return builder.nonce(nonce=nonce).cert_request(cert_request=True).build()


def timestamp_request(data: bytes, *, nonce: bool = True) -> bytes:
    """A DER TimeStampReq for the SHA-256 of `data`, asking for the TSA's certificates.

    The random nonce (on by default) lets the client tell this request's answer from a replayed one.
    """
    return _request(data, nonce=nonce).as_bytes()


def mask_url(url: str) -> str:
    """`url` with any user name and password replaced by ***, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"***@{host}"))


def _is_loopback(host: str | None) -> bool:
    return host in {"127.0.0.1", "::1", "localhost"}


class HttpTimestampAuthority:
    """A remote TSA reached by HTTP(S) POST, as RFC 3161 §3.4 describes.

    Credentials in the URL (`https://user:pass@tsa.example/`) are sent as HTTP Basic
    authentication and masked in every message. A loopback URL never goes through a proxy.
    """

    def __init__(self, url: str, timeout: float = 10) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"a TSA URL must be http(s)://host/..., but got {mask_url(url)!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, but got {timeout}")
        self.url = url
        self.timeout = timeout
        self._host = parts.hostname
        self._endpoint = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self._headers = {"Content-Type": TIMESTAMP_QUERY, "Accept": TIMESTAMP_REPLY}
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"

    def __repr__(self) -> str:
        return f"HttpTimestampAuthority({mask_url(self.url)!r}, timeout={self.timeout})"

    def _opener(self) -> urllib.request.OpenerDirector:
        if _is_loopback(self._host):
            return urllib.request.build_opener(urllib.request.ProxyHandler({}))
        return urllib.request.build_opener()

    def respond(self, request_der: bytes) -> bytes:
        """POST `request_der` and return the TSA's DER TimeStampResp, unchecked."""
        where = mask_url(self.url)
        request = urllib.request.Request(self._endpoint, data=request_der, headers=self._headers, method="POST")
        try:
            with self._opener().open(request, timeout=self.timeout) as reply:
                content_type = reply.headers.get_content_type()
                body: bytes = reply.read(_MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as e:
            e.close()
            raise TimestampError(f"TSA {where} answered HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise TimestampError(f"TSA {where} is unreachable: {reason}") from e
        if content_type != TIMESTAMP_REPLY:
            raise TimestampError(f"TSA {where} answered {content_type}, not {TIMESTAMP_REPLY}")
        if len(body) > _MAX_RESPONSE_BYTES:
            raise TimestampError(f"TSA {where} answered more than {_MAX_RESPONSE_BYTES} bytes")
        return body


def _status_text(response_der: bytes) -> str:
    """The status, status strings and failInfo of a response, read with asn1crypto."""
    try:
        status = _TimeStampResp.load(response_der)["status"].native
    except Exception as e:  # only for a message: any parse failure just makes it vaguer
        return f"unreadable status ({e})"
    fail_info = ",".join(sorted(str(bit) for bit in status["fail_info"] or ()))
    strings = "; ".join(str(text) for text in status["status_string"] or ())
    parts = (str(status["status"]), f"[{fail_info}]" if fail_info else "", strings)
    return " ".join(part for part in parts if part)


def _decode(response_der: bytes) -> rfc3161_client.TimeStampResponse:
    try:
        return rfc3161_client.decode_timestamp_response(response_der)
    except ValueError as e:
        raise TimestampError(f"not a DER TimeStampResp: {e}") from e


def stamp(authority: TimestampAuthority, data: bytes) -> bytes:
    """Have `authority` timestamp the SHA-256 of `data`; returns the checked DER response.

    Checks that the status is granted, that the token is for this digest and that it echoes
    this request's nonce. It does not check the signature: that needs the roots
    (`verify_timestamp`).
    """
    request = _request(data, nonce=True)
    response_der = authority.respond(request.as_bytes())
    response = _decode(response_der)
    if response.status != rfc3161_client.PKIStatus.GRANTED:
        raise TimestampError(f"the TSA refused the request: {_status_text(response_der)}")
    info = response.tst_info
    if (
        info.message_imprint.hash_algorithm != _SHA256_OID
        or info.message_imprint.message != hashlib.sha256(data).digest()
    ):
        raise TimestampError("the TSA's token is for another digest than the one requested")
    if info.nonce != request.nonce:
        raise TimestampError(f"the TSA's token echoes nonce {info.nonce}, not this request's {request.nonce}")
    logger.info(
        "timestamped %s at %s, serial %d", hashlib.sha256(data).hexdigest()[:16], info.gen_time, info.serial_number
    )
    return response_der


# --- verification ------------------------------------------------------------------------


def _trust(roots_pem: bytes) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """Self-signed certificates of `roots_pem` as roots, the others as intermediates."""
    try:
        certificates = x509.load_pem_x509_certificates(roots_pem)
    except ValueError as e:
        raise TimestampError(f"roots_pem holds no readable PEM certificate: {e}") from e
    roots = [c for c in certificates if c.subject == c.issuer]
    if not roots:
        raise TimestampError("roots_pem holds no self-signed (root) certificate")
    return roots, [c for c in certificates if c.subject != c.issuer]


def _embedded_certificates(response: rfc3161_client.TimeStampResponse) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(der) for der in response.signed_data.certificates]


def _signing_certificate(
    response: rfc3161_client.TimeStampResponse, candidates: list[x509.Certificate]
) -> x509.Certificate | None:
    """The certificate among `candidates` that the token's single SignerInfo names, if any."""
    (signer,) = response.signed_data.signer_infos
    for certificate in candidates:
        if certificate.issuer == signer.issuer and certificate.serial_number == signer.serial_number:
            return certificate
    return None


def _verifier(
    roots: list[x509.Certificate], others: list[x509.Certificate], tsa: x509.Certificate | None
) -> rfc3161_client.Verifier:
    builder = rfc3161_client.VerifierBuilder()
    for root in roots:
        builder = builder.add_root_certificate(root)
    for other in others:
        builder = builder.add_intermediate_certificate(other)
    if tsa is not None:
        builder = builder.tsa_certificate(tsa)
    return builder.build()


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _verdict(
    response_der: bytes, data: bytes, roots: list[x509.Certificate], others: list[x509.Certificate]
) -> TimestampVerdict:
    try:
        response = rfc3161_client.decode_timestamp_response(response_der)
    except ValueError as e:
        return TimestampVerdict(False, None, None, "", f"not a DER TimeStampResp: {_one_line(e)}")
    if response.status != rfc3161_client.PKIStatus.GRANTED:
        return TimestampVerdict(False, None, None, "", f"not granted: {_status_text(response_der)}")
    # A TSA certificate given in roots_pem is the one the signature is checked with, so it
    # names the TSA rather than the token's embedded copy. A token made without certReq
    # embeds none: rfc3161-client must then be told which given certificate is the TSA's.
    embedded = _embedded_certificates(response)
    signer = _signing_certificate(response, others) or _signing_certificate(response, embedded)
    tsa = signer.subject.rfc4514_string() if signer is not None else ""
    info = response.tst_info
    algorithm = info.message_imprint.hash_algorithm
    if algorithm != _SHA256_OID:
        return TimestampVerdict(False, None, None, tsa, f"the imprint uses {algorithm.dotted_string}, not SHA-256")
    try:
        _verifier(roots, others, None if embedded else signer).verify_message(response, data)
    except (rfc3161_client.VerificationError, ValueError) as e:
        return TimestampVerdict(False, None, None, tsa, f"rfc3161-client refused the token: {_one_line(e)}")
    gen_time = info.gen_time.astimezone(UTC)
    return TimestampVerdict(
        True, gen_time, info.serial_number, tsa, f"valid: the data's SHA-256 at {gen_time.isoformat()}"
    )


def verify_timestamp(response_der: bytes, data: bytes, roots_pem: bytes) -> TimestampVerdict:
    """Whether `response_der` is a valid timestamp of SHA-256(`data`) by a TSA under `roots_pem`.

    rfc3161-client checks the token signature, the chain to a root (at the token's time),
    the TSA certificate's critical timeStamping usage and the message imprint. `roots_pem`
    holds the trusted roots; any other certificate in it serves as an intermediate or as
    the TSA certificate (needed for tokens made without certReq). A bad token gives a
    verdict with `ok` False and never raises; only unusable `roots_pem` raises `TimestampError`.
    """
    roots, others = _trust(roots_pem)
    try:
        return _verdict(response_der, data, roots, others)
    except Exception as e:  # hostile DER makes the parsers raise KeyError, InvalidVersion...: all mean "bad token"
        logger.debug("timestamp verification failed on malformed input", exc_info=True)
        return TimestampVerdict(False, None, None, "", f"malformed token: {_one_line(e)}")


def timestamp_gen_time(response_der: bytes) -> datetime:
    """The time a granted response claims, UTC, without verifying it (see `verify_timestamp`)."""
    response = _decode(response_der)
    if response.status != rfc3161_client.PKIStatus.GRANTED:
        raise TimestampError(f"the response holds no token: {_status_text(response_der)}")
    try:
        return response.tst_info.gen_time.astimezone(UTC)
    except (ValueError, KeyError) as e:
        raise TimestampError(f"the response's TSTInfo is unreadable: {e}") from e


# --- serving the local authority over HTTP ---------------------------------------------------


def _handler_for(authority: LocalTimestampAuthority) -> type[BaseHTTPRequestHandler]:
    class TimestampHandler(BaseHTTPRequestHandler):
        """Answers RFC 3161 POSTs with `authority`; GET gets 405, other methods 501."""

        def do_POST(self) -> None:
            if self.headers.get_content_type() != TIMESTAMP_QUERY:
                self.send_error(415, f"expected {TIMESTAMP_QUERY}")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self.send_error(411, "Content-Length required")
                return
            if not 0 < length <= _MAX_REQUEST_BYTES:
                self.send_error(413, f"a request has 1 to {_MAX_REQUEST_BYTES} bytes")
                return
            reply = authority.respond(self.rfile.read(length))
            self.send_response(200)
            self.send_header("Content-Type", TIMESTAMP_REPLY)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def do_GET(self) -> None:
            self.send_error(405, "POST a TimeStampReq")

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("local TSA %s: " + format, self.address_string(), *args)

    return TimestampHandler


def serve_local_tsa(
    authority: LocalTimestampAuthority, host: str = "127.0.0.1", port: int = 0
) -> tuple[ThreadingHTTPServer, str]:
    """Serve `authority` over HTTP on `host`:`port` (0: any free port); returns the server and its URL.

    The server already runs on a daemon thread; stop it with `server.shutdown()` then
    `server.server_close()`. It speaks plain HTTP (IPv4): put TLS in front of it before
    exposing it beyond the host.
    """
    server = ThreadingHTTPServer((host, port), _handler_for(authority))
    bound_host, bound_port = server.server_address[:2]
    url = f"http://{bound_host!s}:{bound_port}/"
    threading.Thread(target=server.serve_forever, name=f"local-tsa-{bound_port}", daemon=True).start()
    logger.info("serving the local TSA of %s at %s", authority.folder, url)
    return server, url
