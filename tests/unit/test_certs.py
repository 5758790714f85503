"""Certificates: inspection, the install guardrail, issuing, Secret data. Real keys and certificates,
built here with cryptography's own builder (not with the module under test) so that each case is a
certificate a CA or a person could really have produced. RSA keys are made once per module."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from zentinel_operator.core import certs
from zentinel_operator.core.certs import CertificateError, IssuedCertificate
from zentinel_operator.core.snapshot import CertificateSignal

NOW = dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SANS = ("app.example.com", "www.example.com", "10.1.2.3", "2001:db8::7")


# --------------------------------------------------------------------------- a small PKI


def build(
    *,
    cn: str,
    key: CertificateIssuerPrivateKeyTypes,
    issuer: x509.Certificate | None = None,
    issuer_key: CertificateIssuerPrivateKeyTypes | None = None,
    ca: bool = False,
    path_length: int | None = None,
    not_before: dt.datetime = NOW - 30 * DAY,
    not_after: dt.datetime = NOW + 60 * DAY,
    sans: tuple[str, ...] = (),
    eku: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.SERVER_AUTH,),
    pss: bool = False,
    permitted_dns: tuple[str, ...] = (),
) -> x509.Certificate:
    import ipaddress

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    signer = issuer_key or key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    )
    if permitted_dns:
        constraints = x509.NameConstraints(
            permitted_subtrees=[x509.DNSName(d) for d in permitted_dns], excluded_subtrees=None
        )
        builder = builder.add_extension(constraints, critical=True)
    if not ca and eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if sans:
        names: list[x509.GeneralName] = []
        for s in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                names.append(x509.DNSName(s))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        return builder.sign(signer, None)
    if pss:
        return builder.sign(
            signer,
            hashes.SHA256(),
            rsa_padding=padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        )
    return builder.sign(signer, hashes.SHA256())


def pem(*items: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in items)


def key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def key_body_lines(pem_bytes: bytes) -> list[str]:
    """The base64 lines of a PEM key: none of them may show up in a message or a repr."""
    return [line for line in pem_bytes.decode().splitlines() if line and not line.startswith("-----")]


def assert_no_key_material(text: str, *keys: bytes) -> None:
    for k in keys:
        for line in key_body_lines(k):
            assert line[:24] not in text


@dataclasses.dataclass
class PKI:
    rsa_root_key: rsa.RSAPrivateKey
    rsa_root: x509.Certificate
    ec384_inter_key: ec.EllipticCurvePrivateKey
    ec384_inter: x509.Certificate
    ed_root_key: ed25519.Ed25519PrivateKey
    ed_root: x509.Certificate
    other_root_key: ec.EllipticCurvePrivateKey
    other_root: x509.Certificate
    rsa_leaf_key: rsa.RSAPrivateKey
    ec256_key: ec.EllipticCurvePrivateKey
    ec256_key_b: ec.EllipticCurvePrivateKey
    ed_leaf_key: ed25519.Ed25519PrivateKey

    def leaf(
        self,
        *,
        not_before: dt.datetime = NOW - 30 * DAY,
        not_after: dt.datetime = NOW + 60 * DAY,
        eku: tuple[x509.ObjectIdentifier, ...] = (ExtendedKeyUsageOID.SERVER_AUTH,),
    ) -> x509.Certificate:
        """An EC P-256 leaf for SANS issued by the EC P-384 intermediate (itself under the RSA root)."""
        return build(
            cn="app.example.com",
            key=self.ec256_key,
            issuer=self.ec384_inter,
            issuer_key=self.ec384_inter_key,
            sans=SANS,
            not_before=not_before,
            not_after=not_after,
            eku=eku,
        )


@pytest.fixture(scope="module")
def pki() -> PKI:
    rsa_root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_root = build(
        cn="Test Root RSA", key=rsa_root_key, ca=True, not_before=NOW - 365 * DAY, not_after=NOW + 3650 * DAY
    )
    inter_key = ec.generate_private_key(ec.SECP384R1())
    inter = build(
        cn="Test Intermediate EC", key=inter_key, issuer=rsa_root, issuer_key=rsa_root_key, ca=True, path_length=0
    )
    ed_root_key = ed25519.Ed25519PrivateKey.generate()
    ed_root = build(cn="Test Root Ed25519", key=ed_root_key, ca=True, not_after=NOW + 3650 * DAY)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_root = build(cn="Other Root", key=other_key, ca=True)
    return PKI(
        rsa_root_key=rsa_root_key,
        rsa_root=rsa_root,
        ec384_inter_key=inter_key,
        ec384_inter=inter,
        ed_root_key=ed_root_key,
        ed_root=ed_root,
        other_root_key=other_key,
        other_root=other_root,
        rsa_leaf_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec256_key=ec.generate_private_key(ec.SECP256R1()),
        ec256_key_b=ec.generate_private_key(ec.SECP256R1()),
        ed_leaf_key=ed25519.Ed25519PrivateKey.generate(),
    )


def inspect(cert_pem: bytes | None, key: bytes | None, ca: bytes | None, now: dt.datetime = NOW) -> CertificateSignal:
    return certs.inspect_certificate(name="main", secret="app-tls", cert_pem=cert_pem, key_pem=key, ca_pem=ca, now=now)


# --------------------------------------------------------------------------- inspect_certificate


def test_valid_chain_with_intermediate(pki: PKI) -> None:
    leaf = pki.leaf()
    sig = inspect(pem(leaf, pki.ec384_inter), key_pem(pki.ec256_key), pem(pki.rsa_root))
    assert sig.present and sig.error is None
    assert (sig.name, sig.secret) == ("main", "app-tls")
    assert sig.key_matches is True
    assert sig.chain_valid is True and sig.chain_error is None
    assert sig.not_after == NOW + 60 * DAY
    assert sig.days_left == pytest.approx(60.0)
    assert sig.sans == SANS  # DNS names first, then IP addresses, as in the certificate


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_valid_rsa_and_ed25519_leaves(pki: PKI, kind: str) -> None:
    if kind == "rsa":
        leaf_key: CertificateIssuerPrivateKeyTypes = pki.rsa_leaf_key
        leaf = build(
            cn="rsa.example", key=leaf_key, issuer=pki.rsa_root, issuer_key=pki.rsa_root_key, sans=("rsa.example",)
        )
        root = pki.rsa_root
    else:
        leaf_key = pki.ed_leaf_key
        leaf = build(
            cn="ed.example", key=leaf_key, issuer=pki.ed_root, issuer_key=pki.ed_root_key, sans=("ed.example",)
        )
        root = pki.ed_root
    sig = inspect(pem(leaf), key_pem(leaf_key), pem(root))
    assert sig.error is None and sig.key_matches is True
    assert sig.chain_valid is True, sig.chain_error
    assert certs.verify_pair(pem(leaf), key_pem(leaf_key), pem(root), now=NOW) == []


def test_rsa_pss_signature_is_verified(pki: PKI) -> None:
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = build(cn="PSS Inter", key=inter_key, issuer=pki.rsa_root, issuer_key=pki.rsa_root_key, ca=True, pss=True)
    leaf = build(cn="pss.example", key=pki.ec256_key, issuer=inter, issuer_key=inter_key, sans=("pss.example",))
    sig = inspect(pem(leaf, inter), key_pem(pki.ec256_key), pem(pki.rsa_root))
    assert sig.chain_valid is True, sig.chain_error
    # The same intermediate under another root key fails the PSS signature check.
    impostor_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # fast; only its signature matters
    impostor = build(cn="Test Root RSA", key=impostor_key, ca=True)
    bad = inspect(pem(leaf, inter), key_pem(pki.ec256_key), pem(impostor))
    assert bad.chain_valid is False
    assert "signature on 'CN=PSS Inter' does not verify" in (bad.chain_error or "")


def test_expiring_in_two_days_is_still_valid(pki: PKI) -> None:
    leaf = pki.leaf(not_after=NOW + 2 * DAY)
    sig = inspect(pem(leaf, pki.ec384_inter), key_pem(pki.ec256_key), pem(pki.rsa_root))
    assert sig.days_left == pytest.approx(2.0)
    assert sig.chain_valid is True
    assert certs.verify_pair(pem(leaf, pki.ec384_inter), key_pem(pki.ec256_key), pem(pki.rsa_root), now=NOW) == []


def test_expired_has_negative_days_and_invalid_chain(pki: PKI) -> None:
    leaf = pki.leaf(not_before=NOW - 90 * DAY, not_after=NOW - 1.5 * DAY)
    sig = inspect(pem(leaf, pki.ec384_inter), key_pem(pki.ec256_key), pem(pki.rsa_root))
    assert sig.days_left == pytest.approx(-1.5)
    assert sig.key_matches is True
    assert sig.chain_valid is False
    assert "'CN=app.example.com' expired at 2026-11-25T15:00:00+00:00" in (sig.chain_error or "")


def test_not_yet_valid(pki: PKI) -> None:
    leaf = pki.leaf(not_before=NOW + DAY)
    sig = inspect(pem(leaf, pki.ec384_inter), key_pem(pki.ec256_key), pem(pki.rsa_root))
    assert sig.chain_valid is False
    assert "is not valid before 2026-11-28" in (sig.chain_error or "")


def test_expired_intermediate_breaks_the_chain(pki: PKI) -> None:
    inter = build(
        cn="Old Inter",
        key=pki.ec384_inter_key,
        issuer=pki.rsa_root,
        issuer_key=pki.rsa_root_key,
        ca=True,
        not_before=NOW - 400 * DAY,
        not_after=NOW - DAY,
    )
    leaf = build(cn="x.example", key=pki.ec256_key, issuer=inter, issuer_key=pki.ec384_inter_key, sans=("x.example",))
    sig = inspect(pem(leaf, inter), key_pem(pki.ec256_key), pem(pki.rsa_root))
    assert sig.chain_valid is False
    assert "'CN=Old Inter' expired" in (sig.chain_error or "")


def test_key_mismatch(pki: PKI) -> None:
    leaf = pki.leaf()
    sig = inspect(pem(leaf, pki.ec384_inter), key_pem(pki.ec256_key_b), pem(pki.rsa_root))
    assert sig.key_matches is False
    assert sig.error is None  # a readable key that does not match is not "malformed"
    assert sig.chain_valid is True


def test_wrong_ca(pki: PKI) -> None:
    leaf = pki.leaf()
    sig = inspect(pem(leaf, pki.ec384_inter), key_pem(pki.ec256_key), pem(pki.other_root))
    assert sig.chain_valid is False
    assert "no trusted CA or intermediate issued 'CN=Test Intermediate EC'" in (sig.chain_error or "")


def test_impostor_ca_with_the_same_name(pki: PKI) -> None:
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    impostor = build(cn="Test Root RSA", key=impostor_key, ca=True)
    sig = inspect(pem(pki.leaf(), pki.ec384_inter), key_pem(pki.ec256_key), pem(impostor))
    assert sig.chain_valid is False
    assert "signature on 'CN=Test Intermediate EC' does not verify" in (sig.chain_error or "")


def test_missing_intermediate_breaks_the_chain(pki: PKI) -> None:
    sig = inspect(pem(pki.leaf()), key_pem(pki.ec256_key), pem(pki.rsa_root))
    assert sig.chain_valid is False
    assert "no trusted CA or intermediate issued 'CN=app.example.com'" in (sig.chain_error or "")


def test_tampered_signature(pki: PKI) -> None:
    der = bytearray(pki.leaf().public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature value; the structure still parses
    tampered = x509.load_der_x509_certificate(bytes(der))
    sig = inspect(pem(tampered, pki.ec384_inter), key_pem(pki.ec256_key), pem(pki.rsa_root))
    assert sig.error is None and sig.key_matches is True
    assert sig.chain_valid is False
    assert "signature on 'CN=app.example.com' does not verify" in (sig.chain_error or "")


def test_issuer_that_is_not_a_ca(pki: PKI) -> None:
    not_ca = build(cn="Leafy Issuer", key=pki.ec384_inter_key, issuer=pki.rsa_root, issuer_key=pki.rsa_root_key)
    leaf = build(cn="y.example", key=pki.ec256_key, issuer=not_ca, issuer_key=pki.ec384_inter_key, sans=("y.example",))
    sig = inspect(pem(leaf, not_ca), key_pem(pki.ec256_key), pem(pki.rsa_root))
    assert sig.chain_valid is False
    assert "'CN=Leafy Issuer' signed 'CN=y.example' but is not a CA" in (sig.chain_error or "")


def test_path_length_constraint(pki: PKI) -> None:
    # The EC intermediate has pathLen 0: it may not sign another CA.
    sub_key = ec.generate_private_key(ec.SECP256R1())
    sub = build(cn="Sub CA", key=sub_key, issuer=pki.ec384_inter, issuer_key=pki.ec384_inter_key, ca=True)
    leaf = build(cn="z.example", key=pki.ec256_key, issuer=sub, issuer_key=sub_key, sans=("z.example",))
    sig = inspect(pem(leaf, sub, pki.ec384_inter), key_pem(pki.ec256_key), pem(pki.rsa_root))
    assert sig.chain_valid is False
    assert "allows 0 intermediate(s) below it, the chain has 1" in (sig.chain_error or "")


def test_rfc5280_path_validation_enforces_name_constraints(pki: PKI) -> None:
    # Signatures, dates and basicConstraints all hold; the intermediate may only issue for internal.example.
    constrained = build(
        cn="Internal Only",
        key=pki.other_root_key,
        issuer=pki.rsa_root,
        issuer_key=pki.rsa_root_key,
        ca=True,
        permitted_dns=("internal.example",),
    )
    outside = build(
        cn="outside", key=pki.ec256_key, issuer=constrained, issuer_key=pki.other_root_key, sans=("app.example.com",)
    )
    inside = build(
        cn="inside", key=pki.ec256_key, issuer=constrained, issuer_key=pki.other_root_key, sans=("a.internal.example",)
    )
    sig = inspect(pem(outside, constrained), key_pem(pki.ec256_key), pem(pki.rsa_root))
    assert sig.chain_valid is False
    assert (sig.chain_error or "").startswith("RFC 5280 path validation refused it")
    assert "name constraints" in (sig.chain_error or "")
    assert inspect(pem(inside, constrained), key_pem(pki.ec256_key), pem(pki.rsa_root)).chain_valid is True
    reasons = certs.verify_pair(pem(outside, constrained), key_pem(pki.ec256_key), pem(pki.rsa_root), now=NOW)
    assert len(reasons) == 1 and "name constraints" in reasons[0]


def test_without_ca_the_chain_is_unknown(pki: PKI) -> None:
    sig = inspect(pem(pki.leaf(), pki.ec384_inter), key_pem(pki.ec256_key), None)
    assert sig.chain_valid is None and sig.chain_error is None and sig.error is None
    empty_ca = inspect(pem(pki.leaf(), pki.ec384_inter), key_pem(pki.ec256_key), b"")
    assert empty_ca.chain_valid is None and empty_ca.error is None


def test_naive_now_is_utc(pki: PKI) -> None:
    sig = inspect(
        pem(pki.leaf(), pki.ec384_inter), key_pem(pki.ec256_key), pem(pki.rsa_root), now=NOW.replace(tzinfo=None)
    )
    assert sig.days_left == pytest.approx(60.0)


GARBAGE_CERTS = {
    "empty": (b"", "tls.crt is empty"),
    "whitespace": (b"\n  \n", "tls.crt is empty"),
    "garbage": (b"\x00\x01 this is not a certificate", "tls.crt holds no PEM certificate"),
    "bad base64 body": (
        b"-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
        "tls.crt holds a malformed PEM certificate",
    ),
    "valid base64, not DER": (
        b"-----BEGIN CERTIFICATE-----\n"
        + base64.encodebytes(b"hello world, not a certificate")
        + b"-----END CERTIFICATE-----\n",
        "tls.crt holds a malformed PEM certificate",
    ),
}


@pytest.mark.parametrize("case", list(GARBAGE_CERTS))
def test_malformed_certificate_is_an_error_not_an_exception(pki: PKI, case: str) -> None:
    data, message = GARBAGE_CERTS[case]
    sig = inspect(data, key_pem(pki.ec256_key), pem(pki.rsa_root))
    assert sig.present is True
    assert sig.error == message
    assert sig.not_after is None and sig.key_matches is None and sig.chain_valid is None
    assert certs.verify_pair(data, key_pem(pki.ec256_key), None, now=NOW) == [
        message.replace("tls.crt", "the certificate")
    ]


def test_malformed_keys(pki: PKI) -> None:
    good = key_pem(pki.ec256_key)
    lines = good.splitlines()
    corrupted = b"\n".join([lines[0], b"AAAA" + lines[1][4:], *lines[2:]])
    encrypted = pki.ec256_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse"),
    )
    cases = {
        b"": "tls.key is empty",
        b"garbage": "tls.key holds no PEM private key",
        pem(pki.leaf()): "tls.key holds no PEM private key",
        corrupted: "tls.key holds a private key that cannot be read",
        encrypted: "tls.key is encrypted with a passphrase; Zentinel needs an unencrypted key",
    }
    for data, message in cases.items():
        sig = inspect(pem(pki.leaf(), pki.ec384_inter), data, pem(pki.rsa_root))
        assert sig.error == message
        assert sig.key_matches is None
        assert sig.chain_valid is True  # the certificate itself is still judged
        assert_no_key_material(message, good, encrypted)
        reasons = certs.verify_pair(pem(pki.leaf(), pki.ec384_inter), data, pem(pki.rsa_root), now=NOW)
        assert reasons == [message.replace("tls.key", "the private key")]


def test_malformed_ca_bundle(pki: PKI) -> None:
    sig = inspect(pem(pki.leaf(), pki.ec384_inter), key_pem(pki.ec256_key), b"not a ca")
    assert sig.error == "ca.crt holds no PEM certificate"
    assert sig.chain_valid is None and sig.key_matches is True


def test_missing_parts(pki: PKI) -> None:
    absent = inspect(None, None, None)
    assert absent.present is False and absent.error is None and absent.days_left is None
    key_only = inspect(None, key_pem(pki.ec256_key), None)
    assert key_only.present is False and key_only.error == "the Secret has tls.key but no tls.crt"
    cert_only = inspect(pem(pki.leaf(), pki.ec384_inter), None, pem(pki.rsa_root))
    assert cert_only.present is True and cert_only.key_matches is None
    assert cert_only.error == "the Secret has no tls.key"
    assert cert_only.chain_valid is True


def test_cert_without_sans_and_empty_subject() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    bare = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bare")]))
        .public_key(key.public_key())
        .serial_number(0xABC)
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + DAY)
        .sign(key, hashes.SHA256())
    )
    sig = inspect(pem(bare), key_pem(key), pem(bare))
    assert sig.sans == () and sig.key_matches is True
    assert sig.chain_valid is True  # the certificate is itself in ca.crt
    other = ec.generate_private_key(ec.SECP256R1())
    orphan = inspect(pem(bare), key_pem(key), pem(build(cn="Unrelated", key=other, ca=True)))
    assert "the certificate with serial abc" in (orphan.chain_error or "")


# --------------------------------------------------------------------------- verify_pair


def test_verify_pair_accepts_a_good_pair(pki: PKI) -> None:
    leaf = pki.leaf()
    reasons = certs.verify_pair(
        pem(leaf, pki.ec384_inter),
        key_pem(pki.ec256_key),
        pem(pki.rsa_root),
        now=NOW,
        expected_sans=["WWW.example.com.", "2001:DB8:0::7", "10.1.2.3", "app.example.com"],
    )
    assert reasons == []


def test_verify_pair_refuses_each_bad_case(pki: PKI) -> None:
    chain = pem(pki.leaf(), pki.ec384_inter)
    key = key_pem(pki.ec256_key)
    root = pem(pki.rsa_root)

    def refuse(cert: bytes, key: bytes, ca: bytes | None, expected_sans: list[str] | None = None) -> list[str]:
        reasons = certs.verify_pair(cert, key, ca, now=NOW, expected_sans=expected_sans)
        assert reasons, "expected a refusal"
        return reasons

    assert refuse(chain, key_pem(pki.ec256_key_b), root) == [
        "the private key does not match the certificate's public key"
    ]
    assert refuse(chain, key, pem(pki.other_root)) == [
        "the chain does not verify: no trusted CA or intermediate issued 'CN=Test Intermediate EC' "
        "(issuer 'CN=Test Root RSA')"
    ]
    assert refuse(pem(pki.leaf()), key, root) == [
        "the chain does not verify: no trusted CA or intermediate issued 'CN=app.example.com' "
        "(issuer 'CN=Test Intermediate EC')"
    ]
    expired = pem(pki.leaf(not_after=NOW - DAY), pki.ec384_inter)
    assert refuse(expired, key, root) == ["'CN=app.example.com' expired at 2026-11-26T03:00:00+00:00"]
    early = pem(pki.leaf(not_before=NOW + DAY), pki.ec384_inter)
    assert refuse(early, key, root) == ["'CN=app.example.com' is not valid before 2026-11-28T03:00:00+00:00"]
    (sans,) = refuse(chain, key, root, expected_sans=["app.example.com", "api.example.com", "10.1.2.3"])
    assert sans == (
        "the SANs differ from those expected (missing: api.example.com; unexpected: 2001:db8::7, www.example.com)"
    )
    client_only = pem(pki.leaf(eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)), pki.ec384_inter)
    assert "the certificate's extended key usage does not allow serverAuth" in refuse(client_only, key, root)
    # Several problems at once are all listed.
    assert len(refuse(expired, key_pem(pki.ec256_key_b), pem(pki.other_root))) == 3


def test_verify_pair_without_ca(pki: PKI) -> None:
    chain = pem(pki.leaf(), pki.ec384_inter)
    (reason,) = certs.verify_pair(chain, key_pem(pki.ec256_key), None, now=NOW)
    assert "no CA certificate to verify the chain against" in reason
    # A chain that ends at its root verifies against that root's own signature.
    full = pem(pki.leaf(), pki.ec384_inter, pki.rsa_root)
    assert certs.verify_pair(full, key_pem(pki.ec256_key), None, now=NOW) == []


# --------------------------------------------------------------------------- issuing


@pytest.mark.parametrize("kind", ["rsa-2048", "ec-p256", "ec-p384", "ed25519"])
def test_issue_from_ca_keeps_sans_cn_and_key_type(pki: PKI, kind: str) -> None:
    keys: dict[str, CertificateIssuerPrivateKeyTypes] = {
        "rsa-2048": pki.rsa_leaf_key,
        "ec-p256": pki.ec256_key,
        "ec-p384": pki.ec384_inter_key,
        "ed25519": pki.ed_leaf_key,
    }
    template_key = keys[kind]
    template = build(
        cn="app.example.com", key=template_key, issuer=pki.rsa_root, issuer_key=pki.rsa_root_key, sans=SANS
    )
    issued = certs.issue_from_ca(
        template_cert_pem=pem(template),
        sans=[],
        common_name=None,
        ca_cert_pem=pem(pki.ec384_inter, pki.rsa_root),
        ca_key_pem=key_pem(pki.ec384_inter_key),
        now=NOW,
        validity=30 * DAY,
    )
    assert certs.key_type_of(issued.cert_pem) == kind == certs.key_type_of(pem(template))
    new = x509.load_pem_x509_certificate(issued.cert_pem)
    new_key = serialization.load_pem_private_key(issued.key_pem, password=None)
    assert new_key.public_key() != template_key.public_key()  # a new key, never the old one
    assert new.subject.rfc4514_string() == "CN=app.example.com"
    assert new.issuer == pki.ec384_inter.subject
    assert new.not_valid_after_utc == NOW + 30 * DAY
    assert new.not_valid_before_utc <= NOW
    eku = new.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    aki = new.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    inter_ski = pki.ec384_inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == inter_ski.digest
    ski = new.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(new.public_key()).digest
    assert new.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False

    assert certs.verify_pair(issued.fullchain_pem, issued.key_pem, pem(pki.rsa_root), now=NOW, expected_sans=SANS) == []
    # tls.crt carries the intermediate, not the root; ca.crt carries the CA bundle.
    assert issued.fullchain_pem == issued.cert_pem + pem(pki.ec384_inter)
    assert issued.chain_pem == pem(pki.ec384_inter, pki.rsa_root)


def test_issue_from_ca_explicit_names_and_rsa_ca(pki: PKI) -> None:
    issued = certs.issue_from_ca(
        template_cert_pem=None,
        sans=["new.example.com", "192.0.2.10"],
        common_name="new.example.com",
        ca_cert_pem=pem(pki.rsa_root),
        ca_key_pem=key_pem(pki.rsa_root_key),
        now=NOW,
        validity=90 * DAY,
    )
    assert certs.key_type_of(issued.cert_pem) == "ec-p256"  # the default without a template
    assert issued.fullchain_pem == issued.cert_pem  # a root CA is not served
    sig = inspect(issued.fullchain_pem, issued.key_pem, issued.chain_pem)
    assert sig.sans == ("new.example.com", "192.0.2.10")
    assert sig.chain_valid is True and sig.key_matches is True
    assert sig.days_left == pytest.approx(90.0)


def test_issue_from_ca_clamps_to_ca_expiry(pki: PKI) -> None:
    short_ca = build(
        cn="Short CA",
        key=pki.ec384_inter_key,
        issuer=pki.rsa_root,
        issuer_key=pki.rsa_root_key,
        ca=True,
        not_after=NOW + 10 * DAY,
    )
    issued = certs.issue_from_ca(
        template_cert_pem=None,
        sans=["a.example"],
        common_name=None,
        ca_cert_pem=pem(short_ca),
        ca_key_pem=key_pem(pki.ec384_inter_key),
        now=NOW,
        validity=90 * DAY,
    )
    new = x509.load_pem_x509_certificate(issued.cert_pem)
    assert new.not_valid_after_utc == NOW + 10 * DAY
    assert new.subject == x509.Name([])  # no CN asked for: empty subject, critical SAN
    assert new.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical is True
    assert certs.verify_pair(issued.fullchain_pem, issued.key_pem, pem(pki.rsa_root), now=NOW) == []


def test_issue_from_ca_refuses_unusable_cas(pki: PKI) -> None:
    def issue(ca_cert: bytes, ca_key: bytes, sans: tuple[str, ...] = ("a.example",)) -> IssuedCertificate:
        return certs.issue_from_ca(
            template_cert_pem=None,
            sans=sans,
            common_name=None,
            ca_cert_pem=ca_cert,
            ca_key_pem=ca_key,
            now=NOW,
            validity=DAY,
        )

    with pytest.raises(CertificateError, match="the CA key does not match the CA certificate") as mismatch:
        issue(pem(pki.rsa_root), key_pem(pki.ec256_key))
    assert_no_key_material(str(mismatch.value), key_pem(pki.ec256_key))
    with pytest.raises(CertificateError, match="is not a CA certificate"):
        issue(pem(pki.leaf()), key_pem(pki.ec256_key))
    old_ca = build(cn="Old CA", key=pki.other_root_key, ca=True, not_before=NOW - 20 * DAY, not_after=NOW - DAY)
    with pytest.raises(CertificateError, match="the CA cannot issue: 'CN=Old CA' expired"):
        issue(pem(old_ca), key_pem(pki.other_root_key))
    with pytest.raises(CertificateError, match="the CA key holds no PEM private key"):
        issue(pem(pki.other_root), b"nope")
    with pytest.raises(CertificateError, match="needs at least one DNS name"):
        issue(pem(pki.other_root), key_pem(pki.other_root_key), sans=())


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "ed25519"])
def test_self_signed(key_type: str) -> None:
    issued = certs.self_signed(
        sans=["dev.local", "127.0.0.1"], common_name="dev.local", key_type=key_type, now=NOW, validity=7 * DAY
    )
    assert certs.key_type_of(issued.cert_pem) == key_type
    assert issued.chain_pem == issued.cert_pem == issued.fullchain_pem
    assert (
        certs.verify_pair(issued.cert_pem, issued.key_pem, None, now=NOW, expected_sans=["dev.local", "127.0.0.1"])
        == []
    )
    assert certs.verify_pair(issued.cert_pem, issued.key_pem, issued.chain_pem, now=NOW) == []
    sig = inspect(issued.cert_pem, issued.key_pem, issued.chain_pem)
    assert sig.chain_valid is True and sig.key_matches is True
    assert certs.verify_pair(issued.cert_pem, issued.key_pem, None, now=NOW + 8 * DAY) != []


def test_self_signed_refuses_unknown_or_weak_key_types() -> None:
    for bad in ("rsa-1024", "dsa-2048", "ec-p192", ""):
        with pytest.raises(CertificateError, match="unsupported key type"):
            certs.self_signed(sans=["a"], common_name=None, key_type=bad, now=NOW, validity=DAY)
    with pytest.raises(CertificateError, match="neither an IP address nor an ASCII DNS name"):
        certs.self_signed(sans=["bad name"], common_name=None, now=NOW, validity=DAY)


# --------------------------------------------------------------------------- fingerprints and Secret data


def test_fingerprint_of_pem_and_der(pki: PKI) -> None:
    leaf = pki.leaf()
    der = leaf.public_bytes(serialization.Encoding.DER)
    expected = hashlib.sha256(der).hexdigest()
    assert certs.fingerprint_sha256(der) == expected
    assert certs.fingerprint_sha256(pem(leaf, pki.ec384_inter)) == expected  # the first certificate
    assert certs.fingerprint_sha256(pem(pki.ec384_inter)) != expected
    for garbage in (b"", b"junk", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"):
        with pytest.raises(CertificateError):
            certs.fingerprint_sha256(garbage)


def test_secret_data_round_trip(pki: PKI) -> None:
    issued = certs.issue_from_ca(
        template_cert_pem=pem(pki.leaf()),
        sans=[],
        common_name=None,
        ca_cert_pem=pem(pki.ec384_inter, pki.rsa_root),
        ca_key_pem=key_pem(pki.ec384_inter_key),
        now=NOW,
        validity=30 * DAY,
    )
    data = certs.tls_secret_data(issued)
    assert set(data) == {"tls.crt", "tls.key", "ca.crt"}
    assert base64.b64decode(data["tls.key"]) == issued.key_pem
    contents = certs.read_tls_secret(data)
    cert_pem, key, ca, error = contents
    assert error is None
    assert (cert_pem, key, ca) == (issued.fullchain_pem, issued.key_pem, issued.chain_pem)
    sig = certs.inspect_tls_secret(name="main", secret="app-tls", data=data, now=NOW)
    assert sig.present and sig.error is None and sig.key_matches and sig.chain_valid
    assert sig.sans == SANS
    assert certs.verify_pair(cert_pem or b"", key or b"", ca, now=NOW, expected_sans=SANS) == []


def test_read_tls_secret_errors() -> None:
    assert certs.read_tls_secret({}) == (None, None, None, "the Secret has no data")
    assert certs.read_tls_secret(None).error == "the Secret has no data"
    crt = base64.b64encode(b"cert bytes").decode()
    only_crt = certs.read_tls_secret({"tls.crt": crt})
    assert only_crt.cert_pem == b"cert bytes" and only_crt.key_pem is None
    assert only_crt.error == "the Secret has no tls.key"
    secret_looking = "c2VjcmV0!!!notbase64"
    bad = certs.read_tls_secret({"tls.crt": crt, "tls.key": secret_looking, "ca.crt": "Zm9v\nYmFy\n"})
    assert bad.key_pem is None and bad.ca_pem == b"foobar"  # line breaks in base64 are tolerated
    assert bad.error == "tls.key is not valid base64"
    assert secret_looking not in bad.error and secret_looking not in repr(bad)


def test_inspect_tls_secret_merges_errors_once(pki: PKI) -> None:
    crt = base64.b64encode(pem(pki.leaf(), pki.ec384_inter)).decode()
    undecodable = certs.inspect_tls_secret(name="main", secret="s", data={"tls.crt": crt, "tls.key": "%%%"}, now=NOW)
    assert undecodable.present is True
    assert undecodable.error == "tls.key is not valid base64"  # not also "the Secret has no tls.key"
    missing = certs.inspect_tls_secret(name="main", secret="s", data={"tls.crt": crt}, now=NOW)
    assert missing.error == "the Secret has no tls.key"
    no_crt = certs.inspect_tls_secret(name="main", secret="s", data={"ca.crt": crt}, now=NOW)
    assert no_crt.present is False and no_crt.error == "the Secret has no tls.crt; the Secret has no tls.key"


def test_reprs_hide_the_key(pki: PKI) -> None:
    issued = certs.self_signed(sans=["dev.local"], common_name=None, now=NOW, validity=DAY)
    for text in (repr(issued), str(issued), f"{issued}", repr(certs.read_tls_secret(certs.tls_secret_data(issued)))):
        assert "redacted" in text
        assert_no_key_material(text, issued.key_pem)
        assert "PRIVATE KEY" not in text
    assert isinstance(issued, IssuedCertificate)
    # The data is still there for the one place that needs it.
    assert b"PRIVATE KEY" in issued.key_pem


@pytest.mark.parametrize(
    "sans",
    [("*.apps.example.com",), ("svc_internal.example",), ("svc_internal.example", "*.apps.example.com", "10.9.8.7")],
)
def test_wildcard_and_underscore_sans_verify(pki: PKI, sans: tuple[str, ...]) -> None:
    leaf = build(cn="apps", key=pki.ec256_key, issuer=pki.ec384_inter, issuer_key=pki.ec384_inter_key, sans=sans)
    sig = inspect(pem(leaf, pki.ec384_inter), key_pem(pki.ec256_key), pem(pki.rsa_root))
    assert sig.sans == sans
    assert sig.chain_valid is True, sig.chain_error
    # The strict verifier still runs where it can: the same leaf under a constrained CA is refused.
    if "*.apps.example.com" in sans:
        constrained = build(
            cn="Only internal",
            key=pki.other_root_key,
            issuer=pki.rsa_root,
            issuer_key=pki.rsa_root_key,
            ca=True,
            permitted_dns=("internal.example",),
        )
        bad = build(cn="apps", key=pki.ec256_key, issuer=constrained, issuer_key=pki.other_root_key, sans=sans)
        refused = inspect(pem(bad, constrained), key_pem(pki.ec256_key), pem(pki.rsa_root))
        assert refused.chain_valid is False and "RFC 5280" in (refused.chain_error or "")
