"""The CLI without a cluster: argument parsing, pure rendering, evidence planning, triage reports, and
every command's exit code against an in-memory stand-in for the API."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from zentinel_operator import names
from zentinel_operator.cli import app, evidence, render, triage
from zentinel_operator.cli.exits import (
    EXIT_ERROR,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNVERIFIED,
    EXIT_USAGE,
    CliError,
)
from zentinel_operator.cli.kube import KubeContext
from zentinel_operator.core.snapshot import (
    ContainerSignal,
    Finding,
    MetricsSignal,
    PodSignal,
    RouteSignal,
    Snapshot,
    TargetSignal,
    TargetStatus,
    UpstreamsSignal,
    WorkloadSignal,
)
from zentinel_operator.core.triage import triage as run_triage
from zentinel_operator.models import ZentinelIncident
from zentinel_operator.models.common import Category, Severity
from zentinel_operator.models.policy import Thresholds
from zentinel_operator.signals.metrics import parse_exposition

NOW = dt.datetime(2026, 11, 27, 12, 0, 0, tzinfo=dt.UTC)
CTX = KubeContext(namespace="edge-ns", user="kube-admin")


def iso(minutes_ago: float) -> str:
    return (NOW - dt.timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def incident(
    name: str = "inc-20261127-001",
    namespace: str = "edge-ns",
    *,
    severity: str = "SEV1",
    category: str = "ProcessCrash",
    zentinel: str = "edge",
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    st: dict[str, Any] = {
        "state": "Detected",
        "severity": severity,
        "summary": "Proxy down: no Zentinel process running (0 of 3 pods)",
        "count": 2,
        "detectedAt": iso(30),
        "lastSeenAt": iso(1),
    }
    st.update(status or {})
    return {
        "apiVersion": "zentinel.io/v1alpha1",
        "kind": "ZentinelIncident",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": "100",
            "creationTimestamp": iso(30),
            "annotations": annotations or {},
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {
            "zentinelRef": {"name": zentinel},
            "category": category,
            "fingerprint": f"{zentinel}/{category}",
            **(spec or {}),
        },
        "status": st,
    }


def pending_record(step: int = 0, action: str = "ejectTargets", state: str = "PendingApproval") -> dict[str, Any]:
    return {
        "id": f"inc-20261127-001/{step}/{action}",
        "action": action,
        "mode": "NeedsApproval",
        "state": state,
        "step": step,
        "reason": "needs approval",
        "diff": '--- a\n+++ b\n-        target "10.0.1.11:8000" weight=1\n',
    }


class FakeApi:
    """The API as a dict of objects; records every patch; can fail a patch with a given status."""

    def __init__(self, incidents: list[dict[str, Any]] | None = None) -> None:
        self.incidents = {(i["metadata"]["namespace"], i["metadata"]["name"]): i for i in incidents or []}
        self.configmaps: dict[tuple[str, str], dict[str, Any]] = {}
        self.zentinels: dict[tuple[str, str], dict[str, Any]] = {}
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.fail_patch: list[int] = []  # statuses to raise, one per patch call
        self.silences: dict[tuple[str, str], dict[str, Any]] = {}

    def add_configmap(self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str]) -> None:
        self.configmaps[(namespace, name)] = {
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "data": data,
        }

    def list_incidents(self, namespace: str | None) -> list[dict[str, Any]]:
        return [copy.deepcopy(v) for (ns, _), v in self.incidents.items() if namespace in (None, ns)]

    def get_incident(self, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.incidents.get((namespace, name))
        return copy.deepcopy(obj) if obj else None

    def patch_incident(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        if self.fail_patch:
            raise ApiException(status=self.fail_patch.pop(0), reason="Conflict")
        self.patches.append((name, copy.deepcopy(patch)))
        obj = self.incidents[(namespace, name)]
        obj["spec"].update(patch.get("spec") or {})
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        return obj

    def list_configmaps(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        key, _, value = selector.partition("=")
        return [
            copy.deepcopy(cm)
            for (ns, _), cm in self.configmaps.items()
            if ns == namespace and cm["metadata"]["labels"].get(key) == value
        ]

    def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.configmaps.get((namespace, name)))

    def get_zentinel(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.zentinels.get((namespace, name))

    def list_policies(self, namespace: str) -> list[dict[str, Any]]:
        return []

    def list_cluster_policies(self) -> list[dict[str, Any]]:
        return []

    def get_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def list_incidents_versioned(self, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        return self.list_incidents(namespace), "100"

    def list_silences(self, namespace: str | None) -> list[dict[str, Any]]:
        return [copy.deepcopy(v) for (ns, _), v in self.silences.items() if namespace in (None, ns)]

    def get_silence(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.silences.get((namespace, name)))

    def create_silence(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        meta = obj["metadata"]
        meta.setdefault("name", meta.pop("generateName", "") + f"x{len(self.silences)}")
        meta["namespace"] = namespace
        meta["creationTimestamp"] = dt.datetime.now(dt.UTC).isoformat()
        self.silences[(namespace, meta["name"])] = obj
        return copy.deepcopy(obj)

    def patch_silence(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append((name, copy.deepcopy(patch)))
        self.silences[(namespace, name)]["spec"].update(patch["spec"])
        return copy.deepcopy(self.silences[(namespace, name)])

    watch_events: list[tuple[str, dict[str, Any]]] = []
    watched: list[tuple[str | None, str, int | None]] = []

    def watch_incidents(
        self, namespace: str | None, resource_version: str, timeout_seconds: int | None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        self.watched = [*self.watched, (namespace, resource_version, timeout_seconds)]
        yield from self.watch_events


def cli(api: FakeApi, *argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = app.main(list(argv), api=api, kube_context=CTX)
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------ parsing
def test_options_go_before_or_after_the_subcommand_and_the_later_one_wins() -> None:
    parser = app.build_parser()
    args = parser.parse_args(["-n", "a", "-o", "yaml", "show", "x"])
    assert (args.namespace, args.output, args.incident) == ("a", "yaml", "x")
    args = parser.parse_args(["-n", "a", "show", "x", "-n", "b", "--kubeconfig", "/k"])
    assert (args.namespace, args.output, args.kubeconfig) == ("b", "table", "/k")
    args = parser.parse_args(
        ["incidents", "-A", "--open", "--severity", "1", "--severity", "sev3", "--zentinel", "edge", "-o", "json"]
    )
    assert args.all_namespaces and args.open and args.severity == ["SEV1", "SEV3"] and args.zentinel == "edge"
    args = parser.parse_args(["approve", "inc-1", "inc-1/0/ejectTargets", "--by", "dave"])
    assert (args.incident, args.action_id, args.by) == ("inc-1", "inc-1/0/ejectTargets", "dave")
    args = parser.parse_args(["triage", "--url", "http://h:9090", "--interval", "0.5"])
    assert args.url == "http://h:9090" and args.interval == 0.5 and args.zentinel is None


@pytest.mark.parametrize(
    "argv",
    [
        ["incidents", "--severity", "SEV7"],
        ["show"],
        ["incidents", "-o", "widest"],
        ["incidents", "-o", "jsonpath={.items["],
        ["triage", "--url", "http://h", "--interval", "0"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(FakeApi(), *argv, capsys=capsys)
    assert code == EXIT_USAGE
    assert "usage:" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["triage"], "either a Zentinel name or --url"),
        (["triage", "edge", "--url", "http://h:9090"], "either a Zentinel name or --url"),
        (["triage", "edge", "--admin-url", "http://h:9090"], "go with --url"),
        (["triage", "--url", "ftp://h:9090"], "not an http(s) URL"),
        (["resolve", "inc-20261127-001", "--note", "x" * 4097], "longer than 4096"),
    ],
)
def test_inconsistent_arguments_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(FakeApi([incident()]), *argv, capsys=capsys)
    assert code == EXIT_USAGE and out == ""
    assert message in err


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(FakeApi(), "--help", capsys=capsys)
    assert code == EXIT_OK
    for line in ("3   not found", "4   refused", "5   evidence exported but not verified", "11-14  triage"):
        assert line in out
    code, out, _ = cli(FakeApi(), "triage", "--help", capsys=capsys)
    assert code == EXIT_OK and "--admin-url" in out and "11 = SEV1" in out


def test_program_name_follows_the_plugin_mechanism() -> None:
    assert app._prog("/usr/local/bin/kubectl-zentinel") == "kubectl zentinel"
    assert app._prog("/venv/bin/zentinelctl") == "zentinelctl"


def test_no_console_script_takes_the_proxy_binary_name() -> None:
    """Zentinel's own binary is ``zentinel``: a CLI under that name would hide it (or be hidden) on PATH."""
    import importlib.metadata
    import tomllib

    scripts = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["scripts"]
    assert "zentinel" not in scripts
    assert scripts["zentinelctl"] == scripts["kubectl-zentinel"] == "zentinel_operator.cli:main"
    installed = {
        ep.name
        for ep in importlib.metadata.distribution("zentinel-incident-operator").entry_points
        if ep.group == "console_scripts"
    }
    assert "zentinel" not in installed and {"zentinelctl", "kubectl-zentinel"} <= installed


