"""Issuing replacement server certificates (from a CA, or self-signed for development), and the
Secret data that installs one."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .chains import validity_error
from .pem import (
    CA_CRT,
    EC_CURVES,
    TLS_CRT,
    TLS_KEY,
    CertificateError,
    aware,
    cert_name,
    common_name_of,
    extension,
    fingerprint_sha256,
    load_certs,
    load_key,
    parse_pem_quietly,
    sans_of,
    self_issued,
    spki,
    to_pem,
)

_BACKDATE = dt.timedelta(minutes=5)  # tolerate clocks of clients a little behind ours
_MIN_RSA_BITS = 2048


@dataclasses.dataclass(frozen=True, repr=False)
class IssuedCertificate:
    """A freshly issued certificate and its key, all PEM.

    ``cert_pem`` is the leaf alone; ``chain_pem`` is the issuing CA certificate followed by whatever
    came after it in the CA bundle it was issued from (for a self-signed certificate: the certificate
    itself, which is its own CA). ``fullchain_pem`` is what a server presents: the leaf and the
    intermediates, without self-signed roots.
    """

    cert_pem: bytes
    key_pem: bytes
    chain_pem: bytes

    @property
    def fullchain_pem(self) -> bytes:
        extra = [c for c in parse_pem_quietly(self.chain_pem) if not self_issued(c)]
        return self.cert_pem + b"".join(to_pem(c) for c in extra)

    def __repr__(self) -> str:
        try:
            fp = fingerprint_sha256(self.cert_pem)[:16] + "..."
        except CertificateError:
            fp = "unreadable"
        return (
            f"IssuedCertificate(cert_pem=<{len(self.cert_pem)} bytes, sha256 {fp}>, key_pem=<redacted>, "
            f"chain_pem=<{len(self.chain_pem)} bytes>)"
        )

    __str__ = __repr__


def _new_key(key_type: str) -> CertificateIssuerPrivateKeyTypes:
    kind, _, size = key_type.strip().lower().partition("-")
    if kind == "rsa" and size.isdigit() and int(size) >= _MIN_RSA_BITS:
        return rsa.generate_private_key(public_exponent=65537, key_size=int(size))
    if kind == "ec" and size in EC_CURVES:
        return ec.generate_private_key(EC_CURVES[size]())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type == "ed448":
        return ed448.Ed448PrivateKey.generate()
    raise CertificateError(
        f"unsupported key type {key_type!r} (use rsa-<bits>, ec-p256, ec-p384, ec-p521, ed25519, ed448)"
    )


def _new_key_like(key: PublicKeyTypes) -> CertificateIssuerPrivateKeyTypes:
    """A new private key of the same type and size as ``key``."""
    if isinstance(key, rsa.RSAPublicKey):
        return rsa.generate_private_key(public_exponent=65537, key_size=max(key.key_size, _MIN_RSA_BITS))
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ec.generate_private_key(type(key.curve)())
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ed25519.Ed25519PrivateKey.generate()
    if isinstance(key, ed448.Ed448PublicKey):
        return ed448.Ed448PrivateKey.generate()
    raise CertificateError(f"cannot issue a key like the template's {type(key).__name__}")


def _signing_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size > 384:
            return hashes.SHA512()
        if key.curve.key_size > 256:
            return hashes.SHA384()
    return hashes.SHA256()


def _general_names(sans: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for raw in sans:
        value = raw.strip()
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(value)))
            continue
        except ValueError:
            pass
        if not value or not value.isascii() or " " in value:
            raise CertificateError(f"{raw!r} is neither an IP address nor an ASCII DNS name")
        names.append(x509.DNSName(value.rstrip(".").lower()))
    if not names:
        raise CertificateError("a server certificate needs at least one DNS name or IP address")
    return names


def _leaf(
    *,
    key: CertificateIssuerPrivateKeyTypes,
    sans: Sequence[str],
    common_name: str | None,
    issuer_name: x509.Name | None,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    authority_key_id: x509.AuthorityKeyIdentifier | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    public = key.public_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
    aki = authority_key_id or x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name if issuer_name is not None else subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # RFC 5280 4.2.1.6: the SAN extension is critical when the subject is empty.
        .add_extension(x509.SubjectAlternativeName(_general_names(sans)), critical=not common_name)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(aki, critical=False)
    )
    return builder.sign(issuer_key, _signing_hash(issuer_key))


def _key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def issue_from_ca(
    *,
    template_cert_pem: bytes | None,
    sans: Sequence[str],
    common_name: str | None,
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    now: dt.datetime,
    validity: dt.timedelta,
) -> IssuedCertificate:
    """A new certificate and a new key signed by the CA, to replace ``template_cert_pem``.

    The key has the template's type and size (RSA bits, EC curve, Ed25519/Ed448; EC P-256 without a
    template). ``sans`` and ``common_name`` default to the template's when empty / ``None``. The
    certificate is a TLS server certificate (serverAuth, SKI, AKI from the CA's SKI), valid from a
    few minutes before ``now`` for ``validity``, but never past the CA's own expiry.
    Raises :class:`CertificateError` (no key material in it) when the CA or template cannot be used.
    """
    if validity <= dt.timedelta(0):
        raise CertificateError("validity must be positive")
    now = aware(now)
    ca_bundle = load_certs(ca_cert_pem, "the CA certificate")
    ca_cert = ca_bundle[0]
    ca_key = load_key(ca_key_pem, "the CA key")
    if not isinstance(
        ca_key,
        rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey,
    ):
        raise CertificateError(f"the CA key is a {type(ca_key).__name__}, which cannot sign certificates here")
    if spki(ca_key.public_key()) != spki(ca_cert.public_key()):
        raise CertificateError("the CA key does not match the CA certificate")
    constraints = extension(ca_cert, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise CertificateError(f"{cert_name(ca_cert)} is not a CA certificate (basicConstraints cA is not true)")
    usage = extension(ca_cert, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise CertificateError(f"{cert_name(ca_cert)} may not sign certificates (keyUsage lacks keyCertSign)")
    problem = validity_error(ca_cert, now)
    if problem:
        raise CertificateError(f"the CA cannot issue: {problem}")

    template = load_certs(template_cert_pem, "the template certificate")[0] if template_cert_pem else None
    key = _new_key_like(template.public_key()) if template is not None else _new_key("ec-p256")
    names = list(sans) or (list(sans_of(template)) if template is not None else [])
    cn = common_name if common_name is not None else (common_name_of(template) if template is not None else None)

    ca_ski = extension(ca_cert, x509.SubjectKeyIdentifier)
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski) if ca_ski is not None else None
    cert = _leaf(
        key=key,
        sans=names,
        common_name=cn,
        issuer_name=ca_cert.subject,
        issuer_key=ca_key,
        authority_key_id=aki,
        not_before=max(now - _BACKDATE, ca_cert.not_valid_before_utc),
        not_after=min(now + validity, ca_cert.not_valid_after_utc),
    )
    return IssuedCertificate(
        cert_pem=to_pem(cert), key_pem=_key_pem(key), chain_pem=b"".join(to_pem(c) for c in ca_bundle)
    )


def self_signed(
    *,
    sans: Sequence[str],
    common_name: str | None,
    key_type: str = "ec-p256",
    now: dt.datetime,
    validity: dt.timedelta,
) -> IssuedCertificate:
    """A self-signed server certificate for development; ``chain_pem`` is the certificate itself."""
    if validity <= dt.timedelta(0):
        raise CertificateError("validity must be positive")
    now = aware(now)
    key = _new_key(key_type)
    cert = _leaf(
        key=key,
        sans=sans,
        common_name=common_name,
        issuer_name=None,
        issuer_key=key,
        authority_key_id=None,
        not_before=now - _BACKDATE,
        not_after=now + validity,
    )
    pem = to_pem(cert)
    return IssuedCertificate(cert_pem=pem, key_pem=_key_pem(key), chain_pem=pem)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def tls_secret_data(issued: IssuedCertificate) -> dict[str, str]:
    """``data`` for a ``kubernetes.io/tls`` Secret: ``tls.crt`` (leaf and intermediates), ``tls.key``
    and, when there is a CA, ``ca.crt``. The result holds the key: it belongs in a Secret, nowhere else."""
    data = {TLS_CRT: _b64(issued.fullchain_pem), TLS_KEY: _b64(issued.key_pem)}
    if issued.chain_pem.strip():
        data[CA_CRT] = _b64(issued.chain_pem)
    return data
