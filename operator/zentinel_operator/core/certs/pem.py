"""Reading certificates and keys from PEM (or DER) bytes, and naming them in messages.

Errors name the Secret key and what is wrong, never key material."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import NameOID

TLS_CRT = "tls.crt"
TLS_KEY = "tls.key"
CA_CRT = "ca.crt"
PEM_CERT = b"-----BEGIN CERTIFICATE-----"
PARSE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm)
_Ext = TypeVar("_Ext", bound=x509.ExtensionType)

EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "p256": ec.SECP256R1,
    "p384": ec.SECP384R1,
    "p521": ec.SECP521R1,
}


class CertificateError(ValueError):
    """A certificate, key or CA that cannot be used. The message never holds key material."""


def to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def to_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def load_certs(pem: bytes, what: str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, first one first; :class:`CertificateError` if none is readable."""
    if not pem.strip():
        raise CertificateError(f"{what} is empty")
    if PEM_CERT not in pem:
        raise CertificateError(f"{what} holds no PEM certificate")
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except PARSE_ERRORS:
        raise CertificateError(f"{what} holds a malformed PEM certificate") from None
    if not certs:  # pragma: no cover - load_pem_x509_certificates raises instead
        raise CertificateError(f"{what} holds no PEM certificate")
    for cert in certs:
        try:
            # Parsing is lazy: touch what the checks below need so that a bad field fails here.
            cert.extensions  # noqa: B018
            cert.public_key()
            cert.not_valid_after_utc  # noqa: B018
        except PARSE_ERRORS:
            raise CertificateError(f"{what} holds a certificate with malformed fields") from None
    return certs


def parse_pem_quietly(pem: bytes) -> list[x509.Certificate]:
    try:
        return load_certs(pem, "bundle")
    except CertificateError:
        return []


def load_key(pem: bytes, what: str = TLS_KEY) -> PrivateKeyTypes:
    """The private key in ``pem``. Errors say what is wrong, never what the bytes were."""
    if not pem.strip():
        raise CertificateError(f"{what} is empty")
    if b"-----BEGIN" not in pem or b"PRIVATE KEY-----" not in pem:
        raise CertificateError(f"{what} holds no PEM private key")
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise CertificateError(f"{what} is encrypted with a passphrase; Zentinel needs an unencrypted key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateError(f"{what} holds a private key that cannot be read") from None


def spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def aware(now: dt.datetime) -> dt.datetime:
    return now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now.astimezone(dt.UTC)


def cert_name(cert: x509.Certificate) -> str:
    subject = cert.subject.rfc4514_string()
    if subject:
        return repr(subject)
    sans = sans_of(cert)
    return f"the certificate for {sans[0]}" if sans else f"the certificate with serial {cert.serial_number:x}"


def sans_of(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    names: list[str] = [str(n) for n in ext.value.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)]
    return tuple(names)


def common_name_of(cert: x509.Certificate) -> str | None:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def extension(cert: x509.Certificate, kind: type[_Ext]) -> _Ext | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def norm_san(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name.strip()))
    except ValueError:
        return name.strip().rstrip(".").lower()


def fingerprint_sha256(cert_pem_or_der: bytes) -> str:
    """Lower-case hex SHA-256 of the DER of a certificate (the first one of a PEM bundle)."""
    if PEM_CERT in cert_pem_or_der:
        der = to_der(load_certs(cert_pem_or_der, "the certificate")[0])
    else:
        try:
            der = to_der(x509.load_der_x509_certificate(cert_pem_or_der))
        except PARSE_ERRORS:
            raise CertificateError("not a PEM or DER certificate") from None
    return hashlib.sha256(der).hexdigest()


def key_type_of(cert_pem: bytes) -> str:
    """``rsa-2048``, ``ec-p256``, ``ec-p384``, ``ed25519``, ... for the first certificate's public key."""
    return _key_type(load_certs(cert_pem, "the certificate")[0].public_key())


def _key_type(key: PublicKeyTypes) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        for short, curve in EC_CURVES.items():
            if isinstance(key.curve, curve):
                return f"ec-{short}"
        return f"ec-{key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448"
    return type(key).__name__
