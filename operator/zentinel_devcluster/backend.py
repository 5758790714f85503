"""A small HTTP/1.1 backend for the process kubelet: the upstream behind a real Zentinel on a process node.

``python -m zentinel_devcluster.backend --listen HOST:PORT --mode-file PATH [--name NAME]``

Its behaviour is the content of the mode file (re-read within 0.2 s of a change; case and surrounding
whitespace do not matter):

``ok`` (also a missing or empty file)
    200 with ``{"backend": NAME, "path": PATH}``.
``error``
    500 to every request.
``error:SHARE``
    500 to that share of requests, ``SHARE`` a decimal or a fraction in [0, 1] (``error:0.33``,
    ``error:1/3``). Deterministic: counting requests from 1 since the mode took effect, request k is a 500
    exactly when ``ceil(k*SHARE) > ceil((k-1)*SHARE)``, so the first N requests hold exactly
    ``ceil(N*SHARE)`` 500s (``error:0.33``: requests 1, 4, 7, ...). ``/healthz`` keeps its own counter, so
    health checks do not shift the data path's count.
``slow:SECONDS``
    sleep that long (0 to 3600) before answering 200; other requests are not held up.
``refuse``
    close the listening socket (new connections get ECONNREFUSED) and the idle keep-alive connections;
    listen again on the same address when the mode changes away from ``refuse``.

``/healthz`` follows the mode like every other path. Content that parses as none of these is logged and
ignored (the mode in effect stays). Every response carries ``X-Backend: NAME``.

Standard output gets ``backend NAME listening on HOST:PORT`` once bound (with the real port when PORT is 0)
and one line per mode change. SIGTERM or SIGINT: exit 0. An address that cannot be bound: a message on
standard error and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

POLL_INTERVAL = 0.2
MAX_SLOW_SECONDS = 3600.0
MAX_LINE = 16 * 1024
MAX_HEADERS = 128
HEADER_TIMEOUT = 30.0
BACKLOG = 512
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,252}")
REASONS = {200: "OK", 400: "Bad Request", 431: "Request Header Fields Too Large", 500: "Internal Server Error"}


@dataclass(frozen=True)
class Mode:
    """One parsed mode-file content. ``text`` is its canonical spelling, used in the log."""

    kind: str  # "ok" | "error" | "slow" | "refuse"
    text: str
    share: Fraction = Fraction(1)
    delay: float = 0.0


OK = Mode("ok", "ok")


def parse_mode(content: str) -> Mode:
    """The mode a mode file's content selects; ``ValueError`` when it is none of them."""
    text = content.strip().lower()
    if text in {"", "ok"}:
        return OK
    if text == "error":
        return Mode("error", "error")
    if text == "refuse":
        return Mode("refuse", "refuse")
    kind, sep, arg = text.partition(":")
    arg = arg.strip()
    if sep and kind == "error":
        try:
            share = Fraction(arg)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"error share {arg!r} is not a number") from None
        if not 0 <= share <= 1:
            raise ValueError(f"error share {arg} is outside [0, 1]")
        return Mode("error", f"error:{arg}", share=share)
    if sep and kind == "slow":
        try:
            delay = float(arg)
        except ValueError:
            raise ValueError(f"slow delay {arg!r} is not a number") from None
        if not (math.isfinite(delay) and 0 <= delay <= MAX_SLOW_SECONDS):
            raise ValueError(f"slow delay {arg} is outside [0, {MAX_SLOW_SECONDS:g}] seconds")
        return Mode("slow", f"slow:{arg}", delay=delay)
    raise ValueError("expected ok, error, error:SHARE, slow:SECONDS or refuse")


