"""Secrets planted in ten places never come out, and every write names the operator (issue 15, item 6).

Distinct random tokens go into: the pods' logs, their termination messages, an env value of the
Deployment, the KDL config (an upstream's auth token), the TLS keys (a leaf's and its CA's), the
receiver's URL and bearer token (both held in a Secret), an Alertmanager label, the intake's bearer
token, an Alertmanager summary that becomes the incident's summary and so the notification bodies,
and each pod's ``/admin/config`` answer. Then a crash-loop incident and an alert's incident run to
resolution, with evidence at detection and resolution and a post-mortem draft each.

None of the tokens (nor their base64) may appear in the operator's log, the Events, any zentinel.io
object (status included), the evidence ConfigMaps, the post-mortems, ``zentinelctl show``,
``evidence`` (its output and the files it exports) and ``postmortem``, or the notification bodies.

The operator talks to the API server through ``support.faultproxy`` (no faults armed), which records
every request's User-Agent: all of them, kopf's own watches and patches included, must be the
operator's. Every object it wrote lists only ``zentinel-incident-operator`` among its field managers,
besides the test's own ``kubectl`` writes.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration.test_cli import zentinel as zentinelctl
from integration.test_notifications import am_payload, events_of, post_alerts, secret
from support import configs, crash
from support.certs import leaf, tls_secret
from support.dataplane import Dataplane
from support.faultproxy import FaultProxy
from support.kube import Kube, deployment, running_pods, wait_for
from support.operator import OperatorProcess, free_port, listening, running
from support.receivers import Receivers
from zentinel_devcluster.pki import CA
from zentinel_operator import k8s

pytestmark = pytest.mark.integration

PLACES = (
    "log",
    "termination",
    "env",
    "kdl",
    "receiver-url",
    "receiver-token",
    "alert-label",
    "intake",
    "notification",
    "admin-config",
)
TOKENS = {place: secrets.token_hex(16) for place in PLACES}  # TLS keys are the tenth place: see keys_of
WRITERS = {k8s.FIELD_MANAGER}
TEST_MANAGERS = ("kubectl",)  # the test's own kubectl apply/patch/annotate


def kdl_with_auth_token() -> str:
    planted = configs.GOOD.replace(
        '    upstream "api" {\n',
        f'    upstream "api" {{\n        auth-token "{TOKENS["kdl"]}"\n',
    )
    assert planted != configs.GOOD
    return planted


CURRENT_LOG = f"""\
INFO zentinel_proxy: listening on 0.0.0.0:8080 (listener http)
DEBUG request headers: Authorization: Bearer {TOKENS["log"]}
ERROR zentinel_proxy: listener http failed: Too many open files (os error 24)
"""
TERMINATION = f"fatal: upstream api refused the configured credentials (api_key={TOKENS['termination']})"


def with_admin_secret(emu: Any) -> None:
    """Healthy upstreams, and an /admin/config answer that shows an upstream's auth token."""
    for addr in ("10.0.1.10:8000", "10.0.1.11:8000", "10.0.1.12:8000"):
        emu.set_target("api", addr, "healthy")
    document = emu.config_document

    def planted(request_id: str = "emulated") -> dict[str, Any]:
        doc: dict[str, Any] = document(request_id)
        for up in doc["config"].get("upstreams") or []:
            up["auth_token"] = TOKENS["admin-config"]
        doc["config"]["agents"] = [{"id": "auth", "config": {"token": TOKENS["admin-config"]}}]
        return doc

    emu.config_document = planted


def keys_of(pem: bytes) -> list[str]:
    """The body lines of a PEM private key: none of them may come out."""
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture
def intake_port() -> int:
    return free_port()


@pytest.fixture
def proxied_operator(
    proxy: FaultProxy, namespace: str, tmp_path: Path, intake_port: int, request: pytest.FixtureRequest
) -> Iterator[OperatorProcess]:
    token_file = tmp_path / "intake-token"
    token_file.write_text(TOKENS["intake"] + "\n")
    env = {
        "ZENTINEL_OPERATOR_ALERT_INTAKE_PORT": str(intake_port),
        "ZENTINEL_OPERATOR_ALERT_INTAKE_TOKEN_FILE": str(token_file),
    }
    kubeconfig = proxy.write_kubeconfig(tmp_path / "kubeconfig-via-proxy")
    with running(OperatorProcess(kubeconfig, namespace, tmp_path, env), request) as op:
        yield op


# ---------------------------------------------------------------------------------- setup
def alert(namespace: str, status: str) -> dict[str, Any]:
    body = am_payload(namespace, status, "2026-11-27T03:00:00Z")
    body["alerts"][0]["labels"]["auth_token"] = TOKENS["alert-label"]
    body["alerts"][0]["annotations"]["summary"] = (
        f"checkout rejected; the client sent Authorization: Bearer {TOKENS['notification']}"
    )
    return body


