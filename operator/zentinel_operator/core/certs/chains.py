"""Signatures and chains: the walk from a leaf to a trust anchor, then RFC 5280 path validation where
it applies (the package docstring says when)."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
from collections.abc import Sequence
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509 import verification

from .pem import EC_CURVES, PARSE_ERRORS, cert_name, extension, self_issued, to_der

_MAX_CHAIN_DEPTH = 8


def signature_verifies(cert: x509.Certificate, issuer_key: PublicKeyTypes) -> bool:
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
    except (InvalidSignature, *PARSE_ERRORS):
        return False
    return True


def validity_error(cert: x509.Certificate, now: dt.datetime) -> str | None:
    if now < cert.not_valid_before_utc:
        return f"{cert_name(cert)} is not valid before {cert.not_valid_before_utc.isoformat()}"
    if now > cert.not_valid_after_utc:
        return f"{cert_name(cert)} expired at {cert.not_valid_after_utc.isoformat()}"
    return None


def _issuer_error(issuer: x509.Certificate, child: x509.Certificate, below: int, *, anchor: bool) -> str | None:
    """Whether ``issuer`` may sign ``child`` with ``below`` CA certificates between it and the leaf."""
    constraints = extension(issuer, x509.BasicConstraints)
    if constraints is None:
        if not anchor:  # an X.509 v1 root in the CA bundle is tolerated, an intermediate is not
            return f"{cert_name(issuer)} signed {cert_name(child)} but has no basicConstraints, so it is not a CA"
    elif not constraints.ca:
        return f"{cert_name(issuer)} signed {cert_name(child)} but is not a CA (basicConstraints cA=false)"
    elif constraints.path_length is not None and below > constraints.path_length:
        return f"{cert_name(issuer)} allows {constraints.path_length} intermediate(s) below it, the chain has {below}"
    usage = extension(issuer, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        return f"{cert_name(issuer)} signed {cert_name(child)} but its keyUsage does not allow keyCertSign"
    return None


class _Walk(NamedTuple):
    problem: str | None
    path: list[x509.Certificate]  # leaf first, then the issuers found; the trust anchor last when it held


def walk_chain(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    now: dt.datetime,
    *,
    leaf_validity: bool,
) -> _Walk:
    """Walk from the leaf to a trust anchor; the first problem found (``None`` when the chain holds)."""
    leaf = chain[0]
    pool = list(chain[1:])
    anchor_ders = {to_der(a) for a in anchors}
    path = [leaf]
    current = leaf
    while len(path) <= _MAX_CHAIN_DEPTH:
        if current is not leaf or leaf_validity:
            problem = validity_error(current, now)
            if problem:
                return _Walk(problem, path)
        if to_der(current) in anchor_ders:
            return _Walk(None, path)
        below = len(path) - 1  # CA certificates between the issuer sought and the leaf
        named_anchors = [a for a in anchors if a.subject == current.issuer]
        for anchor in named_anchors:
            if signature_verifies(current, anchor.public_key()):
                path.append(anchor)
                return _Walk(_issuer_error(anchor, current, below, anchor=True) or validity_error(anchor, now), path)
        named = [c for c in pool if c.subject == current.issuer and c not in path]
        issuer = next((c for c in named if signature_verifies(current, c.public_key())), None)
        if issuer is None:
            if named_anchors or named:
                problem = (
                    f"the signature on {cert_name(current)} does not verify with the key of its issuer "
                    f"{current.issuer.rfc4514_string()!r}"
                )
            elif self_issued(current):
                problem = f"the chain ends at the self-signed {cert_name(current)}, which is not a trusted CA"
            else:
                problem = (
                    f"no trusted CA or intermediate issued {cert_name(current)} "
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
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, tuple(EC_CURVES.values())):
            continue
        return False
    return True


def _verification_subjects(leaf: x509.Certificate) -> list[verification.Subject]:
    """Names from the leaf's own SANs to drive cryptography's server verifier, best first."""
    san = extension(leaf, x509.SubjectAlternativeName)
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
    except PARSE_ERRORS as exc:
        return f"RFC 5280 path validation could not run ({type(exc).__name__})"
    return None


def chain_problem(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    now: dt.datetime,
    *,
    leaf_validity: bool = True,
) -> str | None:
    walk = walk_chain(chain, anchors, now, leaf_validity=leaf_validity)
    return walk.problem or _path_validation_error(chain, anchors, walk.path, now)
