"""The Prometheus metrics source: the pure mapping (answers -> MetricsSignal, compared with the scrape
path's result for the same traffic) and the batching, against a small local HTTP server that counts
the queries it is asked."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import math
import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from aiohttp import web

from support.emulator import free_port
from zentinel_operator.signals import metrics as m
from zentinel_operator.signals import prometheus as p
from zentinel_operator.signals.scrape import FetchResult

NOW = dt.datetime(2026, 11, 27, 3, 0, 7, tzinfo=dt.UTC)
LE = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, math.inf)


def vector(samples: list[tuple[dict[str, str], float | str]]) -> str:
    result = [{"metric": labels, "value": [NOW.timestamp(), str(value)]} for labels, value in samples]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})


def sample(ns: str, pod: str, value: float, **labels: str) -> p.Sample:
    return p.Sample(labels={"namespace": ns, "pod": pod, **labels}, value=value)


# ---------------------------------------------------------------------------------- queries


def test_queries_aggregate_by_the_configured_labels_and_leave_out_proxy_error_500() -> None:
    q = p.build_queries(60, pod_label="kubernetes_pod_name", namespace_label="kubernetes_namespace")
    assert set(q) == {
        p.REQUESTS,
        p.ERRORS,
        p.PROXY_ERRORS,
        p.LATENCY,
        p.ZENTINEL_UP,
        p.VERSION,
        p.MEMORY,
        p.CONNECTIONS,
        p.BREAKERS,
        p.TARGET_UP,
    }
    assert q[p.REQUESTS] == (
        "sum by (kubernetes_namespace, kubernetes_pod_name, route) (increase(zentinel_requests_total[60s]))"
    )
    assert q[p.ERRORS] == (
        "sum by (kubernetes_namespace, kubernetes_pod_name, route) "
        '(increase(zentinel_requests_total{status=~"5.."}[60s]))'
    )
    assert 'reason=~"proxy_error_50[234]"' in q[p.PROXY_ERRORS]
    assert "[60s]" in q[p.LATENCY] and "zentinel_request_duration_seconds_bucket" in q[p.LATENCY]
    assert p.promql_duration(2.5) == "2500ms"
    with pytest.raises(ValueError, match="label name"):
        p.build_queries(60, pod_label="pod-name")
    with pytest.raises(ValueError, match="positive"):
        p.build_queries(0)


# ---------------------------------------------------------------------------------- parsing


def test_parse_query_response_reads_vectors_and_drops_nan() -> None:
    body = vector([({"namespace": "a", "pod": "x"}, 3.5), ({"namespace": "a", "pod": "y"}, "NaN")])
    assert p.parse_query_response(body) == [p.Sample(labels={"namespace": "a", "pod": "x"}, value=3.5)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<html>502 Bad Gateway</html>", "not JSON"),
        ('{"data": {}}', "no status"),
        ('{"status": "error", "errorType": "bad_data", "error": "parse error at char 4"}', "query refused (bad_data)"),
        ('{"status": "success", "data": {"resultType": "matrix", "result": []}}', "instant vector"),
        ('{"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}}', "malformed sample"),
        (
            json.dumps(
                {
                    "status": "success",
                    "data": {"resultType": "vector", "result": [{"metric": ["a"], "value": [0, "1"]}]},
                }
            ),
            "malformed sample",
        ),
    ],
)
def test_parse_query_response_explains_what_is_wrong(body: str, expected: str) -> None:
    with pytest.raises(p.PrometheusError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        p.parse_query_response(body)


# ---------------------------------------------------------------------------------- mapping


def pods_traffic() -> dict[str, dict[str, Any]]:
    """Two pods' traffic in one interval: increases, as Prometheus' increase() answers them."""
    return {
        "edge-a": {
            "requests": {("api", "200"): 900.0, ("api", "503"): 60.0, ("static", "200"): 300.0, ("static", "404"): 5},
            "blocked": {"proxy_error_502": 20.0, "proxy_error_500": 40.0},
            "buckets": {
                0.005: 100.0,
                0.01: 500.0,
                0.025: 900.0,
                0.05: 1200.0,
                0.1: 1250.0,
                0.25: 1265.0,
                math.inf: 1265,
            },
            "memory": 50e6,
            "connections": 7.0,
            "version": "0.6.45",
        },
        "edge-b": {
            "requests": {("api", "200"): 1000.0, ("api", "500"): 40.0},
            "blocked": {},
            "buckets": {
                0.005: 10.0,
                0.01: 400.0,
                0.025: 800.0,
                0.05: 1000.0,
                0.1: 1040.0,
                0.25: 1040.0,
                math.inf: 1040,
            },
            "memory": 80e6,
            "connections": 3.0,
            "version": "0.6.45",
        },
    }


def answers_for(ns: str, traffic: dict[str, dict[str, Any]]) -> dict[str, list[p.Sample]]:
    """What Prometheus answers the batch's queries for this traffic (sum by route, 5xx by route, ...)."""
    out: dict[str, list[p.Sample]] = {name: [] for name in p.build_queries(60)}
    for pod, t in traffic.items():
        requests: dict[str, float] = {}
        errors: dict[str, float] = {}
        for (route, status), value in t["requests"].items():
            requests[route] = requests.get(route, 0.0) + value
            if re.fullmatch("5..", status):
                errors[route] = errors.get(route, 0.0) + value
        out[p.REQUESTS] += [sample(ns, pod, value, route=route) for route, value in requests.items()]
        out[p.ERRORS] += [sample(ns, pod, value, route=route) for route, value in errors.items()]
        for reason, value in t["blocked"].items():
            out[p.PROXY_ERRORS].append(sample(ns, pod, value, reason=reason))
        for le, value in t["buckets"].items():
            out[p.LATENCY].append(sample(ns, pod, value, le="+Inf" if math.isinf(le) else repr(le)))
        out[p.ZENTINEL_UP].append(sample(ns, pod, 1.0))
        out[p.VERSION].append(sample(ns, pod, 1.0, version=t["version"]))
        out[p.MEMORY].append(sample(ns, pod, t["memory"]))
        out[p.CONNECTIONS].append(sample(ns, pod, t["connections"]))
        out[p.TARGET_UP].append(sample(ns, pod, 1.0))
    return out


