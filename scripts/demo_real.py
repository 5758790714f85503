"""The demo's real data plane: 3 real ``zentinel`` pods in front of 3 backend pods on the process node.

Used by ``scripts/demo``; every subcommand takes the kubeconfig and the demo's state directory.

    up        backends, the edge config from examples/10-config.yaml (targets: the backend pod IPs),
              a demo CA and TLS certificate, the Zentinel Deployment from examples/20-deployment.yaml
              (scheduled to the process node)
    traffic   bounded background traffic through the edge pods (loopback only; stops after 2 hours
              or when the demo stops it); its rate is read from STATE/traffic-rps each second
    fault F   bad-config | crash | dead-backend | errors | slow | cert | flood | recover
    settle S  wait S seconds for the operator to act; a step it holds back for the policy's cooldown is
              waited out too (at most 90 s more), so the demo shows the fix and not the wait
    show      what real Zentinel answers: status codes through each pod, its /admin/config targets,
              the certificate it serves; then each open incident's latest remediation step
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import realpods  # noqa: E402 - after the path set-up above
from support.certs import leaf, tls_secret  # noqa: E402
from support.kube import Kube  # noqa: E402
from zentinel_devcluster import kubelet, loadgen, tools  # noqa: E402
from zentinel_devcluster.pki import CA  # noqa: E402

NS = "zentinel-demo"
SAN = "edge.example.com"
EXAMPLES = REPO / "examples"
BAD_BLOCK = "\n// a broken edit\nbogus-block {\n    x 1\n}\n"


def manifest(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return doc


def demo_config(targets: list[str]) -> str:
    """examples/10-config.yaml's KDL with the Service-name targets replaced by the backend pod IPs."""
    text = str(manifest("10-config.yaml")["data"]["zentinel.kdl"])
    lines = [f'target "{t}" weight=1' for t in targets]
    found = re.findall(r'^(\s*)target "[^"]+"[^\n]*$', text, flags=re.M)
    indent = found[0] if found else "        "
    text = re.sub(r'^\s*target "[^"]+"[^\n]*\n', "", text, flags=re.M)
    return text.replace('upstream "api" {\n', 'upstream "api" {\n' + "".join(f"{indent}{x}\n" for x in lines), 1)


def up(kube: Kube, state: Path) -> None:
    kube.apply(realpods.backend_deployment("api", replicas=3), NS)
    backends = realpods.ready_pods(kube, NS, "api", 3)
    targets = [f"{ip}:{realpods.BACKEND_PORT}" for ip in realpods.pod_ips(backends)]
    cm = manifest("10-config.yaml")
    cm["data"]["zentinel.kdl"] = demo_config(targets)
    kube.apply(cm)
    if kube.get("secret", "edge-tls", NS) is None:
        ca = CA.create("zentinel demo CA")
        ca_cert, ca_key = ca.pem()
        kube.apply(tls_secret("edge-ca", ca_cert, ca_key), NS)
        cert, key = leaf(ca, [SAN], days=60)
        kube.apply(tls_secret("edge-tls", cert, key), NS)
    dep = manifest("20-deployment.yaml")
    spec = dep["spec"]["template"]["spec"]
    spec.update({"nodeSelector": {"type": "process"}, "tolerations": [{**kubelet.TAINT, "operator": "Equal"}]})
    spec["terminationGracePeriodSeconds"] = 2
    kube.apply(dep)
    realpods.ready_pods(kube, NS, "edge", 3, timeout=120)
    print(f"[demo] 3 real zentinel pods ({tools.zentinel_binary()}) in front of backends {', '.join(targets)}")


def edge_ips(kube: Kube) -> list[str]:
    pods = kube.list("pods", NS, "app=edge")
    return sorted(
        p["status"]["podIP"]
        for p in pods
        if (p.get("status") or {}).get("podIP") and not p["metadata"].get("deletionTimestamp")
    )


def traffic(kube: Kube, state: Path) -> None:
    deadline = time.monotonic() + 2 * 3600
    rps_file, totals = state / "traffic-rps", collections.Counter[str]()
    while time.monotonic() < deadline and not (state / "traffic.stop").exists():
        rps = float(rps_file.read_text().strip() or 30) if rps_file.exists() else 30.0
        urls = [f"http://{ip}:{realpods.HTTP_PORT}/api/orders" for ip in edge_ips(kube)]
        if not urls:
            time.sleep(1)
            continue
        try:
            summary = loadgen.run(urls, rate=min(rps, 2000), duration=1.0, concurrency=32, timeout=3.0)
        except loadgen.LoadgenError as e:
            print(f"[traffic] {e}", flush=True)
            time.sleep(1)
            continue
        counts = summary.to_dict()["counts"]
        totals.update({str(k): int(v) for k, v in counts.items()})
        print(f"[traffic] {rps:g} rps: {dict(counts)}", flush=True)


def backends(kube: Kube, namespace: str = NS) -> list[str]:
    return sorted(p["metadata"]["name"] for p in kube.list("pods", namespace, "app=api"))