def test_default_user_is_user_then_kubeconfig_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "alice")
    assert app.default_user(CTX) == "alice"
    monkeypatch.delenv("USER")
    assert app.default_user(CTX) == "kube-admin"


def test_connect_reads_the_namespace_and_user_of_the_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kubernetes

    from zentinel_operator import k8s
    from zentinel_operator.cli.kube import connect

    monkeypatch.setattr(k8s, "_configured", False)
    monkeypatch.setattr(kubernetes.client.Configuration, "_default", None)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "ops-admin", "user": {"token": "not-printed"}}, {"name": "dev", "user": {}}],
        "contexts": [
            {"name": "ops", "context": {"cluster": "c", "user": "ops-admin", "namespace": "edge"}},
            {"name": "dev", "context": {"cluster": "c", "user": "dev"}},
        ],
        "current-context": "ops",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(cfg))
    assert connect(str(path), None) == KubeContext(namespace="edge", user="ops-admin")
    assert k8s._configured  # k8s.configure() keeps this kubeconfig instead of loading its own
    assert connect(str(path), "dev") == KubeContext(namespace="default", user="dev")


# ------------------------------------------------------------------------------ rendering
def test_table_pads_columns_like_kubectl() -> None:
    assert render.table(["name", "sev"], [["inc-1", "SEV1"], ["inc-22", None]]) == (
        "NAME     SEV\ninc-1    SEV1\ninc-22   -\n"
    )


def test_ages_and_times() -> None:
    assert render.ago(iso(4.2), NOW) == "4m12s"
    assert render.ago(None, NOW) == "-"
    assert render.ago("not a time", NOW) == "-"
    assert render.when(iso(-120), NOW) == "2026-11-27 14:00:00Z (in 2h)"
    assert render.when(iso(90), NOW) == "2026-11-27 10:30:00Z (1h30m ago)"


def test_severity_argument() -> None:
    assert [render.severity_arg(s) for s in ("SEV2", "sev3", "4", " 1 ")] == ["SEV2", "SEV3", "SEV4", "SEV1"]
    with pytest.raises(ValueError, match="not a severity"):
        render.severity_arg("5")


def incidents_fixture() -> list[dict[str, Any]]:
    return [
        incident("inc-20261127-002", severity="SEV3", category="UpstreamFailure"),
        incident("inc-20261127-001", status={"acknowledgedBy": "alice", "state": "Acknowledged"}),
        incident(
            "inc-20261126-001",
            severity="SEV2",
            category="HighErrorRate",
            status={"state": "Resolved", "resolvedAt": iso(600)},
        ),
        incident("inc-20261127-001", namespace="other", zentinel="web", severity="SEV4"),
    ]


def test_filters_and_order() -> None:
    objs = incidents_fixture()
    names = [o["metadata"]["name"] for o in render.filter_incidents(objs)]
    assert names == ["inc-20261126-001", "inc-20261127-001", "inc-20261127-002", "inc-20261127-001"]
    assert [o["metadata"]["name"] for o in render.filter_incidents(objs, open_only=True)] == [
        "inc-20261127-001",
        "inc-20261127-002",
        "inc-20261127-001",
    ]
    assert [o["status"]["severity"] for o in render.filter_incidents(objs, severities=["SEV1", "SEV2"])] == [
        "SEV2",
        "SEV1",
    ]
    assert [o["metadata"]["namespace"] for o in render.filter_incidents(objs, zentinel="web")] == ["other"]


def test_incident_list_has_kubectl_columns_and_last_seen() -> None:
    rows = [render.incident_summary(o) for o in render.filter_incidents(incidents_fixture()[:2])]
    text = render.render_incidents(rows, NOW, all_namespaces=False)
    assert text.splitlines() == [
        "NAME               SEVERITY   CATEGORY          ZENTINEL   STATE          ACKED-BY   AGE   LAST-SEEN",
        "inc-20261127-001   SEV1       ProcessCrash      edge       Acknowledged   alice      30m   1m",
        "inc-20261127-002   SEV3       UpstreamFailure   edge       Detected       <none>     30m   1m",
    ]
    wide = render.render_incidents(rows, NOW, all_namespaces=True)
    assert wide.splitlines()[0].startswith("NAMESPACE   NAME") and wide.splitlines()[1].startswith("edge-ns   ")


def test_diff_summary() -> None:
    diff = '--- a/zentinel.kdl\n+++ b/zentinel.kdl\n@@ -1 +1 @@\n-        target "x" weight=1\n+        // out\n'
    assert render.diff_summary(diff) == "+1/-1: // out"
    assert render.diff_summary("memory limit 256Mi -> 384Mi\nmore") == "memory limit 256Mi -> 384Mi"
    assert render.diff_summary(None) == "-"


def full_incident() -> dict[str, Any]:
    return incident(
        spec={"resolvedBy": None},
        status={
            "severityReason": "raised: all pods down",
            "responseDueAt": iso(-5),
            "escalationLevel": "secondary",
            "conditions": [
                {
                    "type": "Acknowledged",
                    "status": "False",
                    "reason": "NotAcknowledged",
                    "message": "waiting",
                    "lastTransitionTime": iso(30),
                },
                {"type": "Escalated", "status": "True", "reason": "ResponseTargetMissed", "message": "lead paged"},
            ],
            "findings": [
                {
                    "category": "ProcessCrash",
                    "severity": "SEV1",
                    "summary": "Proxy down",
                    "evidence": ["3 of 3 pods CrashLoopBackOff"],
                }
            ],
            "timeline": [
                {"time": iso(30), "type": "Detected", "message": "Proxy down"},
                {"time": iso(15), "type": "Escalated", "message": "secondary: lead"},
            ],
            "remediations": [
                {
                    **pending_record(0, "configRollback", "Refused"),
                    "reason": "never rolling back to an unproven config",
                },
                pending_record(1, "restart"),
            ],
            "escalations": [{"level": "secondary", "at": iso(15), "reason": "not acknowledged", "receivers": ["lead"]}],
            "deliveries": [
                {
                    "receiver": "oncall",
                    "event": "trigger",
                    "key": "k1",
                    "state": "Failed",
                    "attempts": 3,
                    "at": iso(29),
                    "lastError": "connection refused",
                },
            ],
            "evidence": [
                {"name": "inc-20261127-001-ev-detection-01", "phase": "detection", "items": ["a"], "bytes": 9}
            ],
        },
    )