def scrape_path_signal(traffic: dict[str, dict[str, Any]], interval: float) -> Any:
    """What the scrape path computes when the same traffic happens between two scrapes."""
    rates, current = [], []
    for t in traffic.values():
        prev = m.PodMetrics(requests={}, blocked={}, latency={}, version=t["version"])
        cur = m.PodMetrics(
            requests=dict(t["requests"]),
            blocked=dict(t["blocked"]),
            latency={"api": tuple(sorted(t["buckets"].items()))},
            memory_bytes=t["memory"],
            open_connections=t["connections"],
            version=t["version"],
        )
        r = m.compute_rates(prev, cur, interval)
        assert r is not None
        rates.append(r)
        current.append(cur)
    return m.aggregate(rates, current, [], 12.0)


def test_prometheus_answers_make_the_same_signal_as_the_scrape_path() -> None:
    traffic = pods_traffic()
    index = p.index_results(answers_for("shop", traffic))
    got = p.metrics_signal(index, "shop", ["edge-a", "edge-b"], 60.0, baseline_rps=12.0)
    want = scrape_path_signal(traffic, 60.0)
    assert got == want
    # and the figures, spelled out: 5xx statuses plus Zentinel's own 502s, never proxy_error_500
    assert got.available and got.pods_scraped == 2 and got.pods_failed == 0
    assert got.requests == 900 + 60 + 300 + 5 + 20 + 1000 + 40
    assert got.errors == 60 + 20 + 40
    assert got.proxy_errors == {"502": 20.0}
    assert [(r.route, r.requests, r.errors) for r in got.routes] == [
        ("api", 2000.0, 100.0),
        (m.PROXY_ROUTE, 20.0, 20.0),
        ("static", 305.0, 0.0),
    ]
    assert got.interval_seconds == 60.0
    assert got.requests_per_second == pytest.approx(got.requests / 60.0)
    assert got.memory_bytes == 80e6 and got.open_connections == 10.0 and got.version == "0.6.45"
    assert got.latency_p99_seconds == m.histogram_quantile(
        0.99, {le: traffic["edge-a"]["buckets"][le] + traffic["edge-b"]["buckets"][le] for le in LE}
    )


