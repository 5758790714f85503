"""Reading Zentinel's metrics page, rates between two pages, and the signal over several pods."""

from __future__ import annotations

import pytest

from support.emulator import ZentinelEmulator
from zentinel_operator.signals.metrics import (
    PROXY_ROUTE,
    MetricsError,
    PodMetrics,
    aggregate,
    compute_rates,
    histogram_quantile,
    next_baseline,
    parse_exposition,
)

INF = float("inf")

# As zentinel 0.6.45 writes it (Rust prometheus TextEncoder: families sorted by name, label pairs
# sorted by label name), with families the operator does not read mixed in.
REAL_LOOKING_PAGE = """\
# HELP zentinel_active_requests Number of currently active requests
# TYPE zentinel_active_requests gauge
zentinel_active_requests 3
# HELP zentinel_blocked_requests_total Total blocked requests by reason
# TYPE zentinel_blocked_requests_total counter
zentinel_blocked_requests_total{reason="proxy_error_500"} 30
zentinel_blocked_requests_total{reason="proxy_error_502"} 4
zentinel_blocked_requests_total{reason="proxy_error_ConnectRefused"} 9
zentinel_blocked_requests_total{reason="rate_limited"} 11
# HELP zentinel_cpu_usage_percent Current CPU usage percentage
# TYPE zentinel_cpu_usage_percent gauge
zentinel_cpu_usage_percent 0
# HELP zentinel_memory_usage_bytes Current memory usage in bytes
# TYPE zentinel_memory_usage_bytes gauge
zentinel_memory_usage_bytes 123456789
# HELP zentinel_open_connections Number of open connections
# TYPE zentinel_open_connections gauge
zentinel_open_connections 17
# HELP zentinel_request_duration_seconds Request duration in seconds
# TYPE zentinel_request_duration_seconds histogram
zentinel_request_duration_seconds_bucket{method="GET",route="api",le="0.001"} 0
zentinel_request_duration_seconds_bucket{method="GET",route="api",le="0.005"} 1
zentinel_request_duration_seconds_bucket{method="GET",route="api",le="0.01"} 2
zentinel_request_duration_seconds_bucket{method="GET",route="api",le="0.025"} 4
zentinel_request_duration_seconds_bucket{method="GET",route="api",le="0.05"} 6
zentinel_request_duration_seconds_bucket{method="GET",route="api",le="0.1"} 8
zentinel_request_duration_seconds_bucket{method="GET",route="api",le="0.25"} 9
zentinel_request_duration_seconds_bucket{method="GET",route="api",le="0.5"} 10
zentinel_request_duration_seconds_bucket{method="GET",route="api",le="1"} 10
zentinel_request_duration_seconds_bucket{method="GET",route="api",le="2.5"} 10
zentinel_request_duration_seconds_bucket{method="GET",route="api",le="5"} 10
zentinel_request_duration_seconds_bucket{method="GET",route="api",le="10"} 10
zentinel_request_duration_seconds_bucket{method="GET",route="api",le="+Inf"} 10
zentinel_request_duration_seconds_sum{method="GET",route="api"} 0.6170000000000001
zentinel_request_duration_seconds_count{method="GET",route="api"} 10
zentinel_request_duration_seconds_bucket{method="POST",route="api",le="0.001"} 0
zentinel_request_duration_seconds_bucket{method="POST",route="api",le="0.005"} 0
zentinel_request_duration_seconds_bucket{method="POST",route="api",le="0.01"} 0
zentinel_request_duration_seconds_bucket{method="POST",route="api",le="0.025"} 0
zentinel_request_duration_seconds_bucket{method="POST",route="api",le="0.05"} 0
zentinel_request_duration_seconds_bucket{method="POST",route="api",le="0.1"} 1
zentinel_request_duration_seconds_bucket{method="POST",route="api",le="0.25"} 1
zentinel_request_duration_seconds_bucket{method="POST",route="api",le="0.5"} 1
zentinel_request_duration_seconds_bucket{method="POST",route="api",le="1"} 2
zentinel_request_duration_seconds_bucket{method="POST",route="api",le="2.5"} 2
zentinel_request_duration_seconds_bucket{method="POST",route="api",le="5"} 2
zentinel_request_duration_seconds_bucket{method="POST",route="api",le="10"} 2
zentinel_request_duration_seconds_bucket{method="POST",route="api",le="+Inf"} 2
zentinel_request_duration_seconds_sum{method="POST",route="api"} 0.75
zentinel_request_duration_seconds_count{method="POST",route="api"} 2
# HELP zentinel_requests_total Total number of requests
# TYPE zentinel_requests_total counter
zentinel_requests_total{method="GET",route="api",status="200"} 7
zentinel_requests_total{method="GET",route="api",status="503"} 3
zentinel_requests_total{method="GET",route="static",status="404"} 5
zentinel_requests_total{method="POST",route="api",status="200"} 2
# HELP zentinel_upstream_attempts_total Total upstream connection attempts
# TYPE zentinel_upstream_attempts_total counter
zentinel_upstream_attempts_total{route="api",upstream="backend"} 21
# HELP zentinel_up Zentinel proxy is up and running
# TYPE zentinel_up gauge
zentinel_up 1
# HELP zentinel_build_info Build information
# TYPE zentinel_build_info gauge
zentinel_build_info{version="0.6.45"} 1
"""