def share_hits(k: int, share: Fraction) -> bool:
    """Whether request ``k`` (from 1) of an ``error:SHARE`` mode is a 500."""
    return math.ceil(k * share) > math.ceil((k - 1) * share)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` to (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port_text)


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(eq=False)
class _Connection:
    writer: asyncio.StreamWriter
    idle: bool = True


@dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)


class _BadRequestError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Backend:
    """The server: one listening socket (closed while refusing), the connections, the mode."""

    def __init__(self, host: str, port: int, mode_file: Path, name: str, *, idle_timeout: float = 300.0) -> None:
        self.host = host
        self.port = port
        self.mode_file = mode_file
        self.name = name
        self.idle_timeout = idle_timeout
        self.mode = OK
        self._content: str | None = None  # the mode-file text last acted on (applied or rejected)
        self._signature: tuple[int, int, int, int] | None = None
        self._counters = {"data": 0, "health": 0}
        self._server: asyncio.Server | None = None
        self._relisten_failed = False
        self._connections: set[_Connection] = set()
        self._closing = False

    # -- output ---------------------------------------------------------------------------------------------

    def log(self, message: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            print(f"backend {self.name} {message}", flush=True)

    # -- listening -------------------------------------------------------------------------------------------

    async def listen(self) -> None:
        """Bind and accept; ``OSError`` when the address cannot be bound."""
        server = await asyncio.start_server(
            self._handle, self.host, self.port, backlog=BACKLOG, reuse_address=True, limit=MAX_LINE
        )
        if self.port == 0:
            self.port = server.sockets[0].getsockname()[1]
        self._server = server

    def _stop_listening(self) -> int:
        """Close the listening socket and the idle connections; the number of connections closed."""
        if self._server is not None:
            # close() shuts the listening sockets at once; wait_closed() would also wait for the connections.
            self._server.close()
            self._server = None
        idle = [c for c in self._connections if c.idle]
        for conn in idle:
            conn.writer.close()
        return len(idle)

    async def _relisten(self) -> bool:
        try:
            await self.listen()
        except OSError as e:
            if not self._relisten_failed:
                self.log(f"cannot listen again on {format_address(self.host, self.port)}: {e}; retrying")
                self._relisten_failed = True
            return False
        if self._relisten_failed:
            self.log(f"listening again on {format_address(self.host, self.port)}")
        self._relisten_failed = False
        return True

    # -- the mode file ---------------------------------------------------------------------------------------

    async def poll_mode(self) -> None:
        """Re-read the mode file when its stat changed (or was changed within the last second, which a
        same-size rewrite in the same timestamp tick could hide) and act on a new mode."""
        try:
            st = self.mode_file.stat()
        except OSError:
            signature, recent = None, False
        else:
            signature = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
            recent = time.time() - st.st_mtime < 1.0
        if signature != self._signature or recent:
            self._signature = signature
            try:
                content = self.mode_file.read_text(encoding="utf-8", errors="replace") if signature else ""
            except FileNotFoundError:
                content = ""
            except OSError as e:
                content = None
                if self._content != f"\0{e}":
                    self._content = f"\0{e}"
                    self.log(f"cannot read mode file {self.mode_file}: {e}; keeping mode {self.mode.text}")
            if content is not None and content.strip() != self._content:
                self._content = content.strip()
                try:
                    mode = parse_mode(content)
                except ValueError as e:
                    self.log(f"ignores mode file content {content.strip()!r}: {e}; keeping mode {self.mode.text}")
                else:
                    await self._apply(mode)
        if self.mode.kind != "refuse" and self._server is None and not self._closing:
            await self._relisten()

    async def _apply(self, mode: Mode) -> None:
        old, self.mode = self.mode, mode
        if mode == old:
            return
        self._counters = dict.fromkeys(self._counters, 0)
        change = f"mode {mode.text} (was {old.text})"
        if mode.kind == "refuse":
            closed = self._stop_listening()
            self.log(f"{change}: stopped listening, closed {closed} idle connection(s)")
        elif old.kind == "refuse":
            self._relisten_failed = False
            if await self._relisten():
                self.log(f"{change}: listening on {format_address(self.host, self.port)}")
            else:
                self.log(f"{change}: not listening yet")
        else:
            self.log(change)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            await self.poll_mode()

    # -- HTTP ------------------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(writer)
        self._connections.add(conn)
        try:
            while not self._closing:
                conn.idle = True
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        line = await reader.readline()
                        while line in {b"\r\n", b"\n"}:  # stray line ends before a request are allowed
                            line = await reader.readline()
                    if not line:
                        return
                    conn.idle = False
                    async with asyncio.timeout(HEADER_TIMEOUT):
                        request = await self._read_head(line, reader)
                    if not await self._serve(request, reader, writer):
                        return
                except _BadRequestError as e:
                    await self._respond(writer, e.status, {"backend": self.name, "error": str(e)}, keep_alive=False)
                    return
                except (TimeoutError, ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
                    return
        except (ConnectionError, OSError):
            pass
        finally:
            self._connections.discard(conn)
            writer.close()

    async def _read_head(self, line: bytes, reader: asyncio.StreamReader) -> _Request:
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequestError(400, "malformed request line")
        request = _Request(parts[0], parts[1], parts[2])
        for _ in range(MAX_HEADERS + 1):
            raw = await reader.readline()
            if not raw:
                raise asyncio.IncompleteReadError(raw, None)
            if raw in {b"\r\n", b"\n"}:
                return request
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise _BadRequestError(400, "malformed header line")
            key = name.lower()
            value = value.strip()
            if key in request.headers:
                if key == "content-length" and request.headers[key] != value:
                    raise _BadRequestError(400, "conflicting Content-Length")
                value = f"{request.headers[key]}, {value}"
            request.headers[key] = value
        raise _BadRequestError(431, "too many header lines")

    async def _discard_body(self, request: _Request, reader: asyncio.StreamReader) -> None:
        te = request.headers.get("transfer-encoding", "").lower()
        if te:
            if te.rsplit(",", 1)[-1].strip() != "chunked":
                raise _BadRequestError(400, "unsupported Transfer-Encoding")
            while True:
                size_line = (await reader.readline()).split(b";", 1)[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    raise _BadRequestError(400, "malformed chunk size") from None
                if size == 0:
                    while (await reader.readline()) not in {b"\r\n", b"\n", b""}:
                        pass  # trailers
                    return
                await reader.readexactly(size)
                await reader.readline()
        length_text = request.headers.get("content-length", "0").split(",")[0].strip()
        if not length_text.isdigit():
            raise _BadRequestError(400, "malformed Content-Length")
        remaining = int(length_text)
        while remaining:
            chunk = await reader.read(min(remaining, 65536))
            if not chunk:
                raise asyncio.IncompleteReadError(chunk, remaining)
            remaining -= len(chunk)

    def _decide(self, mode: Mode, path: str) -> int:
        if mode.kind != "error":
            return 200
        counter = "health" if path == "/healthz" else "data"
        self._counters[counter] += 1
        return 500 if share_hits(self._counters[counter], mode.share) else 200

    async def _serve(self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; whether the connection stays open for the next."""
        mode = self.mode
        if mode.kind == "refuse":
            return False  # a request that raced the refuse: drop the connection unanswered
        tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
        keep_alive = "keep-alive" in tokens if request.version == "HTTP/1.0" else "close" not in tokens
        if request.headers.get("expect", "").lower() == "100-continue" and request.version != "HTTP/1.0":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await self._discard_body(request, reader)
        path = request.target.split("?", 1)[0]
        status = self._decide(mode, path)
        if mode.kind == "slow" and mode.delay > 0:
            await asyncio.sleep(mode.delay)
        body: dict[str, str] = {"backend": self.name, "path": path}
        if status == 500:
            body["error"] = f"injected by mode {mode.text}"
        keep_alive = keep_alive and not self._closing and self.mode.kind != "refuse"
        await self._respond(writer, status, body, keep_alive=keep_alive, head=request.method == "HEAD")
        return keep_alive

    async def _respond(
        self, writer: asyncio.StreamWriter, status: int, body: dict[str, str], *, keep_alive: bool, head: bool = False
    ) -> None:
        payload = json.dumps(body).encode() + b"\n"
        head_lines = (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n"
            f"X-Backend: {self.name}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        )
        writer.write(head_lines.encode("latin-1") + (b"" if head else payload))
        await writer.drain()

    # -- lifecycle -------------------------------------------------------------------------------------------

    def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self._connections):
            conn.writer.close()


async def serve(host: str, port: int, mode_file: Path, name: str) -> int:
    backend = Backend(host, port, mode_file, name)
    try:
        await backend.listen()
    except OSError as e:
        print(f"backend {name}: cannot listen on {format_address(host, port)}: {e}", file=sys.stderr, flush=True)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[str] = []
    for sig in (signal.SIGTERM, signal.SIGINT):

        def on_signal(sig: signal.Signals = sig) -> None:
            received.append(sig.name)
            stop.set()

        loop.add_signal_handler(sig, on_signal)
    backend.log(f"listening on {format_address(host, backend.port)}")
    await backend.poll_mode()
    watcher = asyncio.create_task(backend.watch())
    await stop.wait()
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    backend.close()
    backend.log(f"stopped ({received[0]})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m zentinel_devcluster.backend",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    parser.add_argument("--listen", required=True, type=parse_listen, metavar="HOST:PORT", help="PORT 0: any free port")
    parser.add_argument(
        "--mode-file", required=True, type=Path, metavar="PATH", help="ok | error | error:SHARE | slow:SECONDS | refuse"
    )
    parser.add_argument("--name", default="backend", help="shown in bodies, X-Backend and the log (default: backend)")
    args = parser.parse_args(argv)
    if not NAME_RE.fullmatch(args.name):
        parser.error(f"--name {args.name!r}: letters, digits and . _ : - only")
    host, port = args.listen
    return asyncio.run(serve(host, port, args.mode_file, args.name))


if __name__ == "__main__":
    sys.exit(main())
