"""Which copy of the Zentinel a pass decides from: the watched one only when it is the version the last pass left.

A watch can deliver a copy older than the status the previous pass wrote (its config history, its remediation
ledger). A pass on such a copy decides from a past that is no longer true, so it reads the Zentinel again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from support.fake_api import FakeApi
from zentinel_operator.handlers import zentinel as handler
from zentinel_operator.signals.gather import GatherSettings


def body(version: str, marker: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "edge", "resourceVersion": version}, "status": {"m": marker}}


@pytest.fixture
def api() -> FakeApi:
    """The API the pass is given, holding the stored copy of the Zentinel."""
    fake = FakeApi()
    fake.put("zentinel", body("7", "stored"))
    return fake


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The copy each pass decided from (the pass itself is stubbed: this is about which copy it gets)."""
    got: list[Any] = []

    async def reconcile(b: Any, *, ctx: handler.PassContext, **kwargs: Any) -> handler.PassResult:
        got.append(b["status"]["m"])
        ctx.versions[("ns", "edge")] = b["metadata"]["resourceVersion"]  # as the real pass does after its write
        return handler.PassResult([])

    monkeypatch.setattr(handler, "reconcile", reconcile)
    return got


def run(ctx: handler.PassContext, watched: dict[str, Any] | None) -> Any:
    return asyncio.run(handler.pass_on_stored("ns", "edge", ctx=ctx, policies=[], full=True, watched=watched))


def test_a_watched_copy_of_the_version_the_last_pass_left_is_used_without_a_read(
    api: FakeApi, passes: list[Any]
) -> None:
    ctx = handler.PassContext(GatherSettings(), api=api)
    ctx.versions[("ns", "edge")] = "7"
    run(ctx, body("7", "watched"))
    assert api.called("get_zentinel") == [] and passes == ["watched"]


def test_a_watched_copy_of_another_version_is_read_again(api: FakeApi, passes: list[Any]) -> None:
    ctx = handler.PassContext(GatherSettings(), api=api)
    ctx.versions[("ns", "edge")] = "9"  # the last pass wrote version 9; the watch still shows 7
    run(ctx, body("7", "watched"))
    assert api.called("get_zentinel") == ["edge"] and passes == ["stored"]


def test_without_a_version_left_the_first_pass_reads(api: FakeApi, passes: list[Any]) -> None:
    run(handler.PassContext(GatherSettings(), api=api), body("7", "watched"))
    assert len(api.called("get_zentinel")) == 1 and passes == ["stored"]


def test_a_failed_read_falls_back_to_the_watched_copy(api: FakeApi, passes: list[Any]) -> None:
    api.fail("get_zentinel", ApiException(status=500, reason="Internal Server Error"))
    ctx = handler.PassContext(GatherSettings(), api=api)
    run(ctx, body("7", "watched"))
    assert passes == ["watched"]
    assert ("ns", "edge") not in ctx.versions  # a copy of unknown age is never taken as current next time


def test_a_gone_zentinel_is_forgotten(passes: list[Any]) -> None:
    ctx = handler.PassContext(GatherSettings(), api=FakeApi())  # nothing stored: the Zentinel was deleted
    ctx.versions[("ns", "edge")] = "9"
    ctx.memory("ns", "edge")
    assert run(ctx, body("7", "watched")) is None
    assert ("ns", "edge") not in ctx.versions and ("ns", "edge") not in ctx.memories
    assert passes == []