def pod(
    requests: dict[tuple[str, str], float] | None = None,
    blocked: dict[str, float] | None = None,
    latency: dict[str, dict[float, float]] | None = None,
    **gauges: object,
) -> PodMetrics:
    return PodMetrics(
        requests=requests or {},
        blocked=blocked or {},
        latency={route: tuple(sorted(b.items())) for route, b in (latency or {}).items()},
        **gauges,  # type: ignore[arg-type]
    )


# ----------------------------------------------------------------------------- parsing


def test_parses_a_real_looking_page() -> None:
    m = parse_exposition(REAL_LOOKING_PAGE)
    assert m.requests == {("api", "200"): 9, ("api", "503"): 3, ("static", "404"): 5}
    assert m.blocked == {
        "proxy_error_500": 30,
        "proxy_error_502": 4,
        "proxy_error_ConnectRefused": 9,
        "rate_limited": 11,
    }
    # not the per-attempt ConnectRefused counts, not the 500s every builtin-handler answer adds
    assert m.proxy_errors() == {"502": 4}
    api = dict(m.latency["api"])
    assert api[0.005] == 1 and api[0.1] == 9 and api[1.0] == 12 and api[INF] == 12  # GET + POST
    assert list(dict(m.latency["api"])) == sorted(api)  # sorted, +Inf last
    assert m.open_connections == 17
    assert m.memory_bytes == 123456789
    assert m.circuit_breakers is None
    assert m.version == "0.6.45"
    assert m.up == 1


def test_parses_the_emulator_page() -> None:
    emu = ZentinelEmulator("127.0.0.1", 0)  # rendering only, never started
    emu.add_requests("api", 502, 4, latency_seconds=0.2)
    emu.add_blocked("proxy_error_504", 2)
    emu.set_circuit_breaker("upstream", "api", is_open=True)
    m = parse_exposition(emu.render_metrics())
    assert m.requests == {("api", "502"): 4}
    assert m.proxy_errors() == {"504": 2}
    assert dict(m.latency["api"])[0.25] == 4 and dict(m.latency["api"])[0.1] == 0
    assert m.circuit_breakers == {(("component", "upstream"), ("route", "api")): 1}


@pytest.mark.parametrize(
    "text",
    [
        "<html><body>502 Bad Gateway</body></html>",
        "hello world",
        '{"upstreams": []}',
        'zentinel_requests_total{route="api" 5\n',
        "zentinel_up 1\nzentinel_up not-a-number\n",
        '# TYPE zentinel_request_duration_seconds histogram\nzentinel_request_duration_seconds_bucket{le="x"} 1\n',
    ],
)
def test_garbage_is_a_metrics_error(text: str) -> None:
    with pytest.raises(MetricsError) as info:
        parse_exposition(text)
    assert info.value.reason.startswith("not a Prometheus text page: ")
    assert len(info.value.reason) < 200


@pytest.mark.parametrize("text", ["", "   \n\n"])
def test_empty_page_is_a_metrics_error(text: str) -> None:
    with pytest.raises(MetricsError, match="empty metrics page"):
        parse_exposition(text)


def test_page_without_zentinel_families_is_a_metrics_error() -> None:
    text = "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 0.5\n# only comments\n"
    with pytest.raises(MetricsError, match="no Zentinel metrics"):
        parse_exposition(text)