def start(kube: Kube, namespace: str, receivers: Receivers, dataplanes: list[Any], logs: Path) -> list[str]:
    """Everything planted; returns the private keys' body lines."""
    authority = CA.create("edge test CA")
    ca_pem, ca_key = authority.pem()
    cert, key = leaf(authority, ["edge.example.com"], days=300)
    kube.apply(tls_secret("edge-ca", ca_pem, ca_key), namespace)
    kube.apply(tls_secret("edge-tls", cert, key), namespace)
    hook_url = receivers.url(f"/hook/{TOKENS['receiver-url']}")
    kube.apply(secret("paging", {"url": hook_url, "token": TOKENS["receiver-token"]}), namespace)
    kube.apply(
        {
            "apiVersion": "zentinel.io/v1alpha1",
            "kind": "ZentinelIncidentPolicy",
            "metadata": {"name": "edge"},
            "spec": {
                "selector": {"matchLabels": {"tier": "edge"}},
                "receivers": [
                    {
                        "name": "hook",
                        "type": "Webhook",
                        "secretRef": {"name": "paging", "key": "url"},
                        "tokenSecretRef": {"name": "paging", "key": "token"},
                    }
                ],
                "escalation": {sev: {"primary": ["hook"]} for sev in ("sev1", "sev2", "sev3")},
                "lifecycle": {"resolveAfter": "3s", "reopenWindow": "10m"},
            },
        },
        namespace,
    )
    kube.apply(configs.configmap("edge-config", kdl_with_auth_token()), namespace)
    dep = deployment("edge", replicas=3)
    dep["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "API_KEY", "value": TOKENS["env"]}]
    kube.apply(dep, namespace)
    pods = running_pods(kube, namespace, "app=edge", 3)
    dp = Dataplane(kube, namespace, "app=edge", setup=with_admin_secret)
    dataplanes.append(dp)
    dp.sync()
    dp.traffic(rps=20, error_share=0.0)
    for pod in pods[:2]:
        crash.set_logs(kube, pod, "zentinel", CURRENT_LOG, CURRENT_LOG, logs)
        crash.crash_loop(kube, pod, restarts=5, message=TERMINATION)
    issuer = {"type": "CASecret", "caSecretName": "edge-ca"}
    kube.apply(
        {
            "apiVersion": "zentinel.io/v1alpha1",
            "kind": "Zentinel",
            "metadata": {"name": "edge", "labels": {"tier": "edge"}},
            "spec": {
                "workload": {"name": "edge"},
                "config": {"configMapName": "edge-config"},
                "tls": [{"name": "public", "secretName": "edge-tls", "issuer": issuer}],
            },
        },
        namespace,
    )
    return keys_of(ca_key) + keys_of(key)


def incident_of(kube: Kube, namespace: str, category: str) -> dict[str, Any] | None:
    found = [i for i in kube.list("zentinelincidents", namespace) if i["spec"]["category"] == category]
    return found[0] if found and (found[0].get("status") or {}).get("state") else None


def closed(kube: Kube, namespace: str, category: str) -> dict[str, Any] | None:
    inc = incident_of(kube, namespace, category)
    st = (inc or {}).get("status") or {}
    phases = {r["phase"] for r in st.get("evidence") or []}
    return inc if st.get("resolvedAt") and st.get("postmortem") and "resolution" in phases else None


def managers(obj: dict[str, Any]) -> set[str]:
    return {m["manager"] for m in obj["metadata"].get("managedFields") or []}


def with_managed_fields(kube: Kube, kinds: str, namespace: str) -> list[dict[str, Any]]:
    """Objects as stored, managedFields included (kubectl leaves them out unless asked)."""
    out = kube.run("get", kinds, "-n", namespace, "-o", "json", "--show-managed-fields").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


# ----------------------------------------------------------------------------------- test
def test_ten_planted_secrets_appear_nowhere_and_every_write_names_the_operator(
    kube: Kube,
    namespace: str,
    proxy: FaultProxy,
    proxied_operator: OperatorProcess,
    receivers: Receivers,
    dataplanes: list[Any],
    intake_port: int,
    tmp_path: Path,
) -> None:
    key_lines = start(kube, namespace, receivers, dataplanes, tmp_path / "logs")
    hook = f"/hook/{TOKENS['receiver-url']}"

    crashed = wait_for(
        lambda: (i := incident_of(kube, namespace, "ProcessCrash")) and i["status"].get("evidence") and i,
        timeout=120,
        what="the ProcessCrash incident with its detection evidence",
    )
    wait_for(lambda: listening(intake_port), timeout=60, what="the alert intake listening")
    status, body = post_alerts(intake_port, alert(namespace, "firing"), token=TOKENS["intake"])
    assert status == 200 and body["processed"] == 1, body
    alerted = wait_for(lambda: incident_of(kube, namespace, "ExternalAlert"), timeout=60, what="the alert's incident")
    names = [crashed["metadata"]["name"], alerted["metadata"]["name"]]
    for name in names:
        wait_for(lambda name=name: receivers.got(hook, name), timeout=60, what=f"the trigger for {name}")

    for pod in kube.list("pods", namespace, "app=edge"):
        crash.recover(kube, pod)
    status, _ = post_alerts(intake_port, alert(namespace, "resolved"), token=TOKENS["intake"])
    assert status == 200
    for category in ("ProcessCrash", "ExternalAlert"):
        wait_for(
            lambda category=category: closed(kube, namespace, category),
            timeout=120,
            what=f"{category} resolved, with resolution evidence and a post-mortem",
        )
    for name in names:
        wait_for(
            lambda name=name: events_of(receivers.got(hook, name), "event")[-1:] == ["resolve"],
            timeout=60,
            what=f"the resolve for {name}",
        )
    time.sleep(3)  # more passes

    # --- where the tokens must not be
    got = receivers.got(hook)
    assert got and all(r.headers["Authorization"] == f"Bearer {TOKENS['receiver-token']}" for r in got)
    assert any("checkout rejected" in r.raw.decode() for r in got)  # the alert's summary was sent
    cli: dict[str, str] = {}
    for name in names:
        for args in (("show", name), ("postmortem", name), ("evidence", name, "--out", str(tmp_path / name))):
            run = zentinelctl(kube, *args, "-n", namespace)
            assert run.returncode == 0, run.stderr
            cli[f"zentinelctl {args[0]} {name}"] = run.stdout + run.stderr
        exported = sorted(p for p in (tmp_path / name).rglob("*") if p.is_file())
        assert exported
        cli[f"files exported for {name}"] = "\n".join(p.read_text(errors="replace") for p in exported)
    artifacts = [
        cm
        for cm in kube.list("configmaps", namespace)
        if cm["metadata"]["name"].startswith(tuple(f"{n}-" for n in names))
    ]
    assert {cm["metadata"]["name"] for cm in artifacts} >= {f"{n}-postmortem" for n in names}
    places: dict[str, str] = {
        "the operator log": proxied_operator.logs(),
        "the Events": kube.run("get", "events", "-n", namespace, "-o", "json").stdout,
        "the zentinel.io objects": kube.run(
            "get", "zentinels,zentinelincidents,zentinelincidentpolicies", "-n", namespace, "-o", "json"
        ).stdout,
        "the evidence and post-mortem ConfigMaps": json.dumps(artifacts),
        "the notification bodies": "\n".join(r.raw.decode(errors="replace") for r in got),
        **cli,
    }
    everything = "\n".join(places.values())
    assert "[REDACTED]" in everything
    assert "auth-token" in places["the evidence and post-mortem ConfigMaps"]  # the config was kept, redacted
    planted = {**TOKENS, **{f"TLS key line {i}": line for i, line in enumerate(key_lines)}}
    leaks = sorted(
        f"the token planted in {place} came out in {where}"
        for place, token in planted.items()
        for form in (token, base64.b64encode(token.encode()).decode())
        for where, text in places.items()
        if form in text
    )
    assert not leaks, "\n".join(leaks)

    # --- who wrote what: the User-Agent of every request, the field managers of every object written
    assert set(proxy.user_agents) == {k8s.USER_AGENT}, proxy.user_agents
    ours = {cm["metadata"]["name"] for cm in artifacts}
    written = [
        *with_managed_fields(kube, "zentinels,zentinelincidents,zentinelincidentpolicies,leases", namespace),
        *[cm for cm in with_managed_fields(kube, "configmaps", namespace) if cm["metadata"]["name"] in ours],
        *[
            e
            for e in with_managed_fields(kube, "events", namespace)
            if e["involvedObject"]["kind"].startswith("Zentinel")
        ],
    ]
    for obj in written:
        assert managers(obj), f"{obj['kind']} {obj['metadata']['name']}: no managedFields"
        others = {m for m in managers(obj) if m not in WRITERS and not m.startswith(TEST_MANAGERS)}
        assert not others, f"{obj['kind']} {obj['metadata']['name']} was written by {others}"
    kinds = {o["kind"] for o in written if k8s.FIELD_MANAGER in managers(o)}
    assert kinds >= {"ZentinelIncident", "Zentinel", "ZentinelIncidentPolicy", "ConfigMap", "Event", "Lease"}, kinds