def test_show_has_every_section() -> None:
    inc = ZentinelIncident.model_validate(full_incident())
    chunks = render.evidence_chunks([r.dump() for r in inc.status.evidence], [])
    text = render.render_show(inc, chunks, NOW)
    assert "Severity:        SEV1 (raised: all pods down)" in text
    assert "Acknowledged:    no (respond by 2026-11-27 12:05:00Z (in 5m))" in text
    assert "Last seen:       2026-11-27 11:59:00Z (1m ago)" in text
    for title in ("Conditions:", "Findings:", "Timeline:", "Remediations:", "Escalations:", "Deliveries:", "Evidence:"):
        assert f"\n{title}\n" in text
    assert "  - 3 of 3 pods CrashLoopBackOff" in text
    assert "Escalated      True     ResponseTargetMissed" in text
    assert "inc-20261127-001/1/restart          restart          PendingApproval" in text
    assert '+0/-1: target "10.0.1.11:8000" weight=1' in text
    assert "Waiting for approval: inc-20261127-001/1/restart (zentinelctl approve inc-20261127-001 -n edge-ns)" in text
    assert "oncall     trigger   Failed   3" in text and "connection refused" in text
    assert "inc-20261127-001-ev-detection-01   detection   1       9       missing" in text


def test_show_resolved_and_requests_pending() -> None:
    inc = ZentinelIncident.model_validate(
        incident(
            spec={"acknowledgedBy": "alice", "resolutionNote": "upstream fixed"},
            status={
                "resolvedAt": iso(10),
                "resolvedBy": "carol",
                "state": "Resolved",
                "postmortemDue": iso(-2870),
            },
        )
    )
    text = render.render_show(inc, [], NOW)
    assert "requested by alice (the operator records it on its next pass)" in text
    assert "Resolved:        by carol at 2026-11-27 11:50:00Z (10m ago)" in text
    assert "Resolution note: upstream fixed" in text
    assert "Post-mortem due: 2026-11-29 11:50:00Z (in 1d23h)" in text
    assert "Post-mortem:     not drafted yet" in text


def test_evidence_chunks_from_status_and_configmaps() -> None:
    cms = [
        {
            "metadata": {"name": "i-ev-resolution-01", "labels": {names.LABEL_PHASE: "resolution"}},
            "data": {"events.txt": "abc"},
            "binaryData": {"x.gz": "AAEC"},
        }
    ]
    refs = [{"name": "i-ev-detection-01", "phase": "detection", "items": ["events.txt"], "bytes": 3}]
    chunks = render.evidence_chunks(refs, cms)
    assert [(c.name, c.phase, c.items, c.bytes, c.in_status, c.exists) for c in chunks] == [
        ("i-ev-detection-01", "detection", ("events.txt",), 3, True, False),
        ("i-ev-resolution-01", "resolution", ("events.txt", "x.gz"), 6, False, True),
    ]
    assert render.evidence_chunks(refs, None)[0].exists  # not listed: trust the status


def test_dump_json_and_yaml() -> None:
    data = {"when": NOW, "sev": Severity.SEV1, "t": (1, 2)}
    assert json.loads(render.dump(data, "json")) == {"when": "2026-11-27T12:00:00+00:00", "sev": "SEV1", "t": [1, 2]}
    assert yaml.safe_load(render.dump(data, "yaml")) == {
        "when": "2026-11-27T12:00:00+00:00",
        "sev": "SEV1",
        "t": [1, 2],
    }


# ------------------------------------------------------------------------------ evidence (pure)
def sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def test_incident_folder_and_key_paths() -> None:
    assert evidence.incident_folder("inc-20261127-001") == "INC-20261127-001"
    assert evidence.incident_folder("alert-x") == "ALERT-X"
    assert str(evidence.key_path("logs__edge-a__zentinel.log")) == "logs/edge-a/zentinel.log"
    assert str(evidence.key_path("events.txt")) == "events.txt"
    for bad in ("..__etc__passwd", "logs____x", "__x", "."):
        with pytest.raises(evidence.EvidenceError):
            evidence.key_path(bad)


@pytest.mark.parametrize(
    "doc",
    [
        {
            "format": "zentinel.io/evidence/v1",
            "items": [{"key": "logs__a__z.log", "chunk": "i-ev-detection-00", "bytes": 3, "sha256": "a" * 64}],
            "notes": [],
        },
        {"files": {"logs/a/z.log": "A" * 64}},
        {"files": {"logs__a__z.log": {"sha256": "a" * 64, "bytes": 3}}},
        {"files": [{"path": "logs/a/z.log", "sha256": "a" * 64}], "incident": "x"},
        {"logs/a/z.log": "a" * 64},
    ],
)
def test_manifest_forms(doc: dict[str, Any]) -> None:
    listed = evidence.parse_manifest(json.dumps(doc).encode())
    assert {k.replace("/", "__"): v for k, v in listed.items()} == {"logs__a__z.log": evidence.Listed("a" * 64)}


def test_manifest_that_is_not_json() -> None:
    with pytest.raises(evidence.EvidenceError, match="not JSON"):
        evidence.parse_manifest(b"{nope")


def chunk(name: str, files: dict[str, str], phase: str | None = None) -> evidence.Chunk:
    labels = {names.LABEL_PHASE: phase} if phase else {}
    return evidence.chunk_of({"metadata": {"name": name, "labels": labels}, "data": files})


def manifest(files: dict[str, str], paths: bool = False) -> str:
    return json.dumps(
        {"files": [{"path": k.replace("__", "/") if paths else k, "sha256": sha(v)} for k, v in files.items()]}
    )


def test_plan_verifies_each_phase_against_its_manifests() -> None:
    d1 = {"logs__edge-a__zentinel.log": "boom\n", "metrics__edge-a.txt": "zentinel_up 1\n"}
    d2 = {"events.txt": "Warning BackOff\n", "config.kdl": "system {}\n"}
    r1 = {"upstreams__edge-a.json": "{}"}
    plan = evidence.plan_export(
        "inc-20261127-003",
        [
            chunk("inc-20261127-003-ev-resolution-01", {**r1, "MANIFEST.json": manifest(r1, paths=True)}),
            chunk("inc-20261127-003-ev-detection-02", {**d2, "MANIFEST.json": manifest({**d1, **d2})}, "detection"),
            chunk("inc-20261127-003-ev-detection-01", {**d1, "MANIFEST.json": manifest({**d1, **d2})}, "detection"),
        ],
    )
    assert plan.folder == "INC-20261127-003"
    assert [(str(f.path), f.check) for f in plan.files] == [
        ("detection/MANIFEST.json", "-"),
        ("detection/logs/edge-a/zentinel.log", "ok"),
        ("detection/metrics/edge-a.txt", "ok"),
        ("detection/config.kdl", "ok"),
        ("detection/events.txt", "ok"),
        ("resolution/MANIFEST.json", "-"),
        ("resolution/upstreams/edge-a.json", "ok"),
    ]
    assert plan.verified and not plan.missing and plan.manifests == 2


