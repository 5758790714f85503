"""Judging what a TLS Secret holds: the signal triage reads, and every reason not to install a pair."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..snapshot import CertificateSignal, days_until
from .chains import chain_problem, signature_verifies, validity_error, walk_chain
from .pem import (
    CA_CRT,
    TLS_CRT,
    TLS_KEY,
    CertificateError,
    aware,
    extension,
    load_certs,
    load_key,
    norm_san,
    sans_of,
    self_issued,
    spki,
)


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
    now = aware(now)
    if cert_pem is None:
        error = f"the Secret has {TLS_KEY} but no {TLS_CRT}" if key_pem is not None else None
        return CertificateSignal(name=name, secret=secret, present=False, error=error)
    errors: list[str] = []
    try:
        chain = load_certs(cert_pem, TLS_CRT)
    except CertificateError as exc:
        return CertificateSignal(name=name, secret=secret, present=True, error=str(exc))
    leaf = chain[0]
    not_after = leaf.not_valid_after_utc
    days_left = days_until(not_after, now)

    key_matches: bool | None = None
    if key_pem is None:
        errors.append(f"the Secret has no {TLS_KEY}")
    else:
        try:
            key = load_key(key_pem)
        except CertificateError as exc:
            errors.append(str(exc))
        else:
            key_matches = spki(key.public_key()) == spki(leaf.public_key())

    chain_valid: bool | None = None
    chain_error: str | None = None
    if ca_pem is not None and ca_pem.strip():
        try:
            anchors = load_certs(ca_pem, CA_CRT)
        except CertificateError as exc:
            errors.append(str(exc))
        else:
            chain_error = chain_problem(chain, anchors, now)
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
        sans=sans_of(leaf),
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
    now = aware(now)
    try:
        chain = load_certs(cert_pem, "the certificate")
    except CertificateError as exc:
        return [str(exc)]
    leaf = chain[0]
    reasons: list[str] = []

    try:
        key = load_key(key_pem, "the private key")
    except CertificateError as exc:
        reasons.append(str(exc))
    else:
        if spki(key.public_key()) != spki(leaf.public_key()):
            reasons.append("the private key does not match the certificate's public key")

    leaf_problem = validity_error(leaf, now)
    if leaf_problem:
        reasons.append(leaf_problem)

    usage = extension(leaf, x509.ExtendedKeyUsage)
    if (
        usage is not None
        and ExtendedKeyUsageOID.SERVER_AUTH not in usage
        and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usage
    ):
        reasons.append("the certificate's extended key usage does not allow serverAuth")

    anchors: list[x509.Certificate] = []
    if ca_pem is not None and ca_pem.strip():
        try:
            anchors = load_certs(ca_pem, "the CA bundle")
        except CertificateError as exc:
            reasons.append(str(exc))
    else:
        top = chain[-1]
        if self_issued(top) and signature_verifies(top, top.public_key()):
            anchors = [top]
        else:
            reasons.append("there is no CA certificate to verify the chain against and it does not end self-signed")
    if anchors:
        if leaf_problem:  # said already; path validation would only refuse the same dates again
            problem = walk_chain(chain, anchors, now, leaf_validity=False).problem
        else:
            problem = chain_problem(chain, anchors, now)
        if problem:
            reasons.append(f"the chain does not verify: {problem}")

    if expected_sans is not None:
        want = {norm_san(s) for s in expected_sans}
        have = {norm_san(s) for s in sans_of(leaf)}
        if want != have:
            missing = ", ".join(sorted(want - have)) or "none"
            extra = ", ".join(sorted(have - want)) or "none"
            reasons.append(f"the SANs differ from those expected (missing: {missing}; unexpected: {extra})")
    return reasons


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
