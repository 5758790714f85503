"""Reading ``/admin/upstreams`` and merging the views of several pods."""

from __future__ import annotations

import json

import pytest

from support.emulator import ZentinelEmulator
from zentinel_operator.core.snapshot import TargetSignal, TargetStatus, UpstreamsSignal
from zentinel_operator.signals.upstreams import UpstreamsError, merge_upstreams, parse_upstreams

H, U, K = TargetStatus.HEALTHY, TargetStatus.UNHEALTHY, TargetStatus.UNKNOWN

# The shape of zentinel-proxy 0.6.45 builtin_handlers.rs upstreams_handler (serde_json pretty, BTreeMap keys).
REAL_BODY = """{
  "request_id": "2fJx8Qm1",
  "summary": {
    "healthy": 1,
    "total_targets": 3,
    "total_upstreams": 2,
    "unhealthy": 1,
    "unknown": 1
  },
  "timestamp": "2026-11-27T03:12:45.123456789+00:00",
  "upstreams": [
    {
      "id": "api",
      "load_balancing": "RoundRobin",
      "targets": [
        {"address": "10.0.0.1:8080", "failure_rate": 0.0, "last_error": null, "status": "healthy", "weight": 1},
        {"address": "10.0.0.2:8080", "failure_rate": 0.8, "last_error": "connection refused",
         "status": "unhealthy", "weight": 2}
      ]
    },
    {
      "id": "static",
      "load_balancing": "LeastConnections",
      "targets": [
        {"address": "10.0.1.1:80", "failure_rate": null, "last_error": null, "status": "unknown", "weight": 1}
      ]
    }
  ]
}"""


def t(address: str, status: TargetStatus, rate: float | None = None, error: str | None = None) -> TargetSignal:
    return TargetSignal(upstream="api", address=address, status=status, failure_rate=rate, last_error=error)


def test_parses_the_real_shape() -> None:
    targets = parse_upstreams(REAL_BODY)
    assert targets == [
        TargetSignal("api", "10.0.0.1:8080", H, 0.0, None),
        TargetSignal("api", "10.0.0.2:8080", U, 0.8, "connection refused"),
        TargetSignal("static", "10.0.1.1:80", K, None, None),
    ]
    assert parse_upstreams(REAL_BODY.encode()) == targets


def test_no_upstreams_configured_is_an_empty_list() -> None:
    body = {
        "timestamp": "2026-11-27T03:12:45+00:00",
        "request_id": "x",
        "summary": {"total_upstreams": 0, "total_targets": 0, "healthy": 0, "unhealthy": 0, "unknown": 0},
        "upstreams": [],
        "message": "No upstreams configured",
    }
    assert parse_upstreams(json.dumps(body)) == []


def test_parses_the_emulator_answer() -> None:
    emu = ZentinelEmulator("127.0.0.1", 0)
    emu.set_target("api", "10.0.0.9:80", "unhealthy", 0.75, "read timed out")
    emu.set_target("api", "10.0.0.10:80", "healthy", 0.0)
    body = json.dumps(emu.upstreams_document())
    assert {(x.address, x.status, x.failure_rate) for x in parse_upstreams(body)} == {
        ("10.0.0.9:80", U, 0.75),
        ("10.0.0.10:80", H, 0.0),
    }


def test_status_this_version_does_not_know_is_unknown() -> None:
    doc = json.loads(REAL_BODY)
    doc["upstreams"][0]["targets"][0]["status"] = "draining"
    assert parse_upstreams(json.dumps(doc))[0].status is K


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<html>502</html>", "not JSON"),
        (b"\xff\xfe{", "not JSON"),
        ("[]", "body: expected an object, got an array"),
        ('{"status": "healthy"}', "no 'upstreams' key"),
        ('{"upstreams": {}}', "upstreams: expected an array, got an object"),
        ('{"upstreams": [{"targets": []}]}', "upstreams[0].id: expected a string, got null"),
        ('{"upstreams": [{"id": "a", "targets": null}]}', "upstreams[0].targets: expected an array"),
        ('{"upstreams": [{"id": "a", "targets": [{"address": "x", "status": 1}]}]}', "targets[0].status"),
        (
            '{"upstreams": [{"id": "a", "targets": [{"address": "x", "status": "healthy", "failure_rate": "high"}]}]}',
            "failure_rate: expected a number, got a string",
        ),
        (
            '{"upstreams": [{"id": "a", "targets": [{"address": "x", "status": "healthy", "failure_rate": true}]}]}',
            "failure_rate: expected a number, got a boolean",
        ),
        (
            '{"upstreams": [{"id": "a", "targets": [{"address": "x", "status": "healthy", "last_error": 5}]}]}',
            "last_error: expected a string",
        ),
    ],
)
def test_bad_bodies_are_upstreams_errors(body: str | bytes, reason: str) -> None:
    with pytest.raises(UpstreamsError) as info:
        parse_upstreams(body)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("views", "expected"),
    [
        ([[U], [H]], U),  # half of two pods is enough for unhealthy
        ([[U], [H], [H]], H),  # one of three is not; two of three healthy is a majority
        ([[U], [H], [K]], K),  # no majority either way
        ([[U], [U], [H], [H]], U),
        ([[H], [H], [K], [K]], K),  # half healthy is not a majority
        ([[H], [H], [H], [K]], H),
        ([[K], [K]], K),
        ([[U]], U),
    ],
)
def test_merge_votes(views: list[list[TargetStatus]], expected: TargetStatus) -> None:
    per_pod = [[t("10.0.0.1:80", status) for status in view] for view in views]
    merged = merge_upstreams(per_pod, [])
    assert merged.available
    assert [x.status for x in merged.targets] == [expected]


