"""Merge patches, label selectors, policy checks, durations, log matching, pod conversion."""

from __future__ import annotations

import datetime as dt

import pytest

from zentinel_operator.core.durations import DurationError, format_duration, parse_duration
from zentinel_operator.core.patches import merge_patch
from zentinel_operator.core.policy_checks import check_policy, check_zentinel
from zentinel_operator.core.quantity import format_memory, parse_quantity
from zentinel_operator.core.selection import choose_policy, selector_matches
from zentinel_operator.core.snapshot import LogCause
from zentinel_operator.models.common import LabelSelector
from zentinel_operator.signals.logs import match_lines, newest_per_cause
from zentinel_operator.signals.pods import pod_signal, workload_signal


def test_merge_patch_sets_changes_and_nulls_removed_keys() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1], "gone": True}
    new = {"a": 1, "b": {"c": 5, "d": 3}, "e": [1, 2], "f": "x"}
    assert merge_patch(old, new) == {"gone": None, "b": {"c": 5}, "e": [1, 2], "f": "x"}
    assert merge_patch(new, new) == {}


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800), ("250ms", 0.25), ("1.5h", 5400)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "5", "five minutes", "1h30", "m5", "-5m"])
def test_bad_durations_name_the_problem(bad: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(bad)


def test_format_duration() -> None:
    assert format_duration(dt.timedelta(seconds=252)) == "4m12s"
    assert format_duration(dt.timedelta(hours=2, minutes=5)) == "2h5m"
    assert format_duration(dt.timedelta(days=3, hours=4)) == "3d4h"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512Mi", 536870912),
        ("1G", 10**9),
        ("1.5Gi", 1610612736),
        # Suffixes the old table did not know: the official client's parser reads every one.
        ("2Pi", 2 * 2**50),
        ("1Ei", 2**60),
        ("1E", 10**18),
        ("1e3", 1000),
        ("500m", 1),  # fractions of a byte round up, like the API server's Quantity.Value()
        ("garbage", None),
        ("1ki", None),
        ("", None),
        (None, None),
    ],
)
def test_quantities(text: str | None, expected: int | None) -> None:
    assert parse_quantity(text) == expected


def test_format_memory() -> None:
    assert format_memory(805306368) == "768Mi"