def test_plan_reports_mismatches_missing_and_unlisted_files() -> None:
    listed = {"events.txt": "original\n", "config.kdl": "system {}\n"}
    plan = evidence.plan_export(
        "inc-20261127-004",
        [
            chunk(
                "inc-20261127-004-ev-detection-01",
                {"events.txt": "tampered\n", "extra.txt": "x", "MANIFEST.json": manifest(listed)},
            )
        ],
    )
    checks = {str(f.path): f.check for f in plan.files}
    assert checks == {
        "detection/MANIFEST.json": "-",
        "detection/events.txt": "MISMATCH",
        "detection/extra.txt": "not in manifest",
    }
    assert plan.missing == (("detection", "config.kdl"),)
    assert not plan.verified
    text = evidence.render_export(plan, Path("/out/INC-20261127-004"))
    assert "MISMATCH" in text and "MISSING: detection/config.kdl" in text and "manifest NOT verified" in text


def test_plan_without_manifest_and_conflicting_duplicates() -> None:
    plan = evidence.plan_export(
        "inc-20261127-005",
        [
            chunk("inc-20261127-005-ev-detection-01", {"events.txt": "one"}),
            chunk("inc-20261127-005-ev-detection-02", {"events.txt": "two"}),
            chunk("inc-20261127-005-ev-detection-03", {"..__x": "escape"}),
        ],
    )
    assert [(str(f.path), f.check) for f in plan.files] == [
        ("detection/events.txt", "no manifest"),
        ("detection/events.02.txt", "no manifest"),
    ]
    assert any("differs from an earlier chunk" in n for n in plan.notes)
    assert any("does not name a file inside the bundle" in n for n in plan.notes)
    assert plan.manifests == 0


def operator_manifest(chunks: dict[str, dict[str, str]], parts_of: str | None = None) -> str:
    """MANIFEST.json as the operator writes it (chunk 00): every item with its chunk and sha256."""
    items = []
    for name, files in chunks.items():
        for key, text in files.items():
            item: dict[str, Any] = {"key": key, "chunk": name, "bytes": len(text), "sha256": sha(text)}
            if parts_of and key.startswith(parts_of + ".part"):
                item |= {"partOf": parts_of, "part": f"{int(key[-2:])}/3"}
            items.append(item)
    return json.dumps({"format": "zentinel.io/evidence/v1", "incident": "i", "phase": "detection", "items": items})


def test_split_items_are_checked_part_by_part_and_written_whole() -> None:
    log = "logs__edge-a__zentinel.log"
    c0 = {f"{log}.part01": "line 1\n", "events.txt": "ev\n"}
    c1 = {f"{log}.part02": "line 2\n"}
    c2 = {f"{log}.part03": "line 3\n"}
    names = [f"inc-20261127-007-ev-detection-0{i}" for i in range(3)]
    manifest = operator_manifest(dict(zip(names, (c0, c1, c2), strict=True)), parts_of=log)
    chunks = [chunk(names[0], {"MANIFEST.json": manifest, **c0}, "detection"), chunk(names[1], c1), chunk(names[2], c2)]
    plan = evidence.plan_export("inc-20261127-007", chunks)
    assert [(str(f.path), f.check) for f in plan.files] == [
        ("detection/MANIFEST.json", "-"),
        ("detection/events.txt", "ok"),
        ("detection/logs/edge-a/zentinel.log", "ok"),
    ]
    assert plan.files[2].content == b"line 1\nline 2\nline 3\n" and plan.verified
    tampered = [*chunks[:2], chunk(names[2], {f"{log}.part03": "edited\n"})]
    plan = evidence.plan_export("inc-20261127-007", tampered)
    assert [f.check for f in plan.files if f.key == log] == ["MISMATCH"] and not plan.verified
    plan = evidence.plan_export("inc-20261127-007", chunks[:2])  # a chunk lost: the parts stay apart
    assert plan.missing == (("detection", f"{log}.part03"),)
    assert [str(f.path) for f in plan.files if "part" in f.key] == [
        "detection/logs/edge-a/zentinel.log.part01",
        "detection/logs/edge-a/zentinel.log.part02",
    ]


def test_binary_data_is_decoded_and_written(tmp_path: Path) -> None:
    cm = {
        "metadata": {"name": "inc-20261127-006-ev-detection-01", "labels": {names.LABEL_PHASE: "detection"}},
        "data": {"events.txt": "é\n"},
        "binaryData": {"logs__p__c.log.gz": "H4sIAAAAAAAAA0tMSgYAgRTJ3gIAAAA="},
    }
    plan = evidence.plan_export("inc-20261127-006", [evidence.chunk_of(cm)])
    root = evidence.write_export(plan, tmp_path)
    assert root == tmp_path / "INC-20261127-006"
    assert (root / "detection" / "events.txt").read_text() == "é\n"
    assert (root / "detection" / "logs" / "p" / "c.log.gz").read_bytes()[:2] == b"\x1f\x8b"