def fault(kube: Kube, state: Path, name: str, namespace: str = NS) -> None:
    """Inject ``name`` into the edge of ``namespace`` (benchmarks/detection_latency.py injects into its own)."""
    cm = kube.get("configmap", "edge-config", namespace) or {}
    text = str(cm.get("data", {}).get("zentinel.kdl", ""))
    if name in ("bad-config", "crash"):
        kube.run(
            "patch",
            "configmap",
            "edge-config",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            json.dumps({"data": {"zentinel.kdl": text + BAD_BLOCK}}),
        )
        if name == "crash":
            kube.run("rollout", "restart", "deployment/edge", "-n", namespace)
        print(
            "[demo] wrote a config real Zentinel refuses" + (" and restarted the pods on it" if name == "crash" else "")
        )
    elif name == "dead-backend":
        for pod in backends(kube, namespace):
            realpods.set_backend_mode(kube, namespace, pod, "refuse")
        print("[demo] every backend refuses connections")
    elif name == "errors":
        realpods.set_backend_mode(kube, namespace, backends(kube, namespace)[0], "error")
        print(f"[demo] backend {backends(kube, namespace)[0]} answers 500")
    elif name == "slow":
        for pod in backends(kube, namespace):
            realpods.set_backend_mode(kube, namespace, pod, "slow:1.5")
        print("[demo] every backend takes 1.5 s")
    elif name == "cert":
        secret = kube.get("secret", "edge-ca", namespace) or {}
        ca = CA.from_pem(base64.b64decode(secret["data"]["tls.crt"]), base64.b64decode(secret["data"]["tls.key"]))
        cert, key = leaf(ca, [SAN], days=2)
        kube.apply(tls_secret("edge-tls", cert, key), namespace)
        kube.run("rollout", "restart", "deployment/edge", "-n", namespace)
        print("[demo] the edge certificate now expires in 2 days (pods restarted to serve it)")
    elif name == "flood":
        (state / "traffic-rps").write_text("600")
        print("[demo] traffic raised to 600 requests/s (bounded; `scripts/demo recover` lowers it)")
    elif name == "recover":
        (state / "traffic-rps").write_text("30")
        for pod in backends(kube, namespace):
            realpods.set_backend_mode(kube, namespace, pod, "ok")
        print("[demo] backends answer normally, traffic back to 30 requests/s")
    else:
        raise SystemExit(f"unknown fault {name!r}")


def answer(url: str) -> int | str:
    """The status code, or what stood in its way: a pod whose process is down refuses connections."""
    try:
        return realpods.get(url, timeout=3)[0]
    except OSError as e:
        reason = getattr(e, "reason", e)
        return "refused" if isinstance(reason, ConnectionRefusedError) else f"no answer ({type(reason).__name__})"


def show(kube: Kube) -> None:
    import asyncio

    from zentinel_operator.signals.tls_probe import served_certificate

    for ip in edge_ips(kube):
        codes = collections.Counter(answer(f"http://{ip}:{realpods.HTTP_PORT}/api/orders") for _ in range(20))
        try:
            targets = sorted(
                t["address"] for u in realpods.live_config(ip)["config"]["upstreams"] for t in u["targets"]
            )
        except (AssertionError, OSError, ValueError) as e:
            targets = [f"unreadable: {e}"]
        probe = asyncio.run(served_certificate(ip, realpods.TLS_PORT, server_name=SAN, timeout=3))
        served = f"{probe.fingerprint[:16]}…" if probe.ok and probe.fingerprint else "no TLS answer"
        print(f"  zentinel {ip}: 20 requests -> {dict(codes)}; /admin/config targets {targets}; serves cert {served}")
    steps = latest_steps(kube)
    if steps:
        print("\nlatest remediation step of each incident:")
    for name, category, rec in steps:
        print(
            f"  {name} {category}: {rec['action']} {rec['state']}" + (f": {rec['reason']}" if rec.get("reason") else "")
        )


COOLDOWN = re.compile(r"cooldown until (\S+) ")


def latest_steps(kube: Kube) -> list[tuple[str, str, dict[str, Any]]]:
    """(incident, category, latest remediation record) for each incident that has one."""
    out = []
    for inc in kube.list("zentinelincidents", NS):
        records = (inc.get("status") or {}).get("remediations") or []
        if records:
            out.append((inc["metadata"]["name"], inc["spec"]["category"], records[-1]))
    return out


def settle(kube: Kube, seconds: float) -> None:
    time.sleep(seconds)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        waits = [
            COOLDOWN.search(rec.get("reason") or "") for _, _, rec in latest_steps(kube) if rec["state"] == "Waiting"
        ]
        until = max((dt.datetime.fromisoformat(m.group(1)) for m in waits if m), default=None)
        if until is None:
            return
        left = (until - dt.datetime.now(dt.UTC)).total_seconds()
        print(f"[demo] a step waits for the policy's cooldown (examples/40-policy.yaml): {max(left, 0):.0f}s left")
        time.sleep(max(left, 0) + 8)


def main() -> None:
    cmd, kubeconfig, state = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    kube = Kube(tools.binary("kubectl"), kubeconfig)
    if cmd == "up":
        up(kube, state)
    elif cmd == "traffic":
        traffic(kube, state)
    elif cmd == "fault":
        fault(kube, state, sys.argv[4])
    elif cmd == "show":
        show(kube)
    elif cmd == "settle":
        settle(kube, float(sys.argv[4]))
    else:
        raise SystemExit(f"unknown command {cmd!r}")


if __name__ == "__main__":
    main()
