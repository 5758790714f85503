"""TLS certificates without I/O: read what a Secret holds, judge it, and issue replacements.

Everything here works on bytes and a ``now`` passed in, so it is tested with real certificates and
no cluster. The signal layer reads Secrets and performs handshakes; remediation installs what
:func:`verify_pair` accepts, and nothing else (the guardrail "never install a certificate whose key
does not match or whose chain does not verify").

Private keys never appear in an exception message, a ``repr`` or a returned error string: messages
name the Secret key (``tls.key``) and what is wrong with it, never its content. Certificates are
public and may be named by subject, SANs and fingerprint.

Chain checks are done twice when they can be. First the chain is walked by hand from the leaf to a
certificate of the CA bundle: issuer by name, signature checked with the issuer's public key per key
type (RSA PKCS#1 v1.5 and PSS, ECDSA, Ed25519/Ed448, DSA), validity periods of every certificate,
``basicConstraints``, ``keyUsage`` and path length of every issuer. That gives a precise reason a
person can act on. Then, when the leaf names a DNS name or an IP address and every key on the path
is RSA or ECDSA on a NIST curve, cryptography's RFC 5280 server verifier
(:mod:`cryptography.x509.verification`) runs over the same certificates, which adds what strict
clients check beyond that (name constraints, weak issuer keys, extension rules). Its CA/B profile
forbids Ed25519 keys, which TLS 1.3 and Zentinel accept, so such chains are judged by the walk alone.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from typing import NamedTuple, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .snapshot import CertificateSignal

__all__ = [
    "CertificateError",
    "IssuedCertificate",
    "TlsSecretContents",
    "fingerprint_sha256",
    "inspect_certificate",
    "inspect_tls_secret",
    "issue_from_ca",
    "key_type_of",
    "read_tls_secret",
    "self_signed",
    "tls_secret_data",
    "verify_pair",
]

TLS_CRT = "tls.crt"
TLS_KEY = "tls.key"
CA_CRT = "ca.crt"

_PEM_CERT = b"-----BEGIN CERTIFICATE-----"
_MAX_CHAIN_DEPTH = 8
_BACKDATE = dt.timedelta(minutes=5)  # tolerate clocks of clients a little behind ours
_SECONDS_PER_DAY = 86400.0
_PARSE_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm)
_Ext = TypeVar("_Ext", bound=x509.ExtensionType)

_EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "p256": ec.SECP256R1,
    "p384": ec.SECP384R1,
    "p521": ec.SECP521R1,
}
_MIN_RSA_BITS = 2048


class CertificateError(ValueError):
    """A certificate, key or CA that cannot be used. The message never holds key material."""


# --------------------------------------------------------------------------- results


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
        extra = [c for c in _parse_pem_quietly(self.chain_pem) if not _self_issued(c)]
        return self.cert_pem + b"".join(_pem(c) for c in extra)

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


class TlsSecretContents(NamedTuple):
    """The decoded ``tls.crt``, ``tls.key`` and ``ca.crt`` of a Secret, and what was wrong with them."""

    cert_pem: bytes | None
    key_pem: bytes | None
    ca_pem: bytes | None
    error: str | None

    def __repr__(self) -> str:
        def size(value: bytes | None) -> str:
            return "None" if value is None else f"<{len(value)} bytes>"

        key = "None" if self.key_pem is None else "<redacted>"
        return (
            f"TlsSecretContents(cert_pem={size(self.cert_pem)}, key_pem={key}, ca_pem={size(self.ca_pem)}, "
            f"error={self.error!r})"
        )

    def __str__(self) -> str:
        return self.__repr__()


# --------------------------------------------------------------------------- parsing


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _load_certs(pem: bytes, what: str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, first one first; :class:`CertificateError` if none is readable."""
    if not pem.strip():
        raise CertificateError(f"{what} is empty")
    if _PEM_CERT not in pem:
        raise CertificateError(f"{what} holds no PEM certificate")
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except _PARSE_ERRORS:
        raise CertificateError(f"{what} holds a malformed PEM certificate") from None
    if not certs:  # pragma: no cover - load_pem_x509_certificates raises instead
        raise CertificateError(f"{what} holds no PEM certificate")
    for cert in certs:
        try:
            # Parsing is lazy: touch what the checks below need so that a bad field fails here.
            cert.extensions  # noqa: B018
            cert.public_key()
            cert.not_valid_after_utc  # noqa: B018
        except _PARSE_ERRORS:
            raise CertificateError(f"{what} holds a certificate with malformed fields") from None
    return certs


