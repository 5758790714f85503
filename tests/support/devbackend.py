"""``zentinel_devcluster.backend`` as a subprocess on 127.0.0.1 (any free port), for the unit tests."""

from __future__ import annotations

import http.client
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

BACKEND = (sys.executable, "-m", "zentinel_devcluster.backend")
LISTENING = re.compile(r"^backend (?P<name>\S+) listening on 127\.0\.0\.1:(?P<port>\d+)$")


class BackendProcess:
    def __init__(self, mode_file: Path, name: str = "b1", listen: str = "127.0.0.1:0") -> None:
        self.mode_file = mode_file
        self.name = name
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [*BACKEND, "--listen", listen, "--mode-file", str(mode_file), "--name", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()
        self.port = 0

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float = 20.0) -> str:
        """The next stdout line containing ``pattern`` (earlier lines are kept in ``log``). A wait, not a
        speed check: a loaded 2-core machine took over 3 s to start the interpreter."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line with {pattern!r} within {timeout} s; got {self.log}") from None
            self.log.append(line)
            if pattern in line:
                return line

    def started(self) -> BackendProcess:
        m = LISTENING.match(self.wait_line(" listening on "))
        assert m, self.log
        self.port = int(m["port"])
        return self

    def set_mode(self, text: str, expect: str | None = None) -> str:
        """Write the mode file and wait for the backend's log line of the change."""
        self.mode_file.write_text(text + "\n")
        return self.wait_line(f" mode {expect or text} (was ")

    def request(self, path: str = "/", conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            c.request("GET", path)
            resp = c.getresponse()
            return resp.status, resp.read()
        finally:
            if conn is None:
                c.close()

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def close(self) -> None:
        self.terminate()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