def test_core_imports_only_the_pure_quantity_module_of_kubernetes() -> None:
    """The import-layer contract ignores exactly core.quantity -> kubernetes; this pins what that import is."""
    import ast
    from pathlib import Path

    import zentinel_operator.core as core

    found = []
    for path in sorted(Path(core.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            found += [(path.name, n) for n in names if n.split(".")[0] == "kubernetes"]
    assert list(found) == [("quantity.py", "kubernetes.utils.quantity")]


def test_selectors() -> None:
    sel = LabelSelector.model_validate(
        {
            "matchLabels": {"tier": "edge"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector_matches(sel, {"tier": "edge", "env": "prod"})
    assert not selector_matches(sel, {"tier": "edge", "env": "dev"})
    assert not selector_matches(sel, {"tier": "edge", "env": "prod", "canary": "1"})
    assert selector_matches(LabelSelector(), {})


def test_choose_policy_by_priority_then_name() -> None:
    def pol(name: str, prio: int, tier: str = "edge") -> dict[str, object]:
        return {"metadata": {"name": name}, "spec": {"priority": prio, "selector": {"matchLabels": {"tier": tier}}}}

    chosen = choose_policy({"tier": "edge"}, [pol("b", 0), pol("a", 0), pol("z", 5), pol("x", 9, "other")])
    assert chosen is not None and chosen["metadata"]["name"] == "z"  # type: ignore[index]
    tie = choose_policy({"tier": "edge"}, [pol("b", 0), pol("a", 0)])
    assert tie is not None and tie["metadata"]["name"] == "a"  # type: ignore[index]
    assert choose_policy({"tier": "internal"}, [pol("a", 0)]) is None


def test_policy_checks_accept_the_runbook_defaults_and_name_every_problem() -> None:
    assert check_policy({}) == []
    problems = check_policy(
        {
            "thresholds": {"latencyP99Seconds": {"sev2": 1, "sev3": 2}, "memoryShareOfLimit": {"sev2": 1.5}},
            "responseTargets": {"sev1": "0s"},
            "receivers": [{"name": "a", "type": "Alertmanager"}, {"name": "a", "type": "Webhook"}],
            "escalation": {"sev1": {"primary": ["a"], "management": ["a"], "managementAfter": None}},
            "remediation": {"budget": {"perZentinel": 5, "perCluster": 2}},
            "selector": {"matchLabels": {"bad key!": "x"}},
        }
    )
    joined = "\n".join(problems)
    for expected in [
        "spec.thresholds.latencyP99Seconds: sev2 (1.0) must be greater than sev3 (2.0)",
        "spec.thresholds.memoryShareOfLimit.sev2: 1.5 is above the maximum 1.0",
        "spec.responseTargets.sev1: must be longer than zero",
        "spec.receivers: the name 'a' is used more than once",
        "spec.receivers[0].url: an Alertmanager receiver needs",
        "spec.receivers[1]: a Webhook receiver needs url or secretRef",
        "spec.remediation.budget.perCluster: 2 is below perZentinel (5)",
        "spec.selector.matchLabels: 'bad key!' is not a valid label key",
    ]:
        assert expected in joined, expected


def test_zentinel_checks_issuer_references() -> None:
    spec = {
        "workload": {"name": "e"},
        "config": {"configMapName": "c"},
        "tls": [{"name": "t", "secretName": "s", "issuer": {"type": "CASecret"}}],
    }
    problems = check_zentinel(spec)
    assert problems and "caSecretName is required" in problems[0]


def test_log_lines_match_real_zentinel_messages() -> None:
    text = "\n".join(
        [
            "INFO listening on 0.0.0.0:8080",
            "Error: Failed to load configuration file",
            'ERROR Configuration validation failed - new configuration REJECTED error="unknown block"',
            "Error: Address already in use (os error 98)",
            "ERROR Failed to load certificate: No such file",
            "memory allocation of 1048576 bytes failed",
        ]
    )
    causes = [m.cause for m in match_lines("p", "c", text, previous=True)]
    assert causes == [
        LogCause.CONFIG_ERROR,
        LogCause.CONFIG_REJECTED,
        LogCause.ADDRESS_IN_USE,
        LogCause.CERTIFICATE_ERROR,
        LogCause.OUT_OF_MEMORY,
    ]
    many = match_lines("p", "c", "\n".join(["Failed to load configuration file"] * 50), previous=False)
    assert len(newest_per_cause(many)) == 3


def test_pod_and_workload_conversion() -> None:
    pod = {
        "metadata": {"name": "p", "annotations": {"zentinel.io/config-revision": "abc"}},
        "status": {
            "phase": "Running",
            "podIP": "127.128.0.4",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {
                    "name": "zentinel",
                    "ready": False,
                    "restartCount": 7,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
                }
            ],
        },
    }
    s = pod_signal(pod, "zentinel", previous_restarts=5)
    assert s.restart_growth == 2 and s.container is not None and s.container.crash_looping and s.container.oom_killed
    assert not s.process_running and s.config_revision == "abc"
    dep = {
        "metadata": {"generation": 4},
        "spec": {
            "replicas": 4,
            "strategy": {"rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "50%"}},
            "template": {"spec": {"containers": [{"name": "zentinel", "resources": {"limits": {"memory": "1Gi"}}}]}},
        },
        "status": {"observedGeneration": 3, "updatedReplicas": 4, "availableReplicas": 4, "replicas": 4},
    }
    w = workload_signal(dep, "zentinel")
    assert (w.desired, w.max_unavailable, w.max_surge, w.memory_limit_bytes) == (4, 1, 2, 2**30)
    assert w.rolling_out  # observedGeneration behind generation
    assert not w.rollout_complete
    caught_up = {**dep, "status": {**dep["status"], "observedGeneration": 4}}
    assert workload_signal(caught_up, "zentinel").rollout_complete
    old_pod_left = {**dep, "status": {**caught_up["status"], "replicas": 5}}
    assert not workload_signal(old_pod_left, "zentinel").rollout_complete
    assert not workload_signal(None, None).exists
    assert not workload_signal(None, None).rollout_complete


def test_a_troubled_pod_is_not_ready_restarting_or_crash_looping() -> None:
    def pod(ready: bool, waiting: str | None = None) -> dict[str, object]:
        state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
        return {
            "metadata": {"name": "p"},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                "containerStatuses": [{"name": "zentinel", "ready": ready, "restartCount": 3, "state": state}],
            },
        }

    assert not pod_signal(pod(True), "zentinel", previous_restarts=3).troubled  # old restarts are history
    assert pod_signal(pod(True), "zentinel", previous_restarts=2).troubled  # restarted since the last pass
    assert pod_signal(pod(False), "zentinel", previous_restarts=3).troubled
    assert pod_signal(pod(True, "CrashLoopBackOff"), "zentinel", previous_restarts=3).troubled


def test_a_successful_reload_voids_the_reload_failures_before_it() -> None:
    """Real 0.6.45 lines: a rejected reload, then the rollback's reload succeeding."""
    from zentinel_operator.core.snapshot import LogCause
    from zentinel_operator.signals.logs import match_lines

    rejected = (
        "2026-12-02T07:11:44.401323Z ERROR zentinel_proxy::reload: Configuration validation failed - new "
        "configuration REJECTED error=Configuration error: Configuration validation failed: __all__: Listener"
    )
    reloaded = (
        "2026-12-02T07:11:48.397856Z  INFO zentinel_proxy::reload: Configuration reload completed successfully "
        "duration_ms=10 successful_reloads=1"
    )
    assert [m.cause for m in match_lines("p", "zentinel", rejected, previous=False)] == [LogCause.CONFIG_REJECTED]
    assert match_lines("p", "zentinel", rejected + "\n" + reloaded, previous=False) == []
    again = match_lines("p", "zentinel", "\n".join([rejected, reloaded, rejected]), previous=False)
    assert [m.cause for m in again] == [LogCause.CONFIG_REJECTED]