def _parse_pem_quietly(pem: bytes) -> list[x509.Certificate]:
    try:
        return _load_certs(pem, "bundle")
    except CertificateError:
        return []


def _load_key(pem: bytes, what: str = TLS_KEY) -> PrivateKeyTypes:
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


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _aware(now: dt.datetime) -> dt.datetime:
    return now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now.astimezone(dt.UTC)


def _name(cert: x509.Certificate) -> str:
    subject = cert.subject.rfc4514_string()
    if subject:
        return repr(subject)
    sans = _sans(cert)
    return f"the certificate for {sans[0]}" if sans else f"the certificate with serial {cert.serial_number:x}"


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    names: list[str] = [str(n) for n in ext.value.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)]
    return tuple(names)


def _common_name(cert: x509.Certificate) -> str | None:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _extension(cert: x509.Certificate, kind: type[_Ext]) -> _Ext | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _norm_san(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name.strip()))
    except ValueError:
        return name.strip().rstrip(".").lower()


# --------------------------------------------------------------------------- signatures and chains


def _signature_verifies(cert: x509.Certificate, issuer_key: PublicKeyTypes) -> bool:
    """Whether ``issuer_key`` made the signature on ``cert``; checked per key type."""
    signature, tbs = cert.signature, cert.tbs_certificate_bytes
    try:
        params = cert.signature_algorithm_parameters
        digest = cert.signature_hash_algorithm
        if isinstance(issuer_key, rsa.RSAPublicKey):
            if not isinstance(params, padding.PKCS1v15 | padding.PSS) or digest is None:
                return False
            issuer_key.verify(signature, tbs, params, digest)
        elif isinstance(issuer_key, ec.EllipticCurvePublicKey):
            if not isinstance(params, ec.ECDSA):
                return False
            issuer_key.verify(signature, tbs, params)
        elif isinstance(issuer_key, ed25519.Ed25519PublicKey):
            if cert.signature_algorithm_oid != x509.SignatureAlgorithmOID.ED25519:
                return False
            issuer_key.verify(signature, tbs)
        elif isinstance(issuer_key, ed448.Ed448PublicKey):
            if cert.signature_algorithm_oid != x509.SignatureAlgorithmOID.ED448:
                return False
            issuer_key.verify(signature, tbs)
        elif isinstance(issuer_key, dsa.DSAPublicKey):
            if digest is None:
                return False
            issuer_key.verify(signature, tbs, digest)
        else:
            return False
    except (InvalidSignature, *_PARSE_ERRORS):
        return False
    return True


def _validity_error(cert: x509.Certificate, now: dt.datetime) -> str | None:
    if now < cert.not_valid_before_utc:
        return f"{_name(cert)} is not valid before {cert.not_valid_before_utc.isoformat()}"
    if now > cert.not_valid_after_utc:
        return f"{_name(cert)} expired at {cert.not_valid_after_utc.isoformat()}"
    return None


