"""TLS listeners on the kwok pod IPs, each serving the certificate its pod "mounted" at start.

Like a real pod, a listener loads the Secret once when its pod appears: a rotated certificate is
only served by pods started after the rotation (the operator rolls the Deployment for that).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import tempfile
import threading
from pathlib import Path

from .emulator import EmulatorLoop
from .kube import Kube


class TLSPods:
    def __init__(self, kube: Kube, namespace: str, selector: str, secret: str, port: int = 8443) -> None:
        self.kube = kube
        self.namespace = namespace
        self.selector = selector
        self.secret = secret
        self.port = port
        self.loop = EmulatorLoop("tls-pods")
        self.servers: dict[str, asyncio.AbstractServer] = {}
        self._lock = threading.Lock()
        self._dir = Path(tempfile.mkdtemp(prefix="tls-pods-"))
        self.closed = False

    def _context(self, pod: str) -> ssl.SSLContext:
        data = (self.kube.get("secret", self.secret, self.namespace) or {}).get("data") or {}
        cert, key = self._dir / f"{pod}.crt", self._dir / f"{pod}.key"
        cert.write_bytes(base64.b64decode(data["tls.crt"]))
        key.write_bytes(base64.b64decode(data["tls.key"]))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx

    def sync(self) -> None:
        pods = {
            p["metadata"]["name"]: p["status"]["podIP"]
            for p in self.kube.list("pods", self.namespace, self.selector)
            if p.get("status", {}).get("podIP")
            and p["status"].get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")
        }
        with self._lock:
            if self.closed:
                return
            for name in list(self.servers):
                if name not in pods:
                    server = self.servers.pop(name)
                    self.loop.call(lambda s=server: _close(s))
            for name, ip in pods.items():
                if name in self.servers:
                    continue
                ctx = self._context(name)

                async def start(ip: str = ip, ctx: ssl.SSLContext = ctx) -> asyncio.AbstractServer:
                    return await asyncio.start_server(_answer, ip, self.port, ssl=ctx)

                self.servers[name] = self.loop.call(start)

    def stop(self) -> None:
        with self._lock:
            self.closed = True
            for server in self.servers.values():
                self.loop.call(lambda s=server: _close(s))
            self.servers.clear()
        self.loop.close()


async def _close(server: asyncio.AbstractServer) -> None:
    server.close()
    await server.wait_closed()


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await asyncio.wait_for(reader.read(1024), 2)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
    except (TimeoutError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()
