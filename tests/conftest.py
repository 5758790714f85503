"""Shared pytest configuration. Tiers: tests/unit (no cluster), tests/integration (the local
control plane built from Go modules), tests/e2e (kind, where a container engine answers)."""

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many inputs each fuzz target tried (tests/unit/test_fuzz.py), for RELIABILITY.md."""
    from support import fuzzing

    for line in fuzzing.report():
        terminalreporter.write_line(line)
