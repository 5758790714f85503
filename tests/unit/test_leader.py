"""Leader election on a Lease: who may take it, when, and the guard before actions.

The API is an in-memory stand-in for the Lease endpoints with the API server's optimistic
concurrency (a replace at a stale resourceVersion is a 409); the clock is the test's.
The real control plane is exercised by tests/integration/test_ha.py.
"""

from __future__ import annotations

import copy
import json
import socket
import types
import urllib.request
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from support.operator import free_port
from zentinel_operator import config, leader


class FakeLeases:
    def __init__(self) -> None:
        self.obj: dict[str, Any] | None = None
        self.rv = 0

    def read_namespaced_lease(self, name: str, namespace: str, _preload_content: bool = True) -> Any:
        if self.obj is None:
            raise ApiException(status=404)
        return types.SimpleNamespace(data=json.dumps(self.obj).encode())

    def _store(self, body: dict[str, Any]) -> None:
        self.rv += 1
        self.obj = copy.deepcopy(body)
        self.obj["metadata"]["resourceVersion"] = str(self.rv)

    def create_namespaced_lease(self, namespace: str, body: dict[str, Any], *, field_manager: str) -> None:
        assert field_manager == "zentinel-incident-operator"
        if self.obj is not None:
            raise ApiException(status=409)
        self._store(body)

    def replace_namespaced_lease(self, name: str, namespace: str, body: dict[str, Any], *, field_manager: str) -> None:
        assert field_manager == "zentinel-incident-operator"
        assert self.obj is not None
        if body["metadata"]["resourceVersion"] != self.obj["metadata"]["resourceVersion"]:
            raise ApiException(status=409)
        self._store(body)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def elector(api: FakeLeases, clock: Clock, who: str) -> leader.LeaderElector:
    cfg = leader.LeaseConfig(name="op", namespace="ns", identity=who, lease_duration=15, renew_deadline=10)
    return leader.LeaderElector(cfg, api=api, clock=clock)


def holder(api: FakeLeases) -> str | None:
    assert api.obj is not None
    return api.obj["spec"]["holderIdentity"]  # type: ignore[no-any-return]


def test_the_first_takes_a_missing_lease_and_the_second_waits_while_it_is_renewed() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    assert a.try_acquire_or_renew()
    assert holder(api) == "a" and api.obj is not None and api.obj["spec"]["leaseDurationSeconds"] == 15
    for _ in range(10):  # 50 s: far past one lease duration, but renewed all along
        clock.t += 5
        assert a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew()
    assert holder(api) == "a" and a.holds() and not b.holds()


def test_a_standby_takes_the_lease_only_after_seeing_it_unrenewed_for_a_lease_duration() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # b sees the record now
    clock.t += 14.9
    assert not b.try_acquire_or_renew()
    clock.t += 0.2
    assert b.try_acquire_or_renew()
    assert holder(api) == "b" and api.obj is not None and api.obj["spec"]["leaseTransitions"] == 1
    # The old active, resumed after a pause: it is refused by the guard before it can renew.
    assert not a.holds()
    assert not a.try_acquire_or_renew()  # b's record is fresh to a: it waits its turn


def test_two_standbys_racing_for_an_expired_lease_one_wins() -> None:
    api, clock = FakeLeases(), Clock()
    a = elector(api, clock, "a")
    assert a.try_acquire_or_renew()
    b, c = elector(api, clock, "b"), elector(api, clock, "c")
    b.try_acquire_or_renew()
    c.try_acquire_or_renew()
    clock.t += 16
    lease_now = api.read_namespaced_lease("op", "ns")
    # Both read the same record; the one writing second writes at a stale resourceVersion.
    original = api.read_namespaced_lease
    api.read_namespaced_lease = lambda *a, **k: lease_now  # type: ignore[method-assign]
    results = [b.try_acquire_or_renew(), c.try_acquire_or_renew()]
    api.read_namespaced_lease = original  # type: ignore[method-assign]
    assert results == [True, False]
    assert holder(api) == "b"


def test_release_lets_a_standby_take_over_at_once() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    a.release()
    assert holder(api) is None and not a.holds()
    assert b.try_acquire_or_renew()


def test_the_guard_refuses_actions_once_the_hold_lapses(monkeypatch: pytest.MonkeyPatch) -> None:
    api, clock = FakeLeases(), Clock()
    a = elector(api, clock, "a")
    monkeypatch.setattr(leader, "CURRENT", a)
    with pytest.raises(leader.NotActiveError):
        leader.ensure_active()  # never held
    assert a.try_acquire_or_renew()
    leader.ensure_active()
    clock.t += 10  # the renew deadline passed without a renewal
    with pytest.raises(leader.NotActiveError, match="no longer holds lease ns/op"):
        leader.ensure_active()
    monkeypatch.setattr(leader, "CURRENT", None)
    leader.ensure_active()  # leader election off: nothing to guard


def test_an_unreachable_api_server_is_no_renewal() -> None:
    class Down(FakeLeases):
        def read_namespaced_lease(self, *a: Any, **k: Any) -> Any:
            raise ApiException(status=500, reason="etcd timeout")

    clock = Clock()
    a = elector(Down(), clock, "a")
    assert not a.try_acquire_or_renew() and not a.holds()


def test_lease_timings_must_let_the_active_stop_before_the_lease_expires() -> None:
    with pytest.raises(SystemExit, match="lease_retry_period < lease_renew_deadline < lease_duration"):
        config.load({"ZENTINEL_OPERATOR_LEASE_DURATION": "10", "ZENTINEL_OPERATOR_LEASE_RENEW_DEADLINE": "10"})
    s = config.load({"ZENTINEL_OPERATOR_LEASE_NAMESPACE": "ops"})
    assert s.leader_election and s.lease_home() == "ops"


def test_a_standby_answers_its_liveness_probe_and_frees_the_port() -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}/healthz"
    with leader.standby_probe(endpoint), urllib.request.urlopen(endpoint, timeout=5) as r:
        assert r.status == 200 and json.loads(r.read()) == {"standby": True}
    # kopf binds the same port once this replica is active.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
