"""What one interval costs the operator with ``metricsSource: Prometheus``, past the network.

Makes the answers Prometheus would give to one batch (``signals.prometheus.build_queries``) for
1, 100 and 1,000 Zentinels (``--sizes``) of 3-10 pods with 5-20 routes each, then times
``read_batch`` (parse the JSON and index it by namespace and pod: once per interval, in a worker
thread) and ``metrics_signal`` for every Zentinel (once per Zentinel per interval, on the loop).
Prints best and median of ``--rounds`` and the size of the answers. A benchmark, not a test.

    .venv/bin/python benchmarks/prometheus_batch.py
    .venv/bin/python benchmarks/prometheus_batch.py --sizes 1000,5000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable

from zentinel_operator.signals import prometheus as p
from zentinel_operator.signals.scrape import FetchResult

LE = ("0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")


def answers(size: int, seed: int) -> tuple[dict[str, FetchResult], list[tuple[str, list[str]]]]:
    """One batch's answers (as fetched) and, per Zentinel, its namespace and pod names."""
    rng = random.Random(seed)  # noqa: S311 - reproducible fixtures, not secrets
    vectors: dict[str, list[dict[str, object]]] = {name: [] for name in p.build_queries(60)}
    zentinels = []

    def add(name: str, ns: str, pod: str, value: float, **labels: str) -> None:
        vectors[name].append({"metric": {"namespace": ns, "pod": pod, **labels}, "value": [1795755600.0, str(value)]})

    for z in range(size):
        ns = f"team-{z}"
        pods = [f"edge-7d9f{rng.randrange(16**4):04x}-{i:02d}" for i in range(rng.randint(3, 10))]
        routes = [f"route-{r}" for r in range(rng.randint(5, 20))]
        zentinels.append((ns, pods))
        for pod in pods:
            for route in routes:
                requests = round(rng.uniform(100, 5000), 3)
                add(p.REQUESTS, ns, pod, requests, route=route)
                add(p.ERRORS, ns, pod, round(requests * rng.uniform(0, 0.01), 3), route=route)
            add(p.PROXY_ERRORS, ns, pod, float(rng.randint(0, 3)), reason="proxy_error_502")
            total = 0.0
            for le in LE:
                total += rng.uniform(0, 500)
                add(p.LATENCY, ns, pod, round(total, 3), le=le)
            add(p.ZENTINEL_UP, ns, pod, 1.0)
            add(p.VERSION, ns, pod, 1.0, version="0.6.45")
            add(p.MEMORY, ns, pod, 0.0)
            add(p.CONNECTIONS, ns, pod, 0.0)
            add(p.TARGET_UP, ns, pod, 1.0)
    fetched = {
        name: FetchResult(
            url=name,
            ok=True,
            status=200,
            body=json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}),
            error=None,
            elapsed=0.0,
        )
        for name, result in vectors.items()
    }
    return fetched, zentinels


def timed(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def measure(size: int, seed: int, rounds: int) -> None:
    fetched, zentinels = answers(size, seed)
    index = p.read_batch(fetched)
    series = sum(len(json.loads(f.body or "{}")["data"]["result"]) for f in fetched.values())
    megabytes = sum(len(f.body or "") for f in fetched.values()) / 1e6

    def signals() -> None:
        for ns, pods in zentinels:
            p.metrics_signal(index, ns, pods, 60.0)

    read = timed(lambda: p.read_batch(fetched), rounds)
    each = timed(signals, rounds)
    pods = sum(len(pods) for _, pods in zentinels)
    print(
        f"{size:>9} {pods:>6} {series:>8} {megabytes:>7.1f}MB "
        f"{read[0] * 1000:>10.1f}ms / {read[1] * 1000:>8.1f}ms "
        f"{each[0] * 1000:>10.1f}ms / {each[1] * 1000:>8.1f}ms"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,100,1000", help="comma-separated numbers of Zentinels")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args(argv)
    print(
        f"{'zentinels':>9} {'pods':>6} {'series':>8} {'answer':>9} "
        f"{'read_batch best/median':>24} {'all signals best/median':>25}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        measure(size, args.seed, args.rounds)


if __name__ == "__main__":
    main()