def test_runbook_names_that_zentinel_does_not_export_are_not_enough() -> None:
    # zentinel_upstream_health and process_resident_memory_bytes are runbook names, not real ones.
    text = "zentinel_upstream_health 1\nprocess_resident_memory_bytes 5e6\n"
    with pytest.raises(MetricsError, match="no Zentinel metrics"):
        parse_exposition(text)


# ----------------------------------------------------------------------------- rates


def test_no_rates_on_the_first_scrape() -> None:
    assert compute_rates(None, parse_exposition(REAL_LOOKING_PAGE), 15.0) is None


def test_rates_are_deltas_per_route_with_proxy_errors_in_a_pseudo_route() -> None:
    prev = pod(
        {("api", "200"): 100, ("api", "500"): 1, ("web", "200"): 50},
        {"proxy_error_502": 2, "rate_limited": 5, "proxy_error_500": 10},
    )
    cur = pod(
        {("api", "200"): 190, ("api", "500"): 6, ("web", "200"): 60, ("web", "404"): 3},
        {"proxy_error_502": 7, "proxy_error_504": 1, "rate_limited": 50, "proxy_error_500": 90},
    )
    rates = compute_rates(prev, cur, 10.0)
    assert rates is not None and not rates.restarted
    assert rates.route_requests == {"api": 95, "web": 13, PROXY_ROUTE: 6}
    assert rates.route_errors == {"api": 5, "web": 0, PROXY_ROUTE: 6}
    assert rates.proxy_errors == {"502": 5, "504": 1}
    assert rates.requests == 114 and rates.errors == 11


def test_builtin_handler_answers_are_not_proxy_errors() -> None:
    # Scraping /admin/upstreams (or a kubelet probing /health) adds proxy_error_500 on 0.6.45.
    emu = ZentinelEmulator("127.0.0.1", 0)
    emu.add_requests("api", 200, 10)
    before = parse_exposition(emu.render_metrics())
    emu.add_requests("api", 200, 10)
    emu.add_blocked("proxy_error_500", 25)
    emu.add_blocked("proxy_error_503", 2)
    rates = compute_rates(before, parse_exposition(emu.render_metrics()), 1.0)
    assert rates is not None
    assert rates.proxy_errors == {"503": 2}
    assert rates.requests == 12 and rates.errors == 2


def test_status_must_be_a_numeric_5xx_code() -> None:
    # Zentinel writes numeric codes; the string "5xx" or a 4xx is not a server error.
    prev = pod({})
    cur = pod({("api", "5xx"): 4, ("api", "404"): 3, ("api", "599"): 1, ("api", "5000"): 2})
    rates = compute_rates(prev, cur, 1.0)
    assert rates is not None
    assert rates.route_errors == {"api": 1}
    assert rates.route_requests == {"api": 10}


def test_counter_reset_takes_the_current_values() -> None:
    prev = pod({("api", "200"): 1000, ("api", "500"): 10}, {"proxy_error_502": 40}, {"api": {0.1: 900, INF: 1010}})
    # Restarted: requests_total went down. The 500s grew past their old value since the restart,
    # so a per-series "max(0, cur-prev)" would say 2 where 12 happened.
    cur = pod({("api", "200"): 30, ("api", "500"): 12}, {"proxy_error_502": 1}, {"api": {0.1: 40, INF: 42}})
    rates = compute_rates(prev, cur, 15.0)
    assert rates is not None and rates.restarted
    assert rates.route_requests == {"api": 42, PROXY_ROUTE: 1}
    assert rates.route_errors == {"api": 12, PROXY_ROUTE: 1}
    assert rates.latency == {"api": {0.1: 40, INF: 42}}


def test_reset_seen_only_in_the_histogram_still_counts_as_a_restart() -> None:
    prev = pod({("api", "200"): 5}, latency={"api": {0.1: 5, INF: 5}})
    cur = pod({("api", "200"): 7}, latency={"api": {0.1: 1, INF: 2}})
    rates = compute_rates(prev, cur, 1.0)
    assert rates is not None and rates.restarted
    assert rates.route_requests == {"api": 7}


def test_series_that_appear_count_in_full_and_vanished_ones_count_nothing() -> None:
    prev = pod({("api", "200"): 5, ("old", "200"): 9})
    cur = pod({("api", "200"): 8, ("api", "503"): 2, ("old", "200"): 9})
    rates = compute_rates(prev, cur, 1.0)
    assert rates is not None and not rates.restarted
    assert rates.route_errors["api"] == 2 and rates.route_requests == {"api": 5, "old": 0}


