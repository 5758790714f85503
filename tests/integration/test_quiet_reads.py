"""Issue 13: over a quiet minute, a pass reads nothing from the API server and writes nothing.

The operator runs as the dev cluster's audited user (``zentinel_devcluster.audit``): the API server writes
each of that user's requests to its audit log, by verb and resource. The Zentinel is real (three ``zentinel``
processes behind a Deployment, with a TLS Secret and a CA Secret; no traffic, so its metrics stand still), the
scan interval is 1 s, so the minute holds some sixty full passes, each scraping the pods and handshaking with
them. (Traffic moves the status's p99 and error rate, which the status then follows: that write is the one a
serving Zentinel makes, see README, "Operator settings".) Every request of the minute must be
a watch, or the renewal of the operator's own Lease (leader election is on, as in the chart). Then a change
to the ConfigMap is read at once: the passes read again when a watch says something changed.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import certs, configs, realpods
from support.kube import Kube, condition, wait_for
from support.operator import OperatorProcess, running
from zentinel_devcluster import audit, tools
from zentinel_devcluster.cluster import Cluster
from zentinel_devcluster.pki import CA
from zentinel_operator.core.zconfig import config_revision

pytestmark = pytest.mark.integration

SAN = "edge.example.com"
LEASE = "zentinel-incident-operator"  # the operator's Lease (config.Settings.lease_name), in the test's namespace
QUIET_MINUTE = 60.0


@pytest.fixture
def operator(
    cluster: Cluster, kube: Kube, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[OperatorProcess]:
    if not tools.zentinel_binary().exists():
        pytest.fail("the real zentinel is not built: scripts/setup builds it (`scripts/cluster build-zentinel`)")
    if not cluster.audited_kubeconfig.exists():
        pytest.fail(f"{cluster.audited_kubeconfig} is missing: a cluster made before the audited user; restart it")
    env = {"ZENTINEL_OPERATOR_SCAN_INTERVAL": "1"}
    with running(OperatorProcess(cluster.audited_kubeconfig, namespace, tmp_path, env), request) as op:
        yield op


def passes(operator: OperatorProcess, trigger: str) -> int:
    found = re.search(rf'^zentinel_operator_passes_total\{{trigger="{trigger}"\}} (\S+)$', operator.metrics(), re.M)
    return int(float(found.group(1))) if found else 0


def beyond_watches(events: list[dict[str, Any]]) -> list[str]:
    """The requests that are neither a watch nor a renewal of the operator's Lease, as ``verb resource name``."""
    out = []
    for ev in events:
        ref = ev.get("objectRef") or {}
        if ev.get("verb") == "watch":
            continue
        if ref.get("resource") == "leases" and ref.get("name") == LEASE and ev.get("verb") in ("get", "update"):
            continue
        out.append(f"{ev.get('verb')} {audit.resource_of(ev)} {ref.get('name', '')}".strip())
    return out


def test_a_quiet_minute_reads_nothing_beyond_the_watches(
    cluster: Cluster, kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    log = cluster.audit_log
    set_up_from = log.stat().st_size
    ca = CA.create("quiet reads CA")
    ca_pem, ca_key = ca.pem()
    kube.apply(certs.tls_secret("edge-ca", ca_pem, ca_key), namespace)
    cert, key = certs.leaf(ca, [SAN], days=60)  # well outside the expiry threshold
    kube.apply(certs.tls_secret("edge-tls", cert, key), namespace)
    kube.apply(
        realpods.paging_policy(
            "http://127.0.0.1:9/oncall",
            thresholds={"minRequests": 5},
            remediation={"defaultMode": "Off", "provenGoodAfter": "3s"},
        ),
        namespace,
    )
    kube.apply(realpods.backend_deployment("api", replicas=3), namespace)
    backends = realpods.ready_pods(kube, namespace, "api", 3)
    targets = [f"{ip}:{realpods.BACKEND_PORT}" for ip in realpods.pod_ips(backends)]
    text = realpods.config(targets, tls=True)
    kube.apply(configs.configmap("edge-config", text), namespace)
    kube.apply(realpods.zentinel_deployment("edge", 3, tls_secret="edge-tls"), namespace)
    realpods.ready_pods(kube, namespace, "edge", 3)
    tls = [
        {
            "name": "public",
            "secretName": "edge-tls",
            "port": realpods.TLS_PORT,
            "serverName": SAN,
            "issuer": {"type": "CASecret", "caSecretName": "edge-ca"},
        }
    ]
    kube.apply(realpods.zentinel_object("edge", tls=tls), namespace)

    def status() -> dict[str, Any]:
        return dict((kube.get("zen", "edge", namespace) or {}).get("status") or {})

    # Settled: every pod seen, the revision proven good (the last status write of a quiet Zentinel), healthy.
    wait_for(lambda: status().get("lastKnownGoodRevision") == config_revision(text), timeout=90, what="proven")
    wait_for(
        lambda: (c := condition(kube.get("zen", "edge", namespace), "Healthy")) and c["status"] == "True",
        timeout=60,
        what="Healthy=True",
    )
    assert kube.list("zentinelincidents", namespace) == []
    # The audit log holds the operator's requests: the set-up's reads are there.
    setup = audit.counts(log, set_up_from, log.stat().st_size)
    assert setup.get(("list", "pods"), 0) + setup.get(("get", "deployments"), 0) > 0, setup

    deadline = time.monotonic() + 90
    while True:  # settled: 5 s without a request beyond the watches
        start = log.stat().st_size
        time.sleep(5)
        seen = beyond_watches(audit.requests(log, start, log.stat().st_size))
        if not seen:
            break
        assert time.monotonic() < deadline, f"no 5 s without a read in 90 s; the last 5 s: {Counter(seen)}"

    start, timer_before = log.stat().st_size, passes(operator, "timer")
    time.sleep(QUIET_MINUTE)
    time.sleep(1)  # the minute's last requests reach the log
    events = audit.requests(log, start, log.stat().st_size)
    timer_passes = passes(operator, "timer") - timer_before
    assert timer_passes >= QUIET_MINUTE / 2, f"only {timer_passes} timer passes ran in the minute"
    assert beyond_watches(events) == [], audit.counts(log, start, log.stat().st_size)

    # A change comes by the ConfigMap's watch: the passes read again, and the status shows the new revision.
    changed = text + "// a comment: a new revision, the same config\n"
    start = log.stat().st_size
    kube.apply(configs.configmap("edge-config", changed), namespace)
    wait_for(
        lambda: config_revision(changed) in {r.get("revision") for r in status().get("revisions") or []},
        timeout=30,
        what="the new revision in the Zentinel's history",
    )
    reads = audit.counts(log, start, log.stat().st_size)
    assert reads.get(("get", "configmaps"), 0) >= 1, reads