def test_other_namespaces_and_other_pods_are_not_mixed_in() -> None:
    answers = answers_for("shop", pods_traffic())
    for name, samples in answers_for("other", pods_traffic()).items():
        answers[name] += samples
    answers[p.REQUESTS].append(sample("shop", "edge-old", 1e6, route="api"))  # a pod not asked about
    answers[p.ERRORS].append(sample("shop", "edge-old", 1e6, route="api"))
    answers[p.REQUESTS].append(p.Sample(labels={"route": "api"}, value=1e6))  # no pod labels
    index = p.index_results(answers)
    got = p.metrics_signal(index, "shop", ["edge-a", "edge-b"], 60.0)
    assert got.requests == 900 + 60 + 300 + 5 + 20 + 1000 + 40


def test_flat_zero_gauges_and_breakers_are_unknown_open_breakers_count_once() -> None:
    traffic = pods_traffic()
    for t in traffic.values():
        t["memory"] = 0.0
        t["connections"] = 0.0
    answers = answers_for("shop", traffic)
    index = p.index_results(answers)
    got = p.metrics_signal(index, "shop", ["edge-a", "edge-b"], 60.0)
    assert got.memory_bytes is None and got.open_connections is None and got.circuit_breakers_open is None
    for pod in ("edge-a", "edge-b"):
        answers[p.BREAKERS].append(sample("shop", pod, 1.0, component="upstream", route="api"))
        answers[p.BREAKERS].append(sample("shop", pod, 0.0, component="upstream", route="static"))
    got = p.metrics_signal(p.index_results(answers), "shop", ["edge-a", "edge-b"], 60.0)
    assert got.circuit_breakers_open == 1


def test_a_pod_prometheus_does_not_hold_or_cannot_scrape_is_a_failure_with_a_reason() -> None:
    answers = answers_for("shop", {"edge-a": pods_traffic()["edge-a"]})
    answers[p.TARGET_UP].append(sample("shop", "edge-b", 0.0))  # scraped, but its scrapes fail
    # a dead pod: increase() over the window still answers for it, its instant gauges are stale
    answers[p.REQUESTS].append(sample("shop", "edge-c", 500.0, route="api"))
    answers[p.ERRORS].append(sample("shop", "edge-c", 500.0, route="api"))
    got = p.metrics_signal(p.index_results(answers), "shop", ["edge-a", "edge-b", "edge-c", "edge-d"], 60.0)
    assert got.available and got.pods_scraped == 1 and got.pods_failed == 3
    assert got.errors == 60 + 20  # edge-c's stale series are not counted

    none = p.metrics_signal(p.index_results(answers), "shop", ["edge-b", "edge-d"], 60.0, baseline_rps=3.0)
    assert not none.available and none.pods_failed == 2 and none.baseline_requests_per_second == 3.0
    assert none.error is not None
    assert "edge-b: Prometheus' scrapes of it fail (up == 0)" in none.error
    assert "edge-d: no Zentinel series in Prometheus" in none.error


def test_a_pod_without_traffic_reads_zero_requests_not_unknown() -> None:
    answers: dict[str, list[p.Sample]] = {name: [] for name in p.build_queries(60)}
    answers[p.ZENTINEL_UP] = [sample("shop", "edge-a", 1.0)]
    got = p.metrics_signal(p.index_results(answers), "shop", ["edge-a"], 60.0)
    assert got.available and got.interval_seconds == 60.0 and got.requests == 0 and got.error_rate == 0.0


def test_errors_never_exceed_the_requests_of_a_route() -> None:
    # increase() extrapolates every series on its own: a route's 5xx can come out a hair above its total
    answers: dict[str, list[p.Sample]] = {name: [] for name in p.build_queries(60)}
    answers[p.ZENTINEL_UP] = [sample("shop", "edge-a", 1.0)]
    answers[p.REQUESTS] = [sample("shop", "edge-a", 10.0, route="api")]
    answers[p.ERRORS] = [sample("shop", "edge-a", 10.4, route="api"), sample("shop", "edge-a", 2.0, route="web")]
    got = p.metrics_signal(p.index_results(answers), "shop", ["edge-a"], 60.0)
    assert {(r.route, r.requests, r.errors) for r in got.routes} == {("api", 10.4, 10.4), ("web", 2.0, 2.0)}
    assert got.error_rate == 1.0