def test_emulator_restart_is_detected() -> None:
    emu = ZentinelEmulator("127.0.0.1", 0)
    emu.add_requests("api", 200, 50)
    before = parse_exposition(emu.render_metrics())
    emu.reset_counters()
    emu.add_requests("api", 200, 3)
    emu.add_requests("api", 500, 2)
    rates = compute_rates(before, parse_exposition(emu.render_metrics()), 5.0)
    assert rates is not None and rates.restarted
    assert rates.route_requests == {"api": 5} and rates.route_errors == {"api": 2}


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval"):
        compute_rates(pod(), pod(), 0.0)


# ----------------------------------------------------------------------------- quantiles


def test_p99_interpolates_inside_the_bucket_that_holds_the_rank() -> None:
    # 100 observations; rank 99 falls in (0.5, 1]: 96 below it, 4 inside -> 0.5 + 0.5 * 3/4.
    buckets = {0.1: 50, 0.25: 80, 0.5: 96, 1.0: 100, INF: 100}
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.875)
    # median: rank 50 is exactly the top of the first bucket -> 0 + 0.1 * 50/50
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    # rank 90 in (0.25, 0.5]: 80 below, 16 inside -> 0.25 + 0.25 * 10/16
    assert histogram_quantile(0.9, buckets) == pytest.approx(0.40625)


def test_p99_in_the_lowest_bucket_starts_at_zero() -> None:
    assert histogram_quantile(0.99, {0.1: 200, 1.0: 200, INF: 200}) == pytest.approx(0.099)


def test_p99_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.99, {0.1: 10, 10.0: 10, INF: 100}) == 10.0


def test_p99_of_nothing_is_unknown() -> None:
    assert histogram_quantile(0.99, {0.1: 0, INF: 0}) is None
    assert histogram_quantile(0.99, {0.1: 5, 1.0: 5}) is None  # no +Inf bucket
    assert histogram_quantile(0.99, {INF: 5}) is None


def test_p99_repairs_non_monotonic_buckets() -> None:
    # 0.5 dipping below 0.25 is treated as 90 (as Prometheus does)
    assert histogram_quantile(0.99, {0.25: 90, 0.5: 85, 1.0: 100, INF: 100}) == pytest.approx(0.5 + 0.5 * 9 / 10)


# ----------------------------------------------------------------------------- aggregation


def two_pods() -> tuple[list[PodMetrics], list[PodMetrics]]:
    prev_a = pod({("api", "200"): 100}, {"proxy_error_503": 0}, {"api": {0.1: 100, 1.0: 100, INF: 100}})
    cur_a = pod(
        {("api", "200"): 190, ("api", "500"): 5},
        {"proxy_error_503": 5},
        {"api": {0.1: 180, 1.0: 195, INF: 195}},
        open_connections=4.0,
        memory_bytes=1000.0,
        version="0.6.45",
    )
    prev_b = pod({("web", "200"): 10}, {}, {"web": {0.1: 10, 1.0: 10, INF: 10}})
    cur_b = pod(
        {("web", "200"): 110},
        {},
        {"web": {0.1: 100, 1.0: 110, INF: 110}},
        open_connections=6.0,
        memory_bytes=3000.0,
        version="0.6.45",
    )
    return [prev_a, prev_b], [cur_a, cur_b]


def test_aggregate_sums_pods_and_counts_proxy_errors_as_errors() -> None:
    prev, cur = two_pods()
    rates = [compute_rates(prev[0], cur[0], 10.0), compute_rates(prev[1], cur[1], 20.0)]
    assert all(r is not None for r in rates)
    signal = aggregate([r for r in rates if r is not None], cur, ["pod-c: timed out after 2s"], 8.0)
    assert signal.available and signal.error is None
    assert (signal.pods_scraped, signal.pods_failed) == (2, 1)
    # api: 90 OK + 5 server errors; (proxy): 5 x 503; web: 100 OK
    assert signal.requests == 200
    assert signal.errors == 10
    assert signal.error_rate == pytest.approx(0.05)
    assert signal.proxy_errors == {"503": 5}
    by_route = {r.route: r for r in signal.routes}
    assert set(by_route) == {"api", "web", PROXY_ROUTE}
    assert (by_route["api"].requests, by_route["api"].errors) == (95, 5)
    assert by_route[PROXY_ROUTE].error_rate == 1.0
    assert by_route["web"].error_rate == 0.0
    assert signal.routes[-1].route == "web"  # worst first
    # pod a: 100 requests in 10 s, pod b: 100 in 20 s
    assert signal.requests_per_second == pytest.approx(15.0)
    assert signal.interval_seconds == pytest.approx(15.0)
    assert signal.baseline_requests_per_second == 8.0
    # latency deltas summed: le 0.1 -> 80 + 90 = 170, le 1 -> 95 + 100 = 195, +Inf 195.
    # rank 0.99 * 195 = 193.05 lies in (0.1, 1]: 0.1 + 0.9 * (193.05 - 170) / 25
    assert signal.latency_p99_seconds == pytest.approx(0.1 + 0.9 * (193.05 - 170) / 25)
    assert signal.open_connections == 10
    assert signal.memory_bytes == 3000
    assert signal.version == "0.6.45"


