"""The bounded load generator: exact counts against the backend subprocess, and refusals before any traffic."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.devbackend import BackendProcess
from zentinel_devcluster import loadgen
from zentinel_devcluster.loadgen import LoadgenError

LOADGEN = (sys.executable, "-m", "zentinel_devcluster.loadgen")

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[BackendProcess]:
    proc = BackendProcess(tmp_path / "mode").started()
    yield proc
    proc.close()


class AcceptCounter:
    """A loopback listener that counts the connections it is offered (it never answers)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def counter() -> Iterator[AcceptCounter]:
    c = AcceptCounter()
    yield c
    c.close()


def test_bounded_run_counts_every_request(backend: BackendProcess) -> None:
    backend.set_mode("error:0.33")
    summary = loadgen.run([f"http://127.0.0.1:{backend.port}"], rate=100, duration=0.5, concurrency=8, path="/x")
    d = summary.to_dict()
    assert (d["planned"], d["sent"]) == (50, 50)
    assert d["counts"] == {"connect-error": 0, "200": 33, "500": 17}  # ceil(50 * 0.33) = 17
    assert d["backends"] == {"b1": 50}
    assert d["latency_ms"]["p50"] is not None and d["latency_ms"]["p50"] <= d["latency_ms"]["p99"]
    assert 0.45 <= d["elapsed_s"] < 3


def test_round_robin_over_urls_and_connect_errors(backend: BackendProcess) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    summary = loadgen.run(
        [f"http://localhost:{backend.port}/a", f"http://127.0.0.1:{dead_port}/b"], rate=80, duration=0.25
    )
    assert summary.sent == 20
    assert (summary.count(200), summary.count("connect-error")) == (10, 10)
    assert "  connect-error: 10" in summary.format()


def test_slow_backend_latency(backend: BackendProcess) -> None:
    backend.set_mode("slow:0.2")
    summary = loadgen.run([f"http://127.0.0.1:{backend.port}"], rate=20, duration=0.5, concurrency=16)
    assert (summary.sent, summary.count(200)) == (10, 10)
    p50 = summary.latency_ms(50)
    assert p50 is not None and p50 >= 200 - 20


def test_cli_json(backend: BackendProcess) -> None:
    result = subprocess.run(
        [*LOADGEN, "--url", f"http://127.0.0.1:{backend.port}/", "--rate", "50", "--duration", "0.2", "--json"],
        check=False,
        capture_output=True,
        text=True,
        timeout=8,
    )
    assert result.returncode == 0, result.stderr
    d = json.loads(result.stdout)
    assert (d["sent"], d["counts"]) == (10, {"connect-error": 0, "200": 10})


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3:8080/",
        "http://192.168.0.1/",
        "http://0.0.0.0:80/",
        "http://[::ffff:10.0.0.1]:80/",
        "http://[2001:db8::1]:80/",
        "http://example.com/",
        "http://localhost.example.com/",
        "http://127.0.0.1.nip.io/",
        "ftp://127.0.0.1/",
        "127.0.0.1:8080",
    ],
)
def test_non_loopback_urls_are_refused_before_any_traffic(counter: AcceptCounter, url: str) -> None:
    good = f"http://127.0.0.1:{counter.port}/"
    with pytest.raises(LoadgenError):
        loadgen.run([good, url], rate=100, duration=0.2)
    assert counter.accepted == 0


def test_loopback_hosts_are_accepted() -> None:
    for url in (
        "http://127.0.0.1:1/",
        "http://127.9.8.7/",
        "http://[::1]:8080/x",
        "http://LOCALHOST:80",
        "https://localhost/",
    ):
        assert loadgen.check_url(url).startswith(("http://", "https://"))
    assert loadgen.check_url("http://127.0.0.1:8080/a?b", "/z?q=1") == "http://127.0.0.1:8080/z?q=1"


@pytest.mark.parametrize(
    ("rate", "duration", "concurrency"),
    [(2001, 1, 1), (100_000, 0.1, 1), (0, 1, 1), (10, 601, 1), (10, 0, 1), (10, 1, 65), (10, 1, 0)],
)
def test_excessive_bounds_are_refused_before_any_traffic(
    counter: AcceptCounter, rate: float, duration: float, concurrency: int
) -> None:
    with pytest.raises(LoadgenError):
        loadgen.run([f"http://127.0.0.1:{counter.port}/"], rate=rate, duration=duration, concurrency=concurrency)
    assert counter.accepted == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "http://10.0.0.1/", "--rate", "1", "--duration", "1"], "is not a loopback address"),
        (["--rate", "5000", "--duration", "1"], "rate 5000 is outside"),
        (["--rate", "1", "--duration", "601"], "duration 601 is outside"),
        (["--rate", "1", "--duration", "1", "--concurrency", "65"], "concurrency 65 is outside"),
    ],
)
def test_cli_refusals_exit_2(counter: AcceptCounter, args: list[str], message: str) -> None:
    base = ["--url", f"http://127.0.0.1:{counter.port}/"]
    result = subprocess.run([*LOADGEN, *base, *args], check=False, capture_output=True, text=True, timeout=8)
    assert result.returncode == 2
    assert result.stderr.startswith("loadgen: error: ")
    assert message in result.stderr
    assert result.stdout == ""
    assert counter.accepted == 0
