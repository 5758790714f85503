"""kind tests: run only where a container engine answers (pytest-kind starts a kind cluster)."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def _docker_answers() -> tuple[bool, str]:
    if shutil.which("docker") is None:
        return False, "no docker client on PATH"
    try:
        proc = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"docker info failed: {e}"
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no output"])[0]
        return False, f"no container engine answers (docker info: {first})"
    return True, ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    e2e = [i for i in items if "tests/e2e/" in str(i.fspath)]
    if not e2e:
        return
    ok, reason = _docker_answers()
    if ok:
        return
    for item in e2e:
        item.add_marker(pytest.mark.skip(reason=f"kind needs a container engine: {reason}"))