def test_first_pass_has_gauges_but_no_rates() -> None:
    _, cur = two_pods()
    signal = aggregate([], cur, [], None)
    assert signal.available
    assert signal.interval_seconds is None and signal.requests is None and signal.errors is None
    assert signal.error_rate is None and signal.latency_p99_seconds is None and signal.routes == ()
    assert signal.open_connections == 10 and signal.memory_bytes == 3000


def test_no_pod_scraped_is_unavailable_with_a_reason() -> None:
    signal = aggregate([], [], ["web-0: cannot connect to 10.0.0.5:9090: Connection refused", "web-1: HTTP 500"], 3.0)
    assert not signal.available
    assert signal.error is not None
    assert "Connection refused" in signal.error and "HTTP 500" in signal.error
    assert signal.pods_failed == 2 and signal.requests is None
    assert aggregate([], [], [], None).error == "no pod could be scraped: no pods to scrape"


def test_circuit_breakers_absent_or_flat_zero_are_unknown() -> None:
    closed = {(("component", "upstream"), ("route", "api")): 0.0}
    opened = {(("component", "upstream"), ("route", "api")): 1.0, (("component", "agent"), ("route", "api")): 0.0}
    assert aggregate([], [pod()], [], None).circuit_breakers_open is None
    assert aggregate([], [pod(circuit_breakers=closed), pod()], [], None).circuit_breakers_open is None
    mixed = aggregate([], [pod(circuit_breakers=closed), pod(circuit_breakers=opened)], [], None)
    assert mixed.circuit_breakers_open == 1
    # the same breaker open on two pods is one open breaker
    twice = aggregate([], [pod(circuit_breakers=opened), pod(circuit_breakers=opened)], [], None)
    assert twice.circuit_breakers_open == 1


def test_gauges_zentinel_never_updates_read_as_unknown_not_zero() -> None:
    prev = pod({("api", "200"): 1})
    cur = pod({("api", "200"): 11}, open_connections=0.0, memory_bytes=0.0)
    rates = compute_rates(prev, cur, 1.0)
    assert rates is not None
    signal = aggregate([rates], [cur], [], None)
    assert signal.memory_bytes is None  # 0.6.45 registers zentinel_memory_usage_bytes but never sets it
    assert signal.open_connections is None  # 0 open connections while 10 requests were served
    idle = compute_rates(cur, cur, 1.0)
    assert idle is not None
    assert aggregate([idle], [cur], [], None).open_connections == 0  # no traffic: 0 is believable


def test_version_mid_rollout_is_the_most_common() -> None:
    pods = [pod(version="0.6.44"), pod(version="0.6.45"), pod(version="0.6.45")]
    assert aggregate([], pods, [], None).version == "0.6.45"
    assert aggregate([], pods[:2], [], None).version == "0.6.45"  # tie: the newer
    assert aggregate([], [pod(version="0.6.9"), pod(version="0.6.10")], [], None).version == "0.6.10"


def test_next_baseline_is_an_exponentially_weighted_average() -> None:
    assert next_baseline(None, 50.0) == 50.0
    assert next_baseline(100.0, 200.0) == pytest.approx(110.0)
    assert next_baseline(100.0, 200.0, alpha=0.5) == pytest.approx(150.0)
    assert next_baseline(100.0, None) == 100.0
    assert next_baseline(None, None) is None
    with pytest.raises(ValueError):
        next_baseline(1.0, 2.0, alpha=0.0)
