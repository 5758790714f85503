"""The admission webhook's server: kopf's WebhookServer with a certificate from the chart or
cert-manager in production (``ZENTINEL_OPERATOR_WEBHOOK_CERT_DIR``), or one generated here with
``cryptography`` for development and tests."""

from __future__ import annotations

import datetime as dt
import ipaddress
import tempfile
from pathlib import Path

import kopf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .config import Settings


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def dev_certificate(directory: Path, hosts: list[str]) -> tuple[Path, Path, Path]:
    """A throwaway CA and a serving certificate for ``hosts``; returns (cert, key, ca) paths."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("zentinel-operator-webhook-ca"))
        .issuer_name(_name("zentinel-operator-webhook-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path, ca_path = directory / "tls.crt", directory / "tls.key", directory / "ca.crt"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path, ca_path


def server(settings: Settings) -> kopf.WebhookServer:
    host = settings.webhook_host or settings.webhook_addr
    if settings.webhook_cert_dir:
        d = settings.webhook_cert_dir
        cert, key, ca = d / "tls.crt", d / "tls.key", d / "ca.crt"
    else:
        cert, key, ca = dev_certificate(Path(tempfile.mkdtemp(prefix="zentinel-webhook-")), [host])
    return kopf.WebhookServer(
        addr=settings.webhook_addr,
        port=settings.webhook_port,
        host=host,
        certfile=str(cert),
        pkeyfile=str(key),
        cafile=str(ca) if ca.exists() else None,
    )
