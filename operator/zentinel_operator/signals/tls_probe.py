"""Which certificate does a listener actually serve? One TLS handshake, no verification.

Zentinel reloads certificates only after a successful config reload, so a renewed Secret is not
proof that clients see the renewed certificate. The probe shakes hands with a pod's listener and
returns the leaf it presented; comparing its fingerprint with
:func:`zentinel_operator.core.certs.fingerprint_sha256` of ``tls.crt`` fills
``CertificateSignal.served_matches``. It does not verify anything on purpose: an expired or
mismatched certificate is exactly what it must be able to see.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl

from ..core.certs import CertificateError, fingerprint_sha256

__all__ = ["ProbeResult", "served_certificate"]

_CLOSE_TIMEOUT = 1.0


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    ok: bool
    der: bytes | None = None  # the leaf certificate the server presented
    fingerprint: str | None = None  # lower-case hex SHA-256 of ``der``
    error: str | None = None  # why there is no certificate, for a person

    def __repr__(self) -> str:
        der = "None" if self.der is None else f"<{len(self.der)} bytes>"
        return f"ProbeResult(ok={self.ok}, der={der}, fingerprint={self.fingerprint!r}, error={self.error!r})"


def _client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we look at what is served; we do not trust it
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def served_certificate(
    host: str,
    port: int,
    *,
    server_name: str | None,
    timeout: float,  # noqa: ASYNC109 - the probe owns its deadline, so callers can gather many
) -> ProbeResult:
    """Shake hands with ``host:port`` (sending ``server_name`` as SNI when given) and return the leaf
    certificate the server presented. Network and TLS failures come back as ``ok=False`` with an
    ``error``; only cancellation propagates.
    """
    # Without a server name, SNI carries the host; Python never sends an IP address as SNI.
    sni = server_name or host
    where = f"{host}:{port}"
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port, ssl=_client_context(), server_hostname=sni)
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if isinstance(ssl_object, ssl.SSLObject) else None
        if not der:
            return ProbeResult(ok=False, error=f"{where} completed a handshake without presenting a certificate")
        return ProbeResult(ok=True, der=der, fingerprint=fingerprint_sha256(der))
    except TimeoutError:
        return ProbeResult(ok=False, error=f"no TLS handshake with {where} within {timeout:g}s")
    except ConnectionRefusedError:
        return ProbeResult(ok=False, error=f"connection to {where} refused")
    except ssl.SSLError as exc:
        return ProbeResult(ok=False, error=f"TLS handshake with {where} failed: {exc.reason or exc}")
    except (ConnectionError, asyncio.IncompleteReadError, EOFError) as exc:
        return ProbeResult(ok=False, error=f"{where} closed the connection during the TLS handshake ({exc!s})")
    except OSError as exc:
        return ProbeResult(ok=False, error=f"cannot reach {where}: {exc.strerror or exc}")
    except CertificateError:
        return ProbeResult(ok=False, error=f"{where} presented a certificate that cannot be parsed")
    except (ValueError, OverflowError) as exc:  # a host name IDNA refuses, a port out of range
        return ProbeResult(ok=False, error=f"cannot connect to {where}: {exc}")
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CLOSE_TIMEOUT):
                    await writer.wait_closed()
