"""The process kubelet's HTTP backend as a subprocess on 127.0.0.1: every mode, keep-alive, signals, bind errors."""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import socket
import subprocess
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from support.devbackend import BACKEND, BackendProcess
from zentinel_devcluster.backend import parse_mode, share_hits

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[BackendProcess]:
    proc = BackendProcess(tmp_path / "mode").started()
    yield proc
    proc.close()


def test_ok_by_default_with_keep_alive(backend: BackendProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=5)
    status, body = backend.request("/shop/cart?x=1", conn)
    sock = conn.sock
    assert status == 200
    assert json.loads(body) == {"backend": "b1", "path": "/shop/cart"}
    # HTTP/1.1 keep-alive: the next requests reuse the same socket.
    for path in ("/a", "/healthz"):
        status, body = backend.request(path, conn)
        assert (status, json.loads(body)["path"]) == (200, path)
        assert conn.sock is sock
    conn.request("HEAD", "/h")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("X-Backend") == "b1"
    assert resp.read() == b""
    conn.request("POST", "/p", body=b"x" * 100_000, headers={"Content-Type": "text/plain"})
    assert conn.getresponse().read() and conn.sock is sock
    conn.close()


def test_error_mode_fails_every_request_and_healthz(backend: BackendProcess) -> None:
    assert backend.set_mode("error") == "backend b1 mode error (was ok)"
    assert [backend.request(p)[0] for p in ("/", "/x", "/healthz")] == [500, 500, 500]
    backend.set_mode("ok")
    assert backend.request("/healthz")[0] == 200


def test_error_share_is_an_exact_round_robin(backend: BackendProcess) -> None:
    backend.set_mode("error:0.33")
    conn = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=5)
    statuses = [backend.request("/", conn)[0] for _ in range(9)]
    assert statuses == [500, 200, 200] * 3
    # /healthz counts apart from the data path: its first probe is the first of its own round.
    assert backend.request("/healthz", conn)[0] == 500
    assert backend.request("/", conn)[0] == 500  # data request 10
    # A new mode restarts the count.
    backend.set_mode("error:1/2")
    assert [backend.request("/", conn)[0] for _ in range(6)] == [500, 200] * 3
    conn.close()


def test_slow_mode_delays_without_blocking_others(backend: BackendProcess) -> None:
    backend.set_mode("slow:0.4")
    start = time.monotonic()
    assert backend.request("/")[0] == 200
    assert time.monotonic() - start >= 0.4 - 0.02

    async def many(n: int) -> list[int]:
        async def one() -> int:
            reader, writer = await asyncio.open_connection("127.0.0.1", backend.port)
            writer.write(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n")
            status = int((await reader.readline()).split()[1])
            writer.close()
            return status

        return await asyncio.gather(*(one() for _ in range(n)))

    start = time.monotonic()
    assert asyncio.run(many(40)) == [200] * 40
    elapsed = time.monotonic() - start
    assert elapsed >= 0.4 - 0.02
    assert elapsed < 4.0  # concurrent: one after another would take 40 x 0.4 = 16 s


def test_refuse_closes_listener_and_idle_connections_then_listens_again(backend: BackendProcess) -> None:
    idle = socket.create_connection(("127.0.0.1", backend.port), timeout=5)
    idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200 ")
    line = backend.set_mode("refuse")
    assert "stopped listening, closed 1 idle connection(s)" in line
    assert idle.recv(4096) == b""  # closed by the backend
    idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", backend.port), timeout=2).close()
    line = backend.set_mode("ok")
    assert line == f"backend b1 mode ok (was refuse): listening on 127.0.0.1:{backend.port}"
    assert backend.request("/healthz")[0] == 200


def test_invalid_content_is_logged_and_ignored(backend: BackendProcess) -> None:
    backend.set_mode("error")
    backend.mode_file.write_text("sideways\n")
    assert "ignores mode file content 'sideways'" in backend.wait_line("ignores mode file")
    assert backend.request("/")[0] == 500
    backend.mode_file.unlink()  # missing file: ok
    backend.wait_line(" mode ok (was error)")
    assert backend.request("/")[0] == 200


def test_many_concurrent_keep_alive_connections(backend: BackendProcess) -> None:
    async def main() -> list[int]:
        conns = [await asyncio.open_connection("127.0.0.1", backend.port) for _ in range(200)]
        statuses = []
        for _ in range(2):  # two requests on each of 200 open connections
            for _, writer in conns:
                writer.write(b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n")
            for reader, _ in conns:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                statuses.append(int(head.split()[1]))
        for _, writer in conns:
            writer.close()
        return statuses

    assert asyncio.run(main()) == [200] * 400


def test_initial_mode_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "mode").write_text("refuse")
    proc = BackendProcess(tmp_path / "mode", name="b2").started()
    try:
        assert "mode refuse (was ok): stopped listening" in proc.wait_line(" mode refuse")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proc.port), timeout=2).close()
    finally:
        proc.close()


def test_sigterm_exits_zero(backend: BackendProcess) -> None:
    assert backend.request("/")[0] == 200
    assert backend.terminate() == 0
    assert backend.wait_line("stopped") == "backend b1 stopped (SIGTERM)"


def test_bind_failure_exits_nonzero_with_a_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*BACKEND, "--listen", f"127.0.0.1:{port}", "--mode-file", str(tmp_path / "mode"), "--name", "b3"],
            check=False,
            capture_output=True,
            text=True,
            timeout=5,
        )
    assert result.returncode == 1
    assert f"backend b3: cannot listen on 127.0.0.1:{port}:" in result.stderr
    assert "in use" in result.stderr
    assert "listening" not in result.stdout


def test_bad_listen_argument_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [*BACKEND, "--listen", "nope", "--mode-file", str(tmp_path / "m")],
        check=False,
        capture_output=True,
        text=True,
        timeout=5,
    )
    assert result.returncode == 2
    assert "expected HOST:PORT" in result.stderr


def test_parse_mode() -> None:
    assert parse_mode("").kind == parse_mode(" OK \n").kind == "ok"
    assert parse_mode("error").share == 1
    assert parse_mode("error:0.33").share == Fraction(33, 100)
    assert parse_mode("error:1/3").share == Fraction(1, 3)
    assert parse_mode("slow:1.5").delay == 1.5
    assert parse_mode("refuse").kind == "refuse"
    for bad in ("error:2", "error:-0.1", "error:x", "slow:-1", "slow:inf", "slow:nan", "slow", "teapot"):
        with pytest.raises(ValueError):
            parse_mode(bad)


def test_share_hits_counts_are_exact() -> None:
    for share in (Fraction(33, 100), Fraction(1, 3), Fraction(1, 2), Fraction(0), Fraction(1), Fraction(7, 10)):
        for n in (1, 9, 100, 1000):
            assert sum(share_hits(k, share) for k in range(1, n + 1)) == math.ceil(n * share)
