"""Shards: each Zentinel belongs to exactly one, the same in every process; settings and the intake follow."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from zentinel_operator import config
from zentinel_operator.core.shards import Shard, is_finalizer_of_a_shard, shard_of
from zentinel_operator.models.common import Category
from zentinel_operator.notify import intake

NAMES = [(f"team-{i % 17}", f"edge-{i}") for i in range(1000)]


def test_each_zentinel_belongs_to_exactly_one_shard_and_the_shards_are_balanced() -> None:
    shards = [Shard(i, 3) for i in range(3)]
    owners = collections.Counter()
    for ns, name in NAMES:
        mine = [s.index for s in shards if s.owns(ns, name)]
        assert len(mine) == 1, (ns, name, mine)
        assert mine[0] == shard_of(ns, name, 3)
        owners[mine[0]] += 1
    assert set(owners) == {0, 1, 2}
    assert all(250 <= n <= 420 for n in owners.values()), owners  # a third each, give or take


def test_the_shard_of_a_zentinel_is_the_same_in_another_process() -> None:
    # hash() is salted per process; the shard must not be, or two replicas would disagree.
    code = "from zentinel_operator.core.shards import shard_of; print(shard_of('team-1', 'edge-1', 7))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert int(out) == shard_of("team-1", "edge-1", 7)


def test_one_shard_owns_everything_and_coordinates() -> None:
    single = Shard()
    assert not single.sharded and single.coordinator
    assert all(single.owns(ns, name) for ns, name in NAMES[:50])
    assert Shard(0, 2).coordinator and not Shard(1, 2).coordinator


@pytest.mark.parametrize(("index", "count"), [(2, 2), (-1, 3), (0, 0)])
def test_a_shard_out_of_range_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="shard index"):
        Shard(index, count)


def test_settings_name_the_shard_variables_and_give_each_shard_its_own_lease() -> None:
    with pytest.raises(SystemExit) as e:
        config.load({"ZENTINEL_OPERATOR_SHARD_COUNT": "2", "ZENTINEL_OPERATOR_SHARD_INDEX": "2"})
    assert "ZENTINEL_OPERATOR_SHARD_INDEX < ZENTINEL_OPERATOR_SHARD_COUNT" in str(e.value)
    s = config.load({"ZENTINEL_OPERATOR_SHARD_COUNT": "3", "ZENTINEL_OPERATOR_SHARD_INDEX": "1"})
    assert s.shard() == Shard(1, 3)
    assert s.lease() == "zentinel-incident-operator-shard-1"
    assert config.load({}).lease() == "zentinel-incident-operator"  # unsharded: the Lease it always had


async def test_the_intake_records_alerts_for_its_own_shard_only() -> None:
    """An alert about another shard's Zentinel is that shard's intake's (Alertmanager posts to each): no pass runs
    here for it, and it sets no signal."""
    state = intake.AlertState()
    runs: list[tuple[str, str]] = []

    async def run_pass(namespace: str, zentinel: str, update: Callable[[], None]) -> intake.Passed:
        runs.append((namespace, zentinel))
        update()
        return intake.Passed(carriers={Category.PROCESS_CRASH: "inc-1"}, created=frozenset({"inc-1"}))

    shard = Shard(1, 2)
    mine = next((ns, n) for ns, n in NAMES if shard.owns(ns, n))
    other = next((ns, n) for ns, n in NAMES if not shard.owns(ns, n))
    app = intake.build_app(token="t", state=state, run_pass=run_pass, owns=shard.owns)

    def alert(ns: str, name: str) -> dict[str, Any]:
        labels = {"alertname": "A", "namespace": ns, "zentinel": name, "zentinel_category": "ProcessCrash"}
        return {"status": "firing", "labels": labels, "startsAt": "2026-12-03T00:00:00Z", "fingerprint": name}

    body = {"version": "4", "groupKey": "g", "alerts": [alert(*mine), alert(*other)]}
    async with TestClient(TestServer(app)) as c:
        resp = await c.post(intake.PATH, json=body, headers={"Authorization": "Bearer t"})
        answer = await resp.json()
    assert resp.status == 200 and answer["processed"] == 1
    assert answer["incidents"] == [{"name": "inc-1", "created": True}]
    assert [i["reason"] for i in answer["ignored"]] == [
        f"Zentinel {other[0]}/{other[1]} is not of this operator's shard"
    ]
    assert runs == [mine]
    assert state.active(*mine, Category.PROCESS_CRASH) is not None
    assert not state.known(*other, Category.PROCESS_CRASH)


def test_each_shard_has_a_finalizer_of_its_own_and_shard_0_keeps_the_unsharded_one() -> None:
    base = "operator.zentinel.io/finalizer"
    assert Shard().finalizer(base) == base
    assert Shard(0, 3).finalizer(base) == base
    names = {Shard(i, 3).finalizer(base) for i in range(3)}
    assert names == {base, f"{base}-shard-1", f"{base}-shard-2"}
    assert all(is_finalizer_of_a_shard(n, base) for n in names)
    for other in ("operator.zentinel.io/other", f"{base}-shard-", f"{base}-shard-x", f"{base}x", "kubernetes"):
        assert not is_finalizer_of_a_shard(other, base), other
