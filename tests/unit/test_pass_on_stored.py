"""Which copy of the Zentinel a pass decides from: the watched one only when it is the version the last pass left.

A watch can deliver a copy older than the status the previous pass wrote (its config history, its remediation
ledger). A pass on such a copy decides from a past that is no longer true, so it reads the Zentinel again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from zentinel_operator import k8s
from zentinel_operator.handlers import zentinel as handler
from zentinel_operator.signals.gather import GatherSettings


def body(version: str, marker: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "edge", "resourceVersion": version}, "status": {"m": marker}}


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    got: dict[str, list[Any]] = {"reads": [], "passes": []}

    def get_custom(plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        got["reads"].append((plural, namespace, name))
        return body("7", "stored")

    async def reconcile(b: Any, *, ctx: handler.PassContext, **kwargs: Any) -> handler.PassResult:
        got["passes"].append(b["status"]["m"])
        ctx.versions[("ns", "edge")] = b["metadata"]["resourceVersion"]  # as the real pass does after its write
        return handler.PassResult([])

    monkeypatch.setattr(k8s, "get_custom", get_custom)
    monkeypatch.setattr(handler, "reconcile", reconcile)
    return got


def run(ctx: handler.PassContext, watched: dict[str, Any] | None) -> Any:
    return asyncio.run(handler.pass_on_stored("ns", "edge", ctx=ctx, policies=[], full=True, watched=watched))


def test_a_watched_copy_of_the_version_the_last_pass_left_is_used_without_a_read(seen: dict[str, list[Any]]) -> None:
    ctx = handler.PassContext(GatherSettings())
    ctx.versions[("ns", "edge")] = "7"
    run(ctx, body("7", "watched"))
    assert seen["reads"] == [] and seen["passes"] == ["watched"]


def test_a_watched_copy_of_another_version_is_read_again(seen: dict[str, list[Any]]) -> None:
    ctx = handler.PassContext(GatherSettings())
    ctx.versions[("ns", "edge")] = "9"  # the last pass wrote version 9; the watch still shows 7
    run(ctx, body("7", "watched"))
    assert seen["reads"] == [("zentinels", "ns", "edge")] and seen["passes"] == ["stored"]


def test_without_a_version_left_the_first_pass_reads(seen: dict[str, list[Any]]) -> None:
    run(handler.PassContext(GatherSettings()), body("7", "watched"))
    assert len(seen["reads"]) == 1 and seen["passes"] == ["stored"]


def test_a_failed_read_falls_back_to_the_watched_copy(monkeypatch: pytest.MonkeyPatch, seen: dict[str, Any]) -> None:
    def fails(*_: Any) -> None:
        raise k8s.ApiException(status=500, reason="Internal Server Error")

    monkeypatch.setattr(k8s, "get_custom", fails)
    ctx = handler.PassContext(GatherSettings())
    run(ctx, body("7", "watched"))
    assert seen["passes"] == ["watched"]
    assert ("ns", "edge") not in ctx.versions  # a copy of unknown age is never taken as current next time


def test_a_gone_zentinel_is_forgotten(monkeypatch: pytest.MonkeyPatch, seen: dict[str, Any]) -> None:
    monkeypatch.setattr(k8s, "get_custom", lambda *_: None)
    ctx = handler.PassContext(GatherSettings())
    ctx.versions[("ns", "edge")] = "9"
    ctx.memory("ns", "edge")
    assert run(ctx, body("7", "watched")) is None
    assert ("ns", "edge") not in ctx.versions and ("ns", "edge") not in ctx.memories