def test_read_batch_leaves_the_garbage_collector_as_it_found_it() -> None:
    ok = FetchResult(url="u", ok=True, status=200, body=vector([]), error=None, elapsed=0.0)
    bad = FetchResult(url="u", ok=True, status=200, body="garbage", error=None, elapsed=0.0)
    assert gc.isenabled()
    p.read_batch({p.REQUESTS: ok})
    assert gc.isenabled()
    with pytest.raises(p.PrometheusError):
        p.read_batch({p.REQUESTS: bad})
    assert gc.isenabled()
    gc.disable()
    try:
        p.read_batch({p.REQUESTS: ok})
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_read_batch_names_the_failed_query() -> None:
    ok = FetchResult(url="u", ok=True, status=200, body=vector([]), error=None, elapsed=0.0)
    refused = FetchResult(
        url="u",
        ok=False,
        status=422,
        body='{"status":"error","errorType":"execution","error":"query timed out in expression evaluation"}',
        error="HTTP 422",
        elapsed=0.0,
    )
    with pytest.raises(p.PrometheusError, match="query 'latency': HTTP 422, query refused \\(execution\\): query"):
        p.read_batch({p.REQUESTS: ok, p.LATENCY: refused})


# ---------------------------------------------------------------------------------- batching


class FakePrometheus:
    """Just ``/api/v1/query`` of Prometheus' HTTP API, answering canned vectors by the metric queried.

    Counts every request, and the distinct ``time`` parameters it was asked about.
    """

    def __init__(self, answers: dict[str, list[p.Sample]], *, delay: float = 0.0) -> None:
        self.answers = answers
        self.delay = delay
        self.requests = 0
        self.times: list[str] = []
        self.mode = "normal"
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def query(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.times.append(request.query.get("time", ""))
        await asyncio.sleep(self.delay)
        if self.mode == "garbage":
            return web.Response(text="<html>hello</html>", content_type="text/html")
        if self.mode == "bad_data":
            return web.json_response(
                {"status": "error", "errorType": "bad_data", "error": "1:5: parse error"}, status=400
            )
        promql = request.query["query"]
        queries = p.build_queries(60)
        name = next(n for n, q in queries.items() if q == promql)
        samples = self.answers.get(name, [])
        return web.Response(text=vector([(dict(s.labels), s.value) for s in samples]), content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1/query", self.query)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


N_ZENTINELS = 40


def fleet_answers() -> dict[str, list[p.Sample]]:
    answers: dict[str, list[p.Sample]] = {}
    for i in range(N_ZENTINELS):
        for name, samples in answers_for(f"ns-{i}", pods_traffic()).items():
            answers.setdefault(name, []).extend(samples)
    return answers


@pytest.fixture
async def prometheus() -> AsyncIterator[FakePrometheus]:
    server = FakePrometheus(fleet_answers(), delay=0.05)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def make_source() -> AsyncIterator[Callable[..., p.PrometheusSource]]:
    made: list[p.PrometheusSource] = []

    def make(url: str, **kwargs: Any) -> p.PrometheusSource:
        kwargs.setdefault("refresh_seconds", 15.0)
        source = p.PrometheusSource(url, window_seconds=60, timeout=2, **kwargs)
        made.append(source)
        return source

    yield make
    for source in made:
        await source.close()


async def test_n_zentinels_in_one_interval_cost_one_batch_of_queries(
    prometheus: FakePrometheus, make_source: Callable[..., p.PrometheusSource]
) -> None:
    source = make_source(prometheus.url)
    per_batch = len(source.queries)
    # every Zentinel's pass at once: they wait for the same in-flight batch
    signals = await asyncio.gather(
        *(source.metrics_for(f"ns-{i}", ["edge-a", "edge-b"], NOW) for i in range(N_ZENTINELS))
    )
    assert prometheus.requests == per_batch and source.batches_fetched == 1
    assert all(s.available and s.pods_scraped == 2 and s.errors == 120 for s in signals)
    # passes later in the same interval reuse it
    for i in range(N_ZENTINELS):
        await source.metrics_for(f"ns-{i}", ["edge-a", "edge-b"], NOW + dt.timedelta(seconds=7))
    assert prometheus.requests == per_batch
    # the next interval: one more batch, evaluated at the interval's start
    await asyncio.gather(
        *(source.metrics_for(f"ns-{i}", ["edge-a"], NOW + dt.timedelta(seconds=8 + i % 7)) for i in range(N_ZENTINELS))
    )
    assert prometheus.requests == 2 * per_batch and source.batches_fetched == 2
    start = NOW.replace(second=0).timestamp()
    assert sorted(set(prometheus.times)) == [f"{start:.3f}", f"{start + 15:.3f}"]


async def test_one_cancelled_pass_does_not_cancel_the_batch_the_others_wait_for(
    prometheus: FakePrometheus, make_source: Callable[..., p.PrometheusSource]
) -> None:
    source = make_source(prometheus.url)
    first = asyncio.ensure_future(source.metrics_for("ns-0", ["edge-a"], NOW))
    others = asyncio.ensure_future(source.metrics_for("ns-1", ["edge-a"], NOW))
    await asyncio.sleep(0.01)
    first.cancel()
    signal = await others
    assert signal.available and prometheus.requests == len(source.queries)


async def test_unreachable_prometheus_is_an_unavailable_signal_fetched_once_per_interval(
    make_source: Callable[..., p.PrometheusSource],
) -> None:
    source = make_source(f"http://127.0.0.1:{free_port()}")
    signals = await asyncio.gather(*(source.metrics_for(f"ns-{i}", ["edge-a"], NOW) for i in range(5)))
    assert source.batches_fetched == 1
    for s in signals:
        assert not s.available and s.pods_failed == 0  # Prometheus' fault, not the pods'
        assert s.error is not None and s.error.startswith(f"Prometheus at {source.base_url}: query ")
        assert "cannot connect to 127.0.0.1" in s.error


@pytest.mark.parametrize(("mode", "expected"), [("garbage", "not JSON"), ("bad_data", "HTTP 400, query refused")])
async def test_garbage_from_prometheus_is_an_unavailable_signal(
    prometheus: FakePrometheus, make_source: Callable[..., p.PrometheusSource], mode: str, expected: str
) -> None:
    prometheus.mode = mode
    source = make_source(prometheus.url)
    signals = await asyncio.gather(*(source.metrics_for(f"ns-{i}", ["edge-a"], NOW) for i in range(10)))
    assert prometheus.requests == len(source.queries)
    assert all(not s.available and s.error and expected in s.error for s in signals)
    # recovers with the next interval
    prometheus.mode = "normal"
    later = await source.metrics_for("ns-3", ["edge-a", "edge-b"], NOW + dt.timedelta(seconds=15))
    assert later.available and later.pods_scraped == 2


async def test_a_hung_prometheus_times_out() -> None:
    server = FakePrometheus({}, delay=30)
    await server.start()
    try:
        source = p.PrometheusSource(server.url, window_seconds=60, timeout=0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        signal = await source.metrics_for("ns-0", ["edge-a"], NOW)
        assert loop.time() - started < 5
        assert not signal.available and signal.error is not None and "timed out after 0.3s" in signal.error
        await source.close()
    finally:
        await server.stop()


def test_query_url_carries_time_and_timeout() -> None:
    source = p.PrometheusSource("http://prom:9090/", window_seconds=30, timeout=2.5, refresh_seconds=10)
    t = source.evaluation_time(NOW)
    assert t == NOW.replace(second=0).timestamp()
    url = urlparse(source.query_url(source.queries[p.REQUESTS], t))
    assert url.netloc == "prom:9090" and url.path == "/api/v1/query"
    qs = parse_qs(url.query)
    assert qs["query"] == [source.queries[p.REQUESTS]] and qs["time"] == [f"{t:.3f}"] and qs["timeout"] == ["2.5s"]
    assert "[30s]" in qs["query"][0]
    with pytest.raises(ValueError, match="http"):
        p.PrometheusSource("prom:9090", window_seconds=30, timeout=1)
