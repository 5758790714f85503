"""The same CRDs on a kind cluster (machines with Docker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def test_crds_install_and_list_on_kind(kind_cluster: Any) -> None:
    kind_cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    kind_cluster.kubectl("wait", "--for=condition=Established", "crd/zentinelincidents.zentinel.io", "--timeout=60s")
    out = kind_cluster.kubectl("get", "zentinelincidents", "-A")
    assert "No resources found" in out or "NAME" in out