def _issuer_error(issuer: x509.Certificate, child: x509.Certificate, below: int, *, anchor: bool) -> str | None:
    """Whether ``issuer`` may sign ``child`` with ``below`` CA certificates between it and the leaf."""
    constraints = _extension(issuer, x509.BasicConstraints)
    if constraints is None:
        if not anchor:  # an X.509 v1 root in the CA bundle is tolerated, an intermediate is not
            return f"{_name(issuer)} signed {_name(child)} but has no basicConstraints, so it is not a CA"
    elif not constraints.ca:
        return f"{_name(issuer)} signed {_name(child)} but is not a CA (basicConstraints cA=false)"
    elif constraints.path_length is not None and below > constraints.path_length:
        return f"{_name(issuer)} allows {constraints.path_length} intermediate(s) below it, the chain has {below}"
    usage = _extension(issuer, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        return f"{_name(issuer)} signed {_name(child)} but its keyUsage does not allow keyCertSign"
    return None


class _Walk(NamedTuple):
    problem: str | None
    path: list[x509.Certificate]  # leaf first, then the issuers found; the trust anchor last when it held


def _walk_chain(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    now: dt.datetime,
    *,
    leaf_validity: bool,
) -> _Walk:
    """Walk from the leaf to a trust anchor; the first problem found (``None`` when the chain holds)."""
    leaf = chain[0]
    pool = list(chain[1:])
    anchor_ders = {_der(a) for a in anchors}
    path = [leaf]
    current = leaf
    while len(path) <= _MAX_CHAIN_DEPTH:
        if current is not leaf or leaf_validity:
            problem = _validity_error(current, now)
            if problem:
                return _Walk(problem, path)
        if _der(current) in anchor_ders:
            return _Walk(None, path)
        below = len(path) - 1  # CA certificates between the issuer sought and the leaf
        named_anchors = [a for a in anchors if a.subject == current.issuer]
        for anchor in named_anchors:
            if _signature_verifies(current, anchor.public_key()):
                path.append(anchor)
                return _Walk(_issuer_error(anchor, current, below, anchor=True) or _validity_error(anchor, now), path)
        named = [c for c in pool if c.subject == current.issuer and c not in path]
        issuer = next((c for c in named if _signature_verifies(current, c.public_key())), None)
        if issuer is None:
            if named_anchors or named:
                problem = (
                    f"the signature on {_name(current)} does not verify with the key of its issuer "
                    f"{current.issuer.rfc4514_string()!r}"
                )
            elif _self_issued(current):
                problem = f"the chain ends at the self-signed {_name(current)}, which is not a trusted CA"
            else:
                problem = (
                    f"no trusted CA or intermediate issued {_name(current)} "
                    f"(issuer {current.issuer.rfc4514_string()!r})"
                )
            return _Walk(problem, path)
        problem = _issuer_error(issuer, current, below, anchor=False)
        if problem:
            return _Walk(problem, path)
        path.append(issuer)
        current = issuer
    return _Walk(f"the chain is longer than {_MAX_CHAIN_DEPTH} certificates", path)


def _web_pki_algorithms(path: Sequence[x509.Certificate]) -> bool:
    """Whether every key on the path is one the web PKI profile allows (RSA, ECDSA on NIST curves).

    Ed25519 and other keys work in TLS 1.3 and in Zentinel, but the CA/B profile forbids them; for those
    chains the explicit walk (signatures, dates, constraints) is the whole verdict.
    """
    for cert in path:
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            continue
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, tuple(_EC_CURVES.values())):
            continue
        return False
    return True


def _verification_subjects(leaf: x509.Certificate) -> list[verification.Subject]:
    """Names from the leaf's own SANs to drive cryptography's server verifier, best first."""
    san = _extension(leaf, x509.SubjectAlternativeName)
    if san is None:
        return []
    subjects: list[verification.Subject] = []
    for dns in san.get_values_for_type(x509.DNSName):
        # A wildcard SAN is matched by any one label in its place.
        with contextlib.suppress(ValueError):
            subjects.append(x509.DNSName("zentinel-check." + dns[2:] if dns.startswith("*.") else dns))
    for ip in san.get_values_for_type(x509.IPAddress):
        if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
            subjects.append(x509.IPAddress(ip))
    return subjects


def _key_cert_sign_if_present(
    _policy: verification.Policy, _cert: x509.Certificate, usage: x509.KeyUsage | None
) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("keyUsage does not allow keyCertSign")


# The CA/Browser-Forum profile, less two rules that OpenSSL-made private CAs commonly break without
# weakening anything: a CA certificate may lack keyUsage (when present it must allow keyCertSign), and
# authorityKeyIdentifier (a path-building hint) may be absent.
_AGNOSTIC = verification.Criticality.AGNOSTIC
_CA_POLICY = (
    verification.ExtensionPolicy.webpki_defaults_ca()
    .may_be_present(x509.KeyUsage, _AGNOSTIC, _key_cert_sign_if_present)
    .may_be_present(x509.AuthorityKeyIdentifier, _AGNOSTIC, None)
)
_EE_POLICY = verification.ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.AuthorityKeyIdentifier, _AGNOSTIC, None
)


