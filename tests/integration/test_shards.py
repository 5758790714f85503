"""Shards: two operators, shard 0 and shard 1 of 2, each pass over the Zentinels of their own shard only.

Shard 1 runs alone first: its Zentinels are passed over again and again while shard 0's get no status at
all, and the policy (shard 0 reconciles policies) gets none either. Then shard 0 starts and takes its own
Zentinels and the policy. Each shard elects its active on its own Lease.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from integration.test_ha import (
    Replicas,
    replicas,  # noqa: F401 - the fixture
)
from integration.test_triage import policy
from support import configs
from support.kube import Kube, condition, wait_for
from support.operator import OperatorProcess
from zentinel_operator.core.shards import shard_of

pytestmark = pytest.mark.integration

LEASE = "zentinel-incident-operator"


def zentinel(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "Zentinel",
        "metadata": {"name": name, "labels": {"tier": "edge"}},
        "spec": {"workload": {"name": name}, "config": {"configMapName": "edge-config"}},
    }


def shard_env(index: int) -> dict[str, str]:
    return {"ZENTINEL_OPERATOR_SHARD_COUNT": "2", "ZENTINEL_OPERATOR_SHARD_INDEX": str(index)}


def timer_passes(op: OperatorProcess) -> int:
    found = re.search(r'^zentinel_operator_passes_total\{trigger="timer"\} (\S+)$', op.metrics(), re.M)
    return int(float(found.group(1))) if found else 0


def passed_over(kube: Kube, namespace: str, name: str) -> bool:
    return condition(kube.get("zen", name, namespace) or {}, "Ready") is not None


def holder(kube: Kube, namespace: str, lease: str) -> str | None:
    return ((kube.get("lease", lease, namespace) or {}).get("spec") or {}).get("holderIdentity")


def test_each_zentinel_is_passed_over_by_the_operator_of_its_shard_only(
    kube: Kube,
    namespace: str,
    replicas: Replicas,  # noqa: F811
) -> None:
    names = [f"edge-{i}" for i in range(8)]
    by_shard = {s: [n for n in names if shard_of(namespace, n, 2) == s] for s in (0, 1)}
    assert by_shard[0] and by_shard[1], by_shard  # 8 names over 2 shards: both have some (else pick others)
    kube.apply(policy(), namespace)
    kube.apply(configs.configmap("edge-config"), namespace)
    for name in names:
        kube.apply(zentinel(name), namespace)

    one = replicas.start(shard_env(1))
    for name in by_shard[1]:
        wait_for(lambda n=name: passed_over(kube, namespace, n), timeout=60, what=f"shard 1's pass over {name}")
    # Several scans (1 s) of each of its own Zentinels later, the other shard's still have no status.
    wait_for(lambda: timer_passes(one) >= 4 * len(by_shard[1]), timeout=60, what="shard 1's further passes")
    assert not [n for n in by_shard[0] if passed_over(kube, namespace, n)]
    assert not (kube.get("zentinelincidentpolicy", "edge", namespace) or {}).get("status")  # shard 0's job
    assert holder(kube, namespace, f"{LEASE}-shard-1") is not None
    assert kube.get("lease", f"{LEASE}-shard-0", namespace) is None
    assert kube.get("lease", LEASE, namespace) is None  # sharded: no replica elects on the unsharded Lease

    replicas.start(shard_env(0))
    for name in by_shard[0]:
        wait_for(lambda n=name: passed_over(kube, namespace, n), timeout=60, what=f"shard 0's pass over {name}")
    wait_for(
        lambda: (kube.get("zentinelincidentpolicy", "edge", namespace) or {}).get("status"),
        timeout=60,
        what="shard 0 reconciles the policy",
    )
    assert holder(kube, namespace, f"{LEASE}-shard-0") not in (None, holder(kube, namespace, f"{LEASE}-shard-1"))

    # Each shard keeps kopf's finalizer of its own on its own Zentinels (shard 0 the plain name, shard i
    # "<prefix>/finalizer-shard-<i>"). With one name for all, the shard that does not own a Zentinel took the
    # finalizer off (kopf removes it where none of its handlers match) and the owner put it back: thousands
    # of PATCHes a minute. Sampled over two seconds, each Zentinel holds its owner's finalizer every time.
    want = {n: FINALIZER if s == 0 else f"{FINALIZER}-shard-{s}" for s in (0, 1) for n in by_shard[s]}
    wait_for(
        lambda: all(finalizers(kube, namespace, n) == [f] for n, f in want.items()),
        timeout=30,
        what="each Zentinel's finalizer is its shard's",
    )
    for _ in range(10):
        held = {n: finalizers(kube, namespace, n) for n in names}
        assert held == {n: [f] for n, f in want.items()}
        time.sleep(0.2)


FINALIZER = "operator.zentinel.io/finalizer"


def finalizers(kube: Kube, namespace: str, name: str) -> list[str]:
    return list(((kube.get("zen", name, namespace) or {}).get("metadata") or {}).get("finalizers") or [])
