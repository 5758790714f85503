"""The TLS probe against real TLS servers on a loopback address: what is served, SNI, a refused port,
a server that never answers the handshake, a plain-text server, and a certificate swapped in place
(as Zentinel does after a reload)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from cryptography import x509

from zentinel_operator.core import certs
from zentinel_operator.signals.tls_probe import served_certificate

HOST = "127.128.0.77"
NOW = dt.datetime.now(dt.UTC)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def cert_a() -> certs.IssuedCertificate:
    return certs.self_signed(
        sans=["a.zentinel.test", HOST], common_name="a.zentinel.test", now=NOW, validity=dt.timedelta(days=2)
    )


@pytest.fixture(scope="module")
def cert_b() -> certs.IssuedCertificate:
    return certs.self_signed(
        sans=["b.zentinel.test"], common_name="b.zentinel.test", now=NOW, validity=dt.timedelta(days=2)
    )


def load(context: ssl.SSLContext, issued: certs.IssuedCertificate, directory: Path) -> None:
    """Load a certificate into a server context, as Zentinel reads cert-file and key-file."""
    name = hashlib.sha256(issued.cert_pem).hexdigest()[:12]
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(issued.fullchain_pem)
    key_file.write_bytes(issued.key_pem)
    key_file.chmod(0o600)
    context.load_cert_chain(cert_file, key_file)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def close_after_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def serve(handler: Handler, context: ssl.SSLContext | None) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, HOST, 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    return server, port


@pytest.fixture
async def tls_server(
    cert_a: certs.IssuedCertificate, tmp_path: Path
) -> AsyncIterator[tuple[ssl.SSLContext, int, list[str | None]]]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load(context, cert_a, tmp_path)
    names: list[str | None] = []

    def remember_sni(_obj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        names.append(server_name)

    context.sni_callback = remember_sni
    server, port = await serve(close_after_handshake, context)
    try:
        yield context, port, names
    finally:
        server.close()
        await server.wait_closed()


async def test_sees_the_served_certificate_and_sends_sni(
    tls_server: tuple[ssl.SSLContext, int, list[str | None]], cert_a: certs.IssuedCertificate
) -> None:
    _, port, names = tls_server
    result = await served_certificate(HOST, port, server_name="a.zentinel.test", timeout=5)
    assert result.ok and result.error is None
    assert result.der is not None
    served = x509.load_der_x509_certificate(result.der)
    assert served == x509.load_pem_x509_certificate(cert_a.cert_pem)
    assert result.fingerprint == certs.fingerprint_sha256(cert_a.cert_pem) == hashlib.sha256(result.der).hexdigest()
    assert names == ["a.zentinel.test"]
    # Without a server name, an IP host sends no SNI at all.
    again = await served_certificate(HOST, port, server_name=None, timeout=5)
    assert again.fingerprint == result.fingerprint
    assert names == ["a.zentinel.test", None]
    assert "bytes>" in repr(result) and str(len(result.der)) in repr(result)


async def test_sees_a_swapped_certificate(
    tls_server: tuple[ssl.SSLContext, int, list[str | None]],
    cert_a: certs.IssuedCertificate,
    cert_b: certs.IssuedCertificate,
    tmp_path: Path,
) -> None:
    context, port, _ = tls_server
    before = await served_certificate(HOST, port, server_name="b.zentinel.test", timeout=5)
    assert before.fingerprint == certs.fingerprint_sha256(cert_a.cert_pem)
    load(context, cert_b, tmp_path)  # same key type: replaces the served certificate in place
    after = await served_certificate(HOST, port, server_name="b.zentinel.test", timeout=5)
    assert after.ok
    assert after.fingerprint == certs.fingerprint_sha256(cert_b.cert_pem)
    assert after.fingerprint != before.fingerprint


async def test_refused_port() -> None:
    # A bound socket that does not listen answers a connection with a reset: no race with other tests.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
        result = await served_certificate(HOST, port, server_name=None, timeout=5)
    assert not result.ok and result.der is None and result.fingerprint is None
    assert result.error == f"connection to {HOST}:{port} refused"


async def test_timeout_when_the_server_never_handshakes() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Accept, read the ClientHello, never answer; stop when the client gives up.
        try:
            async with asyncio.timeout(10):
                while await reader.read(4096):
                    pass
        finally:
            writer.close()

    server, port = await serve(silent, None)
    try:
        started = time.monotonic()
        result = await served_certificate(HOST, port, server_name="a.zentinel.test", timeout=0.3)
        elapsed = time.monotonic() - started
    finally:
        server.close()
        await server.wait_closed()
    assert not result.ok and result.der is None
    assert result.error == f"no TLS handshake with {HOST}:{port} within 0.3s"
    assert 0.25 <= elapsed < 3


async def test_plain_text_server_is_a_handshake_error() -> None:
    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server, port = await serve(http, None)
    try:
        result = await served_certificate(HOST, port, server_name=None, timeout=5)
    finally:
        server.close()
        await server.wait_closed()
    assert not result.ok and result.der is None
    assert result.error is not None and f"{HOST}:{port}" in result.error


async def test_unresolvable_host_is_an_error_not_an_exception() -> None:
    result = await served_certificate("does-not-exist.invalid", 443, server_name=None, timeout=5)
    assert not result.ok
    # NXDOMAIN where a resolver answers; a resolver that never answers ends in the probe's own deadline.
    assert result.error is not None
    assert result.error.startswith(("cannot reach does-not-exist.invalid:443", "no TLS handshake with"))