def test_merge_counts_only_pods_that_report_the_target() -> None:
    per_pod = [
        [t("10.0.0.1:80", H), t("10.0.0.2:80", U)],
        [t("10.0.0.1:80", H)],  # an older config without 10.0.0.2
        [t("10.0.0.1:80", U)],
    ]
    merged = {x.address: x.status for x in merge_upstreams(per_pod, []).targets}
    assert merged == {"10.0.0.1:80": H, "10.0.0.2:80": U}


def test_merge_keeps_the_worst_failure_rate_and_its_error() -> None:
    per_pod = [
        [t("10.0.0.1:80", H, 0.1, "reset by peer")],
        [t("10.0.0.1:80", U, 0.9, "connection refused")],
        [t("10.0.0.1:80", H, None, None)],
    ]
    (merged,) = merge_upstreams(per_pod, []).targets
    assert merged.failure_rate == 0.9
    assert merged.last_error == "connection refused"
    assert merged.status is H  # 2 of 3 say healthy


def test_merge_keeps_an_error_without_a_rate() -> None:
    (merged,) = merge_upstreams([[t("a:1", U, None, "timeout")], [t("a:1", U)]], []).targets
    assert merged.last_error == "timeout" and merged.failure_rate is None


def test_a_pod_listing_a_target_twice_votes_once_with_its_worst_view() -> None:
    per_pod = [[t("a:1", H), t("a:1", U)], [t("a:1", H)], [t("a:1", H)]]
    (merged,) = merge_upstreams(per_pod, []).targets
    assert merged.status is H  # 1 unhealthy vote of 3 pods, 2 healthy


def test_same_address_in_two_upstreams_stays_apart_and_sorted() -> None:
    a = TargetSignal("web", "10.0.0.1:80", U)
    b = TargetSignal("api", "10.0.0.1:80", H)
    merged = merge_upstreams([[a, b]], [])
    assert [(x.upstream, x.status) for x in merged.targets] == [("api", H), ("web", U)]
    assert merged.upstream_ids() == ["api", "web"]


def test_no_pod_answered_is_unavailable() -> None:
    merged = merge_upstreams([], ["web-0: timed out after 2s", "web-1: not JSON: Expecting value"])
    assert not merged.available and merged.targets == ()
    assert merged.error is not None and "timed out" in merged.error and "not JSON" in merged.error


def test_some_pods_failing_still_gives_the_view_of_the_others() -> None:
    merged = merge_upstreams([[t("a:1", U)]], ["web-1: HTTP 500"])
    assert merged.available and merged.targets[0].status is U


# ----------------------------------------------------------------------------- operator probes


def _unknown(*addresses: str) -> UpstreamsSignal:
    return UpstreamsSignal(
        available=True, targets=tuple(TargetSignal("api", a, TargetStatus.UNKNOWN) for a in addresses)
    )


def test_targets_no_pod_can_judge_are_probed_on_the_health_check_path() -> None:
    from zentinel_operator.core.zconfig import HealthCheck
    from zentinel_operator.signals.upstreams import apply_probes, probe_plan

    checks = {"api": HealthCheck("/healthz", 200)}
    signal = _unknown("127.0.0.2:8000", "127.0.0.3:8000", "127.0.0.4:8000")
    plan = probe_plan(signal, checks)
    assert plan == {("api", a): f"http://{a}/healthz" for a in ("127.0.0.2:8000", "127.0.0.3:8000", "127.0.0.4:8000")}
    judged = apply_probes(
        signal,
        checks,
        {
            ("api", "127.0.0.2:8000"): (500, None),
            ("api", "127.0.0.3:8000"): (200, None),
            ("api", "127.0.0.4:8000"): (None, "connection refused"),
        },
    )
    by = {t.address: t for t in judged.targets}
    assert by["127.0.0.3:8000"].status is TargetStatus.HEALTHY
    assert by["127.0.0.2:8000"].status is TargetStatus.UNHEALTHY
    assert by["127.0.0.2:8000"].last_error == "operator probe: GET /healthz answered 500"
    assert by["127.0.0.4:8000"].last_error == "operator probe: GET /healthz failed: connection refused"


def test_no_probe_without_a_health_check_or_for_targets_a_pod_judged() -> None:
    from zentinel_operator.core.zconfig import HealthCheck
    from zentinel_operator.signals.upstreams import probe_plan

    assert probe_plan(_unknown("127.0.0.2:8000"), {}) == {}
    judged = UpstreamsSignal(available=True, targets=(TargetSignal("api", "127.0.0.2:8000", TargetStatus.HEALTHY),))
    assert probe_plan(judged, {"api": HealthCheck("/healthz")}) == {}
    assert probe_plan(UpstreamsSignal(available=False, error="x"), {"api": HealthCheck("/healthz")}) == {}