def _path_validation_error(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    path: Sequence[x509.Certificate],
    now: dt.datetime,
) -> str | None:
    """cryptography's server verifier over the chain the walk found good, where it applies."""
    leaf = chain[0]
    if len(path) < 2:
        return None  # the certificate is itself trusted: nothing to build
    if not _web_pki_algorithms(path):
        return None
    builder = (
        verification.PolicyBuilder()
        .store(verification.Store(list(anchors)))
        .time(now)
        .max_chain_depth(_MAX_CHAIN_DEPTH)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
    )
    verifier: verification.ServerVerifier | None = None
    for subject in _verification_subjects(leaf):
        try:
            verifier = builder.build_server_verifier(subject)
            break
        except ValueError:  # a SAN the verifier does not accept as a host name (an underscore, say)
            continue
    if verifier is None:
        return None  # the verifier needs a name; the walk already checked signatures, dates and constraints
    try:
        verifier.verify(leaf, list(chain[1:]))
    except verification.VerificationError as exc:
        return f"RFC 5280 path validation refused it: {exc}"
    except _PARSE_ERRORS as exc:
        return f"RFC 5280 path validation could not run ({type(exc).__name__})"
    return None


def _chain_error(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    now: dt.datetime,
    *,
    leaf_validity: bool = True,
) -> str | None:
    walk = _walk_chain(chain, anchors, now, leaf_validity=leaf_validity)
    return walk.problem or _path_validation_error(chain, anchors, walk.path, now)


# --------------------------------------------------------------------------- inspection


def inspect_certificate(
    *,
    name: str,
    secret: str,
    cert_pem: bytes | None,
    key_pem: bytes | None,
    ca_pem: bytes | None,
    now: dt.datetime,
) -> CertificateSignal:
    """What a person needs to know about one TLS Secret's certificate. Never raises for bad input.

    ``present`` is whether there is a ``tls.crt`` at all. ``chain_valid`` is ``None`` when there is
    no ``ca.crt`` to verify against (a public certificate is checked by clients against their own
    trust store, which is not ours to read here). ``key_matches`` is ``None`` without a usable key.
    """
    now = _aware(now)
    if cert_pem is None:
        error = f"the Secret has {TLS_KEY} but no {TLS_CRT}" if key_pem is not None else None
        return CertificateSignal(name=name, secret=secret, present=False, error=error)
    errors: list[str] = []
    try:
        chain = _load_certs(cert_pem, TLS_CRT)
    except CertificateError as exc:
        return CertificateSignal(name=name, secret=secret, present=True, error=str(exc))
    leaf = chain[0]
    not_after = leaf.not_valid_after_utc
    days_left = (not_after - now).total_seconds() / _SECONDS_PER_DAY

    key_matches: bool | None = None
    if key_pem is None:
        errors.append(f"the Secret has no {TLS_KEY}")
    else:
        try:
            key = _load_key(key_pem)
        except CertificateError as exc:
            errors.append(str(exc))
        else:
            key_matches = _spki(key.public_key()) == _spki(leaf.public_key())

    chain_valid: bool | None = None
    chain_error: str | None = None
    if ca_pem is not None and ca_pem.strip():
        try:
            anchors = _load_certs(ca_pem, CA_CRT)
        except CertificateError as exc:
            errors.append(str(exc))
        else:
            chain_error = _chain_error(chain, anchors, now)
            chain_valid = chain_error is None

    return CertificateSignal(
        name=name,
        secret=secret,
        present=True,
        error="; ".join(errors) or None,
        not_after=not_after,
        days_left=days_left,
        key_matches=key_matches,
        chain_valid=chain_valid,
        chain_error=chain_error,
        sans=_sans(leaf),
    )


