"""Fixtures for tests against a real control plane on loopback.

The session starts its own cluster (etcd, kube-apiserver, controller-manager, scheduler, kwok),
built once from Go modules and cached under ~/.cache/zentinel-operator/tools. Nothing here skips
for lack of a cluster: when it cannot start, the tests error with the reason.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from support.faultproxy import FaultProxy
from support.kube import Kube, wait_for
from support.operator import OperatorProcess, running
from support.receivers import Receivers
from zentinel_devcluster import tools
from zentinel_devcluster.cluster import Cluster
from zentinel_operator import k8s

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tools.ensure(["k8s", "etcd", "kwok"])
    # The process kubelet, kubelet-like but quicker: volumes refreshed every second (kubelet: about a
    # minute), CrashLoopBackOff from 1 s doubling to 8 s (kubelet: 10 s to 5 min).
    os.environ.setdefault("ZENTINEL_KUBELET_SYNC_SECONDS", "1")
    os.environ.setdefault("ZENTINEL_KUBELET_BACKOFF", "1,8")
    os.environ.setdefault("ZENTINEL_KUBELET_MAX_GRACE", "3")
    state = tmp_path_factory.mktemp("cluster")
    c = Cluster(state)
    c.up(log=True)
    version = c.status().get("serverVersion")
    print(f"\n[integration] kube-apiserver {version} at {c.server} (built from k8s.io/kubernetes)")
    try:
        yield c
    finally:
        c.down(log=True)


@pytest.fixture(scope="session")
def kube(cluster: Cluster) -> Kube:
    k = Kube(tools.binary("kubectl"), cluster.kubeconfig)
    k.run("apply", "--server-side", "-f", str(REPO / "crds"))

    def established(crd: str) -> bool:
        obj = k.get("crd", f"{crd}.zentinel.io") or {}
        conds = (obj.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

    for crd in (
        "zentinels",
        "zentinelincidents",
        "zentinelincidentpolicies",
        "zentinelclusterincidentpolicies",
        "zentinelsilences",
    ):
        wait_for(lambda crd=crd: established(crd), timeout=60, what=f"CRD {crd} Established")
    return k


@pytest.fixture
def namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    base = "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:40].strip("-")
    name = f"{base}-{secrets.token_hex(3)}"
    kube.run("create", "namespace", name)
    wait_for(lambda: kube.get("serviceaccount", "default", name), timeout=30, what="default ServiceAccount")
    yield name
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print_incidents(kube, name)
    kube.run("delete", "namespace", name, "--wait=false", check=False)


def print_incidents(kube: Kube, namespace: str) -> None:
    """After a failed test: what each incident of its namespace records (timeline, remediations, deliveries)."""
    try:
        incidents = kube.list("zentinelincidents", namespace)
    except Exception as e:  # the cluster may be what failed
        print(f"\n--- incidents of {namespace}: could not list them ({e}) ---")
        return
    for inc in incidents:
        st = inc.get("status") or {}
        print(f"\n--- incident {inc['metadata']['name']} ({inc['spec'].get('category')}, {st.get('state')}) ---")
        for t in st.get("timeline") or []:
            print(f"  {t.get('time')} {t.get('type')}: {t.get('message')}")
        for r in st.get("remediations") or []:
            print(f"  remediation {r.get('action')} {r.get('state')}: {r.get('reason')}")
        for d in st.get("deliveries") or []:
            print(f"  delivery {d.get('event')} -> {d.get('receiver')} {d.get('state')} ({d.get('key')})")


@pytest.fixture
def in_process_api(kube: Kube, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the operator's own API client, in this process, at the test cluster (for driving one function)."""
    kubernetes.config.load_kube_config(config_file=str(kube.kubeconfig))
    monkeypatch.setattr(k8s, "_configured", True)
    for client in (k8s.core, k8s.apps, k8s.custom, k8s.policy_api):
        client.cache_clear()


@pytest.fixture
def operator_env() -> dict[str, str]:
    """Override in a test module to pass extra ZENTINEL_OPERATOR_* settings."""
    return {}


@pytest.fixture
def operator(
    cluster: Cluster,
    kube: Kube,
    namespace: str,
    tmp_path: Path,
    operator_env: dict[str, str],
    request: pytest.FixtureRequest,
) -> Iterator[OperatorProcess]:
    with running(OperatorProcess(cluster.kubeconfig, namespace, tmp_path, operator_env), request) as op:
        yield op


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{rep.when}", rep)


def wait_seconds(seconds: float) -> None:
    time.sleep(seconds)


@pytest.fixture
def dataplanes(kube: Kube) -> Iterator[list[Any]]:
    """Collects Dataplane objects a test starts, and stops them at teardown."""
    started: list[Any] = []
    yield started
    for dp in started:
        dp.stop()


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    """Local notification receivers, stopped after the test."""
    r = Receivers().start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def proxy(cluster: Cluster) -> Iterator[FaultProxy]:
    """A fault proxy in front of the session's API server (``support.faultproxy``), stopped after the test."""
    p = FaultProxy(cluster.kubeconfig).start()
    try:
        yield p
    finally:
        p.stop()