# ------------------------------------------------------------------------------ commands (fake API)
def test_incidents_command_table_json_and_all_namespaces(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi(incidents_fixture())
    code, out, _ = cli(api, "incidents", "--open", capsys=capsys)
    assert code == EXIT_OK
    assert [line.split()[0] for line in out.splitlines()] == ["NAME", "inc-20261127-001", "inc-20261127-002"]
    code, out, _ = cli(api, "incidents", "-A", "-o", "json", "--severity", "4", capsys=capsys)
    rows = json.loads(out)
    assert code == EXIT_OK and [(r["namespace"], r["severity"], r["zentinel"]) for r in rows] == [
        ("other", "SEV4", "web")
    ]
    code, out, _ = cli(api, "incidents", "-n", "empty", capsys=capsys)
    assert code == EXIT_OK and out == "No incidents found in namespace empty.\n"


def test_show_command(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi([full_incident()])
    code, out, _ = cli(api, "show", "inc-20261127-001", capsys=capsys)
    assert code == EXIT_OK and "Timeline:" in out
    code, out, _ = cli(api, "show", "inc-20261127-001", "-o", "yaml", capsys=capsys)
    doc = yaml.safe_load(out)
    assert code == EXIT_OK and "managedFields" not in doc["metadata"] and doc["evidenceChunks"][0]["exists"] is False
    code, out, err = cli(api, "show", "inc-20991231-001", capsys=capsys)
    assert (
        code == EXIT_NOT_FOUND and out == "" and 'incident "inc-20991231-001" not found in namespace "edge-ns"' in err
    )


def test_ack(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "alice")
    api = FakeApi([incident()])
    code, out, _ = cli(api, "ack", "inc-20261127-001", capsys=capsys)
    assert code == EXIT_OK and "acknowledged by alice" in out
    assert api.patches == [("inc-20261127-001", {"spec": {"acknowledgedBy": "alice"}})]
    code, _, err = cli(api, "ack", "inc-20261127-001", "--by", "bob", capsys=capsys)
    assert code == EXIT_REFUSED and "acknowledgement by alice is already requested" in err
    assert len(api.patches) == 1


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (incident(status={"acknowledgedAt": iso(5), "acknowledgedBy": "zoe"}), "already acknowledged by zoe"),
        (incident(annotations={"zentinel.io/acknowledged-by": "yan"}), "acknowledgement by yan is already requested"),
        (
            incident(status={"resolvedAt": iso(5), "resolvedBy": "operator"}),
            "already resolved (by operator at 2026-11-27 11:55:00Z)",
        ),
    ],
)
def test_ack_refused(obj: dict[str, Any], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi([obj])
    code, out, err = cli(api, "ack", "inc-20261127-001", "--by", "bob", capsys=capsys)
    assert (code, out, api.patches) == (EXIT_REFUSED, "", [])
    assert message in err


def test_resolve(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi([incident()])
    code, out, _ = cli(
        api,
        "resolve",
        "inc-20261127-001",
        "--by",
        "carol",
        "--note",
        "bad deploy reverted",
        "-o",
        "json",
        capsys=capsys,
    )
    assert code == EXIT_OK
    assert json.loads(out)["patch"] == {"spec": {"resolvedBy": "carol", "resolutionNote": "bad deploy reverted"}}
    code, _, err = cli(api, "resolve", "inc-20261127-001", "--by", "carol", capsys=capsys)
    assert code == EXIT_REFUSED and "resolution by carol is already requested" in err
    api = FakeApi([incident(status={"resolvedAt": iso(3), "resolvedBy": "operator", "state": "Resolved"})])
    code, _, err = cli(api, "resolve", "inc-20261127-001", "--by", "carol", capsys=capsys)
    assert code == EXIT_REFUSED and "already resolved (by operator at 2026-11-27 11:57:00Z)" in err
    assert api.patches == []


def test_approve_the_last_pending_or_a_named_one(capsys: pytest.CaptureFixture[str]) -> None:
    records = [pending_record(0, "configRollback", "Refused"), pending_record(1, "ejectTargets")]
    api = FakeApi([incident(spec={"approvals": [{"actionId": "other", "by": "x"}]}, status={"remediations": records})])
    code, out, _ = cli(api, "approve", "inc-20261127-001", "--by", "dave", capsys=capsys)
    assert code == EXIT_OK and "ejectTargets (inc-20261127-001/1/ejectTargets) approved by dave" in out
    assert api.patches == [
        (
            "inc-20261127-001",
            {
                "metadata": {"resourceVersion": "100"},
                "spec": {
                    "approvals": [
                        {"actionId": "other", "by": "x"},
                        {"actionId": "inc-20261127-001/1/ejectTargets", "by": "dave"},
                    ]
                },
            },
        )
    ]
    code, _, err = cli(api, "approve", "inc-20261127-001", "--by", "erin", capsys=capsys)
    assert code == EXIT_REFUSED and "already approved by dave" in err
    code, _, err = cli(
        api, "approve", "inc-20261127-001", "inc-20261127-001/0/configRollback", "--by", "erin", capsys=capsys
    )
    assert code == EXIT_REFUSED and "is Refused, not PendingApproval" in err
    code, _, err = cli(api, "approve", "inc-20261127-001", "nope", "--by", "erin", capsys=capsys)
    assert code == EXIT_NOT_FOUND and "no remediation 'nope'" in err


def test_approve_shows_the_change_it_approves(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi([incident(status={"remediations": [pending_record()]})])
    code, out, _ = cli(api, "approve", "inc-20261127-001", "--by", "dave", capsys=capsys)
    assert code == EXIT_OK
    assert out.endswith('Approved change:\n--- a\n+++ b\n-        target "10.0.1.11:8000" weight=1\n\n')
    api = FakeApi([incident(status={"remediations": [pending_record()]})])
    code, out, _ = cli(api, "approve", "inc-20261127-001", "--by", "dave", "-o", "json", capsys=capsys)
    assert json.loads(out)["diff"].startswith("--- a\n+++ b\n")


def test_reject_appends_a_reject_decision_with_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi([incident(status={"remediations": [pending_record()]})])
    code, out, _ = cli(api, "reject", "inc-20261127-001", "--by", "bob", "--reason", "a deploy is on", capsys=capsys)
    assert code == EXIT_OK and "rejected by bob; it is not carried out, the ladder goes on" in out
    assert "Rejected change:\n--- a" in out
    assert api.patches[-1][1]["spec"]["approvals"] == [
        {"actionId": "inc-20261127-001/0/ejectTargets", "by": "bob", "decision": "Reject", "reason": "a deploy is on"}
    ]
    code, _, err = cli(api, "approve", "inc-20261127-001", "--by", "dave", capsys=capsys)
    assert code == EXIT_REFUSED and "already rejected by bob" in err
    assert len(api.patches) == 1
    code, _, err = cli(api, "reject", "inc-20261127-001", "--by", "bob", "--reason", "x" * 1025, capsys=capsys)
    assert code == EXIT_USAGE and "--reason is longer than 1024" in err


def test_approve_when_nothing_is_pending_and_after_an_annotation(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi([incident(status={"remediations": [pending_record(0, "restart", "Succeeded")]})])
    code, _, err = cli(api, "approve", "inc-20261127-001", "--by", "dave", capsys=capsys)
    assert code == EXIT_REFUSED and "nothing is pending approval" in err
    api = FakeApi(
        [incident(annotations={"zentinel.io/approved-by": "alice"}, status={"remediations": [pending_record()]})]
    )
    code, _, err = cli(api, "approve", "inc-20261127-001", "--by", "dave", capsys=capsys)
    assert code == EXIT_REFUSED and "already approved by alice" in err


def test_approve_retries_on_a_conflict_and_reports_other_api_errors(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi([incident(status={"remediations": [pending_record()]})])
    api.fail_patch = [409, 409]
    code, _, _ = cli(api, "approve", "inc-20261127-001", "--by", "dave", capsys=capsys)
    assert code == EXIT_OK and len(api.patches) == 1
    api = FakeApi([incident(status={"remediations": [pending_record()]})])
    api.fail_patch = [403]
    code, _, err = cli(api, "approve", "inc-20261127-001", "--by", "dave", capsys=capsys)
    assert code == EXIT_ERROR and "error: API 403 Conflict" in err
    api = FakeApi([incident(status={"remediations": [pending_record()]})])
    api.fail_patch = [409] * 5
    code, _, err = cli(api, "approve", "inc-20261127-001", "--by", "dave", capsys=capsys)
    assert code == EXIT_ERROR and "kept changing" in err


def test_postmortem(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi([incident(status={"postmortemDue": iso(-60)})])
    code, out, err = cli(api, "postmortem", "inc-20261127-001", capsys=capsys)
    assert code == EXIT_NOT_FOUND and out == ""
    assert "no post-mortem draft for inc-20261127-001 yet (no ConfigMap inc-20261127-001-postmortem); due" in err
    api.add_configmap("edge-ns", "inc-20261127-001-postmortem", {"postmortem.md": "# Incident Post-Mortem\n"}, {})
    code, out, _ = cli(api, "postmortem", "inc-20261127-001", capsys=capsys)
    assert (code, out) == (EXIT_OK, "# Incident Post-Mortem\n")
    api = FakeApi([incident(status={"postmortem": "custom-pm"})])
    api.add_configmap("edge-ns", "custom-pm", {"postmortem.md": "# PM"}, {})
    code, out, _ = cli(api, "postmortem", "inc-20261127-001", "-o", "json", capsys=capsys)
    assert code == EXIT_OK and json.loads(out) == {
        "namespace": "edge-ns",
        "incident": "inc-20261127-001",
        "configMap": "custom-pm",
        "key": "postmortem.md",
        "markdown": "# PM",
    }
    code, _, err = cli(api, "postmortem", "inc-20261127-001", "--generated", capsys=capsys)
    assert code == EXIT_NOT_FOUND and "ConfigMap custom-pm has no postmortem.generated.md" in err


def test_postmortem_edited_by_a_person(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi([incident(status={"postmortem": "inc-20261127-001-postmortem"})])
    data = {"postmortem.md": "# Ours, edited\n", "postmortem.generated.md": "# Operator's newer draft\n"}
    api.add_configmap("edge-ns", "inc-20261127-001-postmortem", data, {})
    code, out, err = cli(api, "postmortem", "inc-20261127-001", capsys=capsys)
    assert (code, out) == (EXIT_OK, "# Ours, edited\n")
    assert "newer draft is in postmortem.generated.md (--generated)" in err
    code, out, _ = cli(api, "postmortem", "inc-20261127-001", "--generated", capsys=capsys)
    assert (code, out) == (EXIT_OK, "# Operator's newer draft\n")


def test_evidence_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "inc-20261127-001"
    api = FakeApi([incident(status={"evidence": [{"name": f"{name}-ev-detection-01", "phase": "detection"}]})])
    code, _, err = cli(api, "evidence", name, "--out", str(tmp_path), capsys=capsys)
    assert code == EXIT_NOT_FOUND and "no evidence for inc-20261127-001 yet" in err
    files = {"events.txt": "Warning BackOff\n", "logs__edge-a__zentinel.log": "Failed to load configuration file\n"}
    labels = {names.LABEL_INCIDENT: name, names.LABEL_PHASE: "detection"}
    api.add_configmap("edge-ns", f"{name}-ev-detection-01", {**files, "MANIFEST.json": manifest(files)}, labels)
    api.add_configmap("edge-ns", f"{name}-postmortem", {"postmortem.md": "x"}, {names.LABEL_INCIDENT: name})
    code, out, _ = cli(api, "evidence", name, "--out", str(tmp_path), capsys=capsys)
    assert code == EXIT_OK, out
    root = tmp_path / "INC-20261127-001"
    assert (root / "detection" / "logs" / "edge-a" / "zentinel.log").read_text() == files["logs__edge-a__zentinel.log"]
    assert sorted(p.name for p in (root / "detection").iterdir()) == ["MANIFEST.json", "events.txt", "logs"]
    assert "manifest verified: 2 match, 0 differ, 0 missing" in out
    cm = api.configmaps[("edge-ns", f"{name}-ev-detection-01")]
    cm["data"]["events.txt"] = "edited\n"
    code, out, _ = cli(api, "evidence", name, "--out", str(tmp_path), "-o", "json", capsys=capsys)
    doc = json.loads(out)
    assert code == EXIT_UNVERIFIED and doc["verified"] is False
    assert {f["path"]: f["check"] for f in doc["files"]}["detection/events.txt"] == "MISMATCH"


def test_evidence_chunk_listed_in_status_but_gone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "inc-20261127-001"
    refs = [
        {"name": f"{name}-ev-detection-01", "phase": "detection"},
        {"name": f"{name}-ev-resolution-01", "phase": "resolution"},
    ]
    api = FakeApi([incident(status={"evidence": refs})])
    labels = {names.LABEL_INCIDENT: name, names.LABEL_PHASE: "detection"}
    api.add_configmap("edge-ns", f"{name}-ev-detection-01", {"events.txt": "x"}, labels)
    code, out, _ = cli(api, "evidence", name, "--out", str(tmp_path), capsys=capsys)
    assert code == EXIT_UNVERIFIED
    assert "inc-20261127-001-ev-resolution-01 is listed in status.evidence but does not exist" in out


def test_api_errors_map_to_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    class Broken(FakeApi):
        def __init__(self, status: int) -> None:
            super().__init__()
            self.status = status

        def list_incidents(self, namespace: str | None) -> list[dict[str, Any]]:
            e = ApiException(status=self.status, reason="Forbidden")
            e.body = json.dumps({"message": 'zentinelincidents.zentinel.io is forbidden: User "dev" cannot list'})
            raise e

    code, out, err = cli(Broken(403), "incidents", capsys=capsys)
    assert (code, out) == (EXIT_ERROR, "")
    assert err == 'error: API 403 Forbidden: zentinelincidents.zentinel.io is forbidden: User "dev" cannot list\n'
    code, _, _ = cli(Broken(404), "incidents", capsys=capsys)
    assert code == EXIT_NOT_FOUND


def test_triage_of_a_missing_zentinel_and_a_bad_policy_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(FakeApi(), "triage", "edge", capsys=capsys)
    assert code == EXIT_NOT_FOUND and 'Zentinel "edge" not found in namespace "edge-ns"' in err
    bad = tmp_path / "policy.yaml"
    bad.write_text("kind: ZentinelIncidentPolicy\nspec:\n  thresholds:\n    errorRate: {sev1: 0.01, sev2: 0.5}\n")
    code, _, err = cli(FakeApi(), "triage", "--url", "http://127.0.0.1:9", "--policy", str(bad), capsys=capsys)
    assert code == EXIT_USAGE and "spec.thresholds.errorRate" in err
    code, _, err = cli(
        FakeApi(), "triage", "--url", "http://127.0.0.1:9", "--policy", str(tmp_path / "no"), capsys=capsys
    )
    assert code == EXIT_USAGE and "cannot read policy file" in err


def test_policy_file_forms(tmp_path: Path) -> None:
    manifest_file = tmp_path / "p.yaml"
    manifest_file.write_text(
        "apiVersion: v1\nkind: ConfigMap\n---\n"
        "apiVersion: zentinel.io/v1alpha1\nkind: ZentinelIncidentPolicy\nmetadata: {name: strict}\n"
        "spec:\n  thresholds:\n    errorRate: {sev1: 0.2, sev2: 0.05}\n"
    )
    label, spec = triage.load_policy_file(str(manifest_file))
    assert label == f"policy strict ({manifest_file})" and spec.thresholds.error_rate.sev1 == 0.2
    spec_only = tmp_path / "s.yaml"
    spec_only.write_text("thresholds:\n  minRequests: 5\n")
    assert triage.load_policy_file(str(spec_only))[1].thresholds.min_requests == 5


# ------------------------------------------------------------------------------ triage (pure)
def pod(name: str, *, running: bool = True, ready: bool = True, crash: bool = False) -> PodSignal:
    container = ContainerSignal(
        name="zentinel",
        ready=ready and running and not crash,
        running=running and not crash,
        restart_count=5 if crash else 0,
        waiting_reason="CrashLoopBackOff" if crash else None,
        last_exit_code=1 if crash else None,
    )
    return PodSignal(name=name, ip="127.128.0.9", phase="Running", ready=ready and not crash, container=container)


def metrics(requests: float = 1000, errors: float = 0, p99: float = 0.02) -> MetricsSignal:
    return MetricsSignal(
        available=True,
        pods_scraped=3,
        interval_seconds=5,
        requests=requests,
        errors=errors,
        routes=(RouteSignal("api", requests, errors),),
        latency_p99_seconds=p99,
        requests_per_second=requests / 5,
    )


def upstreams(bad: int = 0) -> UpstreamsSignal:
    targets = tuple(
        TargetSignal("api", f"10.0.1.{i}:8000", TargetStatus.UNHEALTHY if i < bad else TargetStatus.HEALTHY)
        for i in range(3)
    )
    return UpstreamsSignal(available=True, targets=targets)


def snap(pods: tuple[PodSignal, ...], m: MetricsSignal | None = None, u: UpstreamsSignal | None = None) -> Snapshot:
    return Snapshot(
        namespace="edge-ns",
        zentinel="edge",
        observed_at=NOW,
        workload=WorkloadSignal(exists=True, desired=3, updated=3, available=sum(p.ready for p in pods)),
        pods=pods,
        metrics=m,
        upstreams=u,
    )


def path_of(s: Snapshot) -> list[tuple[str, str, str | None]]:
    findings = run_triage(s, Thresholds())
    return [(step.question, step.answer, step.procedure) for step in triage.decision_path(s, findings)]


def test_exit_codes_of_triage() -> None:
    def f(sev: Severity) -> Finding:
        return Finding(Category.METRICS_UNAVAILABLE, sev, "x")

    assert triage.exit_code([]) == 0
    assert triage.exit_code([f(Severity.SEV3), f(Severity.SEV1)]) == 11
    assert triage.exit_code([f(Severity.SEV4)]) == 14


def test_decision_path_healthy() -> None:
    s = snap((pod("a"), pod("b"), pod("c")), metrics(), upstreams())
    assert path_of(s) == [
        (triage.Q_PROCESS, "YES", None),
        (triage.Q_HEALTH, "YES", None),
        (triage.Q_UPSTREAMS, "YES", None),
        (triage.Q_ERRORS, "NO", None),
        (triage.Q_LATENCY, "NO", None),
    ]


def test_decision_path_when_nothing_runs() -> None:
    s = snap((pod("a", crash=True), pod("b", crash=True), pod("c", crash=True)))
    assert path_of(s) == [
        (triage.Q_PROCESS, "NO", "Process Crash"),
        (triage.Q_HEALTH, "not judged", None),
        (triage.Q_UPSTREAMS, "not judged", None),
        (triage.Q_ERRORS, "not judged", None),
    ]


def test_decision_path_partial_crash_bad_upstream_and_errors() -> None:
    s = snap((pod("a", crash=True), pod("b"), pod("c")), metrics(errors=300), upstreams(bad=1))
    assert path_of(s) == [
        (triage.Q_PROCESS, "PARTLY", "Process Crash"),
        (triage.Q_HEALTH, "YES", None),
        (triage.Q_UPSTREAMS, "NO", "Upstream Failure"),
        (triage.Q_ERRORS, "YES", "High Error Rate"),
    ]


def test_decision_path_unknowns_and_latency() -> None:
    s = snap((pod("a"), pod("b"), pod("c")), metrics(p99=2.0), None)
    assert path_of(s)[2:] == [
        (triage.Q_UPSTREAMS, "UNKNOWN", None),
        (triage.Q_ERRORS, "NO", None),
        (triage.Q_LATENCY, "YES", "Performance Degradation"),
    ]
    s = snap((pod("a"), pod("b"), pod("c")), MetricsSignal(available=True, pods_scraped=3), upstreams())
    assert path_of(s)[3:] == [(triage.Q_ERRORS, "UNKNOWN", None), (triage.Q_LATENCY, "UNKNOWN", None)]


def test_render_triage_names_the_runbook_procedure() -> None:
    s = snap((pod("a"), pod("b"), pod("c")), metrics(errors=300), upstreams())
    report = triage.TriageReport(
        target="Zentinel edge (namespace edge-ns)",
        mode="cluster",
        policy="policy edge",
        interval_seconds=5,
        snapshot=s,
        findings=tuple(run_triage(s, Thresholds())),
        five_xx_total=1234,
        open_breakers=("component=api,route=api",),
    )
    text = triage.render_triage(report)
    assert text.startswith(
        "Triage of Zentinel edge (namespace edge-ns); thresholds from policy edge; 2 scrapes 5s apart"
    )
    assert "5xx errors: 1,234 (since start" in text
    assert "1,000 requests, 300 errors (30%) over 5s" in text
    assert "1 open: component=api,route=api" in text
    assert "-> Go to: High Error Rate Procedure" in text
    assert "SEV2  HighErrorRate: High error rate: 5xx rate 30%" in text
    assert text.endswith("Result: Degraded, worst SEV2 (exit 12)\n")
    data = json.loads(render.dump(triage.report_data(report), "json"))
    assert data["exitCode"] == 12 and data["findings"][0]["category"] == "HighErrorRate"
    assert data["snapshot"]["pods"][0]["name"] == "a"


PAGE = """\
# TYPE zentinel_requests_total counter
zentinel_requests_total{method="GET",route="api",status="200"} 900
zentinel_requests_total{method="GET",route="api",status="503"} 40
zentinel_requests_total{method="GET",route="web",status="404"} 7
# TYPE zentinel_blocked_requests_total counter
zentinel_blocked_requests_total{reason="proxy_error_502"} 5
zentinel_blocked_requests_total{reason="proxy_error_500"} 99
# TYPE zentinel_circuit_breaker_state gauge
zentinel_circuit_breaker_state{component="upstream",route="api"} 1
zentinel_circuit_breaker_state{component="upstream",route="web"} 0
"""


def test_counter_totals_follow_the_runbook_awk_sum() -> None:
    page = parse_exposition(PAGE)
    total, breakers = triage.counter_totals({"a": page, "b": page})
    assert total == 90  # (40 + 5) per pod; proxy_error_500 is not an answer to a client
    assert breakers == ("component=upstream,route=api",)
    flat = parse_exposition(PAGE.replace("} 1\n", "} 0\n"))
    assert triage.counter_totals({"a": flat}) == (45, None)  # flat zero: unknown
    assert triage.counter_totals({}) == (None, None)


EP = triage.endpoints("http://127.0.0.1:9090/", health_url="http://127.0.0.1:8080")


def test_endpoints() -> None:
    assert (
        triage.Endpoints(
            metrics="http://127.0.0.1:9090/metrics",
            upstreams="http://127.0.0.1:9090/admin/upstreams",
            health="http://127.0.0.1:8080/health",
            ready="http://127.0.0.1:8080/ready",
        )
        == EP
    )
    assert triage.endpoints("http://h:9090/metrics", "http://h:9091").upstreams == "http://h:9091/admin/upstreams"
    with pytest.raises(CliError) as e:
        triage.endpoints("h:9090")
    assert e.value.code == EXIT_USAGE


def checks(health: int | None, ready: int | None, metrics_status: int | None = 200) -> tuple[triage.HttpCheck, ...]:
    return (
        triage.HttpCheck("/metrics", EP.metrics, metrics_status, None if metrics_status else "refused"),
        triage.HttpCheck("/admin/upstreams", EP.upstreams, metrics_status, None if metrics_status else "refused"),
        triage.HttpCheck("/health", EP.health, health, None if health else "refused"),
        triage.HttpCheck("/ready", EP.ready, ready, None if ready else "refused"),
    )


def test_url_snapshot_reads_like_the_runbook() -> None:
    ok = triage.url_snapshot(EP, checks(200, 404), metrics(), upstreams(), NOW)
    assert ok.pods[0].name == "127.0.0.1:9090" and ok.pods[0].ready and ok.pods[0].process_running
    assert run_triage(ok, Thresholds()) == []
    sick = triage.url_snapshot(EP, checks(None, None), metrics(), upstreams(), NOW)
    findings = run_triage(sick, Thresholds())
    assert [(f.category, f.severity) for f in findings] == [(Category.HEALTH_CHECK_FAILURE, Severity.SEV1)]
    down = triage.url_snapshot(
        EP, checks(None, None, None), MetricsSignal(available=False), UpstreamsSignal(available=False), NOW
    )
    findings = run_triage(down, Thresholds())
    assert [(f.category, f.severity) for f in findings] == [(Category.PROCESS_CRASH, Severity.SEV1)]
    assert triage.exit_code(findings) == 11


# ------------------------------------------------------------------------------ silences
def wall(minutes: float) -> str:
    """A time ``minutes`` from the real now (the CLI reads the clock for silences)."""
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=minutes)
    return moment.isoformat().replace("+00:00", "Z")


def stored_silence(name: str, *, starts: float, ends: float, **matchers: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "edge-ns", "creationTimestamp": wall(-60)},
        "spec": {
            "matchers": matchers or {"zentinel": "edge"},
            "startsAt": wall(starts),
            "endsAt": wall(ends),
            "createdBy": "alice",
            "comment": "CHG-1 upgrade",
        },
    }


def test_silence_add_builds_the_silence_from_matchers_a_duration_and_a_comment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USER", raising=False)
    api = FakeApi()
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    code, out, _ = cli(
        api,
        *("silence", "add", "--zentinel", "edge", "--category", "processcrash", "--category", "ConfigError"),
        *("--severity", "3", "-d", "2h", "-c", "CHG-1 upgrade", "--remediation", "--by", "bob"),
        capsys=capsys,
    )
    assert code == EXIT_OK
    ((_, name), obj) = next(iter(api.silences.items()))
    assert name == "silence-x0" and obj["kind"] == "ZentinelSilence"
    spec = obj["spec"]
    assert spec["matchers"] == {
        "zentinel": "edge",
        "categories": ["ProcessCrash", "ConfigError"],
        "severities": ["SEV3"],
    }
    assert (spec["createdBy"], spec["comment"], spec["silenceRemediation"]) == ("bob", "CHG-1 upgrade", True)
    ends = dt.datetime.fromisoformat(spec["endsAt"])
    assert before + dt.timedelta(hours=2) <= ends <= before + dt.timedelta(hours=2, seconds=5)
    assert "startsAt" not in spec  # the API server's creation time
    assert out.startswith("silence silence-x0 holds the pages and remediation of incidents with zentinel=edge ")
    code, out, _ = cli(
        api, "silence", "add", "--category", "ConfigError", "--until", wall(30), "-c", "x", "-o", "name", capsys=capsys
    )
    assert (code, out) == (EXIT_OK, "zentinelsilence.zentinel.io/silence-x1\n")
    assert api.silences[("edge-ns", "silence-x1")]["spec"]["createdBy"] == "kube-admin"  # no --by: the kube user


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["silence", "add", "--zentinel", "edge", "-d", "1h"], "--comment"),
        (["silence", "add", "--zentinel", "edge", "-c", "x"], "--duration"),
        (
            ["silence", "add", "--zentinel", "edge", "-c", "x", "-d", "1h", "--until", "2030-01-01T00:00:00Z"],
            "not allowed",
        ),
        (["silence", "add", "--zentinel", "edge", "-c", "x", "-d", "0s"], "longer than zero"),
        (["silence", "add", "--zentinel", "edge", "-c", "x", "-d", "soon"], "not a duration"),
        (["silence", "add", "--category", "Crash", "-c", "x", "-d", "1h"], "not a category"),
        (["silence", "add", "--zentinel", "edge", "-c", "x", "--until", "tomorrow"], "not a time"),
        (["silence", "expire"], "NAME"),
    ],
)
def test_silence_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(FakeApi(), *argv, capsys=capsys)
    assert (code, out) == (EXIT_USAGE, "")
    assert message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["silence", "add", "-c", "x", "-d", "1h"], "name at least one matcher"),
        (["silence", "add", "--zentinel", "e", "-c", " ", "-d", "1h"], "--comment is required"),
        (["silence", "add", "--zentinel", "e", "-c", "x" * 1025, "-d", "1h"], "longer than 1024"),
        (["silence", "add", "--zentinel", "e", "-c", "x", "--start", wall(60), "--until", wall(30)], "end before"),
    ],
)
def test_silence_add_refuses_before_any_request(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi()
    code, _, err = cli(api, *argv, "--by", "bob", capsys=capsys)
    assert code == EXIT_USAGE and message in err and not api.silences


def test_silence_list_shows_each_state_as_of_now(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi()
    for obj in (
        stored_silence("active", starts=-10, ends=50, categories=["ProcessCrash"]),
        stored_silence("later", starts=10, ends=50),
        stored_silence("over", starts=-50, ends=-10, severities=["SEV3", "SEV4"]),
    ):
        api.silences[("edge-ns", obj["metadata"]["name"])] = obj
    code, out, _ = cli(api, "silence", "list", capsys=capsys)
    lines = out.splitlines()
    assert code == EXIT_OK and lines[0].split() == [
        "NAME",
        "STATE",
        "MATCHERS",
        "HOLDS",
        "ENDS",
        "CREATED-BY",
        "COMMENT",
    ]
    assert lines[1].split()[:4] == ["active", "Active", "category=ProcessCrash", "pages"]
    assert lines[2].split()[:3] == ["later", "Pending", "zentinel=edge"]
    assert lines[3].split()[:3] == ["over", "Expired", "severity=SEV3,SEV4"]
    code, out, _ = cli(api, "silence", "list", "--active", "-o", "json", capsys=capsys)
    (row,) = json.loads(out)
    assert (row["name"], row["state"], row["categories"], row["silenceRemediation"]) == (
        "active",
        "Active",
        ["ProcessCrash"],
        False,
    )
    code, out, _ = cli(api, "silence", "list", "-o", "jsonpath={.items[*].metadata.name}", capsys=capsys)
    assert out.split() == ["active", "later", "over"]


def test_silence_expire_ends_it_now_and_refuses_one_already_over(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi()
    for obj in (stored_silence("active", starts=-10, ends=50), stored_silence("later", starts=10, ends=50)):
        api.silences[("edge-ns", obj["metadata"]["name"])] = obj
    code, out, _ = cli(api, "silence", "expire", "active", capsys=capsys)
    assert code == EXIT_OK and "silence active expired" in out
    ((name, patch),) = api.patches
    assert name == "active" and set(patch["spec"]) == {"endsAt"}
    code, _, err = cli(api, "silence", "expire", "active", capsys=capsys)
    assert code == EXIT_REFUSED and "already ended" in err
    code, _, _ = cli(api, "silence", "expire", "later", capsys=capsys)
    (_, patch) = api.patches[-1]
    assert code == EXIT_OK and patch["spec"]["startsAt"] == patch["spec"]["endsAt"]  # never started: zero length
    code, _, err = cli(api, "silence", "expire", "ghost", capsys=capsys)
    assert code == EXIT_NOT_FOUND and 'silence "ghost" not found' in err