def verify_pair(
    cert_pem: bytes,
    key_pem: bytes,
    ca_pem: bytes | None,
    *,
    now: dt.datetime,
    expected_sans: Sequence[str] | None = None,
) -> list[str]:
    """Every reason not to install this certificate and key; an empty list means it may be installed.

    Without ``ca_pem`` the chain must end in a self-signed certificate whose signature holds (a
    development certificate); a chain that cannot be verified against anything is refused.
    ``expected_sans`` compares as sets, DNS names case-insensitively and IP addresses by value.
    """
    now = _aware(now)
    try:
        chain = _load_certs(cert_pem, "the certificate")
    except CertificateError as exc:
        return [str(exc)]
    leaf = chain[0]
    reasons: list[str] = []

    try:
        key = _load_key(key_pem, "the private key")
    except CertificateError as exc:
        reasons.append(str(exc))
    else:
        if _spki(key.public_key()) != _spki(leaf.public_key()):
            reasons.append("the private key does not match the certificate's public key")

    leaf_problem = _validity_error(leaf, now)
    if leaf_problem:
        reasons.append(leaf_problem)

    usage = _extension(leaf, x509.ExtendedKeyUsage)
    if (
        usage is not None
        and ExtendedKeyUsageOID.SERVER_AUTH not in usage
        and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usage
    ):
        reasons.append("the certificate's extended key usage does not allow serverAuth")

    anchors: list[x509.Certificate] = []
    if ca_pem is not None and ca_pem.strip():
        try:
            anchors = _load_certs(ca_pem, "the CA bundle")
        except CertificateError as exc:
            reasons.append(str(exc))
    else:
        top = chain[-1]
        if _self_issued(top) and _signature_verifies(top, top.public_key()):
            anchors = [top]
        else:
            reasons.append("there is no CA certificate to verify the chain against and it does not end self-signed")
    if anchors:
        if leaf_problem:  # said already; path validation would only refuse the same dates again
            problem = _walk_chain(chain, anchors, now, leaf_validity=False).problem
        else:
            problem = _chain_error(chain, anchors, now)
        if problem:
            reasons.append(f"the chain does not verify: {problem}")

    if expected_sans is not None:
        want = {_norm_san(s) for s in expected_sans}
        have = {_norm_san(s) for s in _sans(leaf)}
        if want != have:
            missing = ", ".join(sorted(want - have)) or "none"
            extra = ", ".join(sorted(have - want)) or "none"
            reasons.append(f"the SANs differ from those expected (missing: {missing}; unexpected: {extra})")
    return reasons


def fingerprint_sha256(cert_pem_or_der: bytes) -> str:
    """Lower-case hex SHA-256 of the DER of a certificate (the first one of a PEM bundle)."""
    if _PEM_CERT in cert_pem_or_der:
        der = _der(_load_certs(cert_pem_or_der, "the certificate")[0])
    else:
        try:
            der = _der(x509.load_der_x509_certificate(cert_pem_or_der))
        except _PARSE_ERRORS:
            raise CertificateError("not a PEM or DER certificate") from None
    return hashlib.sha256(der).hexdigest()


def key_type_of(cert_pem: bytes) -> str:
    """``rsa-2048``, ``ec-p256``, ``ec-p384``, ``ed25519``, ... for the first certificate's public key."""
    return _key_type(_load_certs(cert_pem, "the certificate")[0].public_key())


def _key_type(key: PublicKeyTypes) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        for short, curve in _EC_CURVES.items():
            if isinstance(key.curve, curve):
                return f"ec-{short}"
        return f"ec-{key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448"
    return type(key).__name__


# --------------------------------------------------------------------------- issuing


def _new_key(key_type: str) -> CertificateIssuerPrivateKeyTypes:
    kind, _, size = key_type.strip().lower().partition("-")
    if kind == "rsa" and size.isdigit() and int(size) >= _MIN_RSA_BITS:
        return rsa.generate_private_key(public_exponent=65537, key_size=int(size))
    if kind == "ec" and size in _EC_CURVES:
        return ec.generate_private_key(_EC_CURVES[size]())
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
    now = _aware(now)
    ca_bundle = _load_certs(ca_cert_pem, "the CA certificate")
    ca_cert = ca_bundle[0]
    ca_key = _load_key(ca_key_pem, "the CA key")
    if not isinstance(
        ca_key,
        rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey,
    ):
        raise CertificateError(f"the CA key is a {type(ca_key).__name__}, which cannot sign certificates here")
    if _spki(ca_key.public_key()) != _spki(ca_cert.public_key()):
        raise CertificateError("the CA key does not match the CA certificate")
    constraints = _extension(ca_cert, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise CertificateError(f"{_name(ca_cert)} is not a CA certificate (basicConstraints cA is not true)")
    usage = _extension(ca_cert, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise CertificateError(f"{_name(ca_cert)} may not sign certificates (keyUsage lacks keyCertSign)")
    problem = _validity_error(ca_cert, now)
    if problem:
        raise CertificateError(f"the CA cannot issue: {problem}")

    template = _load_certs(template_cert_pem, "the template certificate")[0] if template_cert_pem else None
    key = _new_key_like(template.public_key()) if template is not None else _new_key("ec-p256")
    names = list(sans) or (list(_sans(template)) if template is not None else [])
    cn = common_name if common_name is not None else (_common_name(template) if template is not None else None)

    ca_ski = _extension(ca_cert, x509.SubjectKeyIdentifier)
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
    return IssuedCertificate(cert_pem=_pem(cert), key_pem=_key_pem(key), chain_pem=b"".join(_pem(c) for c in ca_bundle))


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
    now = _aware(now)
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
    pem = _pem(cert)
    return IssuedCertificate(cert_pem=pem, key_pem=_key_pem(key), chain_pem=pem)


# --------------------------------------------------------------------------- Secret data


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def tls_secret_data(issued: IssuedCertificate) -> dict[str, str]:
    """``data`` for a ``kubernetes.io/tls`` Secret: ``tls.crt`` (leaf and intermediates), ``tls.key``
    and, when there is a CA, ``ca.crt``. The result holds the key: it belongs in a Secret, nowhere else."""
    data = {TLS_CRT: _b64(issued.fullchain_pem), TLS_KEY: _b64(issued.key_pem)}
    if issued.chain_pem.strip():
        data[CA_CRT] = _b64(issued.chain_pem)
    return data


def read_tls_secret(data: Mapping[str, str | None] | None) -> TlsSecretContents:
    """Decode a Secret's ``data`` (base64 values). Missing or undecodable entries come back ``None``
    and are named in ``error``; values are never quoted in it."""
    if not data:
        return TlsSecretContents(None, None, None, "the Secret has no data")
    errors: list[str] = []

    def decode(entry: str, *, required: bool) -> bytes | None:
        value = data.get(entry)
        if value is None:
            if required:
                errors.append(f"the Secret has no {entry}")
            return None
        try:
            return base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            errors.append(f"{entry} is not valid base64")
            return None

    cert = decode(TLS_CRT, required=True)
    key = decode(TLS_KEY, required=True)
    ca = decode(CA_CRT, required=False)
    return TlsSecretContents(cert, key, ca, "; ".join(errors) or None)


def inspect_tls_secret(
    *, name: str, secret: str, data: Mapping[str, str | None] | None, now: dt.datetime
) -> CertificateSignal:
    """:func:`read_tls_secret` then :func:`inspect_certificate`, with both sets of errors merged once."""
    contents = read_tls_secret(data)
    signal = inspect_certificate(
        name=name,
        secret=secret,
        cert_pem=contents.cert_pem,
        key_pem=contents.key_pem,
        ca_pem=contents.ca_pem,
        now=now,
    )
    if contents.error is None:
        return signal
    parts = contents.error.split("; ")
    for part in (signal.error or "").split("; "):
        # "the Secret has no tls.key" after "tls.key is not valid base64" would mislead.
        undecodable = any(
            part == f"the Secret has no {entry}" and entry in contents.error for entry in (TLS_CRT, TLS_KEY)
        )
        if part and part not in parts and not undecodable:
            parts.append(part)
    present = data is not None and data.get(TLS_CRT) is not None
    return dataclasses.replace(signal, present=present, error="; ".join(parts))
